namespace TinyTrain.Compiler.Tests.Planning;

using System.Diagnostics;
using System.Text.RegularExpressions;
using TinyTrain.Runtime.Plans;
using Xunit.Abstractions;

// Seeded random damage to a real plan: every outcome is a loaded plan or a PlanException, never
// another exception and never a hang. Half of the cases start from the hand-written inference plan,
// half from a compiled training plan that holds every training op kind. Half of the cases are
// re-sealed (file length and CRC fixed) so they get past the checksum into structural validation;
// a plan that loads must then run through bounds-exact kernels (PlanReferee, or for a training plan
// TrainingPlanReferee and the runtime's training kernels) without an index going out of range or a
// kernel refusing its arguments.
public class PlanFuzzTests
{
    private const int Cases = 20_000;
    private const int Seed = 20240607;
    private static readonly TimeSpan CaseTimeout = TimeSpan.FromSeconds(20);

    private readonly ITestOutputHelper _output;

    public PlanFuzzTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public async Task RandomMutations_LoadOrRefuse_NeverCrashOrHang()
    {
        byte[][] bases = [new PlanTestNet().Image, TrainingPlans.Tiny()];
        string[] baseNames = ["inference", "training"];
        var outcomes = new Dictionary<string, int>();
        var byMutation = new Dictionary<string, int>();
        var failures = new List<string>();
        var invalidKinds = new HashSet<string>(); // Invalid messages with numbers and names blanked: how much of validation the fuzz reached
        int executed = 0, executedTraining = 0;
        int done = 0;
        var stopwatch = Stopwatch.StartNew();

        // The loop runs on a worker; this thread is the watchdog and fails the test if one case stalls.
        Task run = Task.Run(() =>
        {
            for (int i = 0; i < Cases; i++)
            {
                var random = new Random(Seed + i);
                bool sealedCase = i % 2 == 1;
                int which = i / 2 % 2;
                byte[] original = bases[which];
                (byte[] image, string kind, string mutation) = Mutate(original, random);
                kind = $"{baseNames[which]} {kind}";
                if (sealedCase) PlanImage.Seal(image);
                string key;
                try
                {
                    Plan plan = Plan.Load(image, "fuzz.ttplan");
                    key = sealedCase ? "loaded (sealed)" : "loaded (unsealed)";
                    if (!sealedCase && !image.AsSpan().SequenceEqual(original))
                        failures.Add($"case {i} ({kind}: {mutation}): a changed file loaded without re-sealing");
                    if (!TrainingPlanReferee.IsTrainingPlan(plan))
                    {
                        if (PlanReferee.Execute(plan)) executed++;
                    }
                    else if (TrainingPlanReferee.Execute(plan))
                    {
                        executed++;
                        executedTraining++;
                    }
                }
                catch (PlanException e)
                {
                    key = $"{e.Error} ({(sealedCase ? "sealed" : "unsealed")})";
                    if (e.Error == PlanError.Invalid) invalidKinds.Add(Regex.Replace(e.Message, @"-?\d+|'[^']*'|\(\w+( -> [^)]*)?\)", "#"));
                    if (!e.Message.StartsWith("fuzz.ttplan: ", StringComparison.Ordinal) || e.Message.Contains('\n'))
                        failures.Add($"case {i} ({kind}: {mutation}): badly formed message: {e.Message}");
                }
                catch (Exception e)
                {
                    key = "other exception";
                    failures.Add($"case {i} ({kind}: {mutation}, {(sealedCase ? "sealed" : "unsealed")}): {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
                }
                outcomes[key] = outcomes.GetValueOrDefault(key) + 1;
                string byKind = $"{kind}: {(key.StartsWith("loaded", StringComparison.Ordinal) ? "loaded" : key[..key.IndexOf(' ')])}";
                byMutation[byKind] = byMutation.GetValueOrDefault(byKind) + 1;
                Volatile.Write(ref done, i + 1);
            }
        });

        int lastDone = -1;
        var sinceProgress = Stopwatch.StartNew();
        while (!run.IsCompleted)
        {
            await Task.WhenAny(run, Task.Delay(200));
            int now = Volatile.Read(ref done);
            if (now != lastDone) { lastDone = now; sinceProgress.Restart(); }
            else if (sinceProgress.Elapsed > CaseTimeout)
                Assert.Fail($"fuzz case {now} (seed {Seed + now}) has run for over {CaseTimeout.TotalSeconds} s: a hang");
        }
        await run;
        stopwatch.Stop();

        foreach ((string key, int count) in outcomes.OrderBy(p => p.Key, StringComparer.Ordinal))
            _output.WriteLine($"{key,-24} {count,6}");
        foreach ((string key, int count) in byMutation.OrderBy(p => p.Key, StringComparer.Ordinal))
            _output.WriteLine($"  {key,-42} {count,6}");
        _output.WriteLine($"{invalidKinds.Count} distinct Invalid messages (numbers and names blanked)");
        _output.WriteLine($"{Cases} cases in {stopwatch.Elapsed.TotalSeconds:F2} s; {executed} loaded plans ran through the referee kernels, {executedTraining} of them training plans");
        Assert.True(failures.Count == 0, string.Join("\n", failures.Take(10)));
        Assert.Equal(Cases, outcomes.Values.Sum());
        Assert.True(outcomes.GetValueOrDefault("Invalid (sealed)") > 500, "too few cases reached structural validation");
        Assert.True(executedTraining > 100, $"only {executedTraining} mutated training plans loaded and ran");
    }

    private static readonly int[] TensorFields =
    {
        PlanFormat.TensorType, PlanFormat.TensorC, PlanFormat.TensorH, PlanFormat.TensorW, PlanFormat.TensorArenaOffset,
        PlanFormat.TensorByteLength, PlanFormat.TensorScale, PlanFormat.TensorZeroPoint, PlanFormat.TensorNameOffset,
        PlanFormat.TensorNameLength, PlanFormat.TensorFirstOp, PlanFormat.TensorLastOp,
    };

    private static readonly int[] OpFields =
    {
        PlanFormat.OpKindField, PlanFormat.OpPhase, PlanFormat.OpInput0, PlanFormat.OpInput1, PlanFormat.OpOutput, PlanFormat.OpScratch,
        PlanFormat.OpWeights, PlanFormat.OpBias, PlanFormat.OpMultiplier, PlanFormat.OpShift,
        PlanFormat.OpArgs, PlanFormat.OpArgs + 4, PlanFormat.OpArgs + 8, PlanFormat.OpArgs + 12, PlanFormat.OpArgs + 16,
        PlanFormat.OpArgs + 20, PlanFormat.OpArgs + 24, PlanFormat.OpArgs + 28, PlanFormat.OpArgs + 32,
    };

    private static (byte[] Image, string Kind, string Mutation) Mutate(byte[] original, Random random)
    {
        byte[] b = (byte[])original.Clone();
        switch (random.Next(8))
        {
            case 0:
                {
                    int flips = random.Next(1, 5);
                    for (int f = 0; f < flips; f++) b[random.Next(b.Length)] ^= (byte)random.Next(1, 256);
                    return (b, "byte flips", $"{flips} byte flips");
                }
            case 1:
                {
                    int length = random.Next(1, 33), at = random.Next(b.Length - length);
                    random.NextBytes(b.AsSpan(at, length));
                    return (b, "random run", $"random run of {length} at {at}");
                }
            case 2:
                {
                    int length = random.Next(original.Length);
                    return (original[..length], "truncation", $"truncated to {length}");
                }
            case 3:
                {
                    int at = random.Next(original.Length + 1), length = random.Next(1, 17);
                    var inserted = new byte[length];
                    random.NextBytes(inserted);
                    return ([.. original[..at], .. inserted, .. original[at..]], "insertion", $"{length} bytes inserted at {at}");
                }
            case 4:
                {
                    int at = random.Next(original.Length), length = random.Next(1, Math.Min(64, original.Length - at) + 1);
                    return ([.. original[..at], .. original[(at + length)..]], "removal", $"{length} bytes removed at {at}");
                }
            case 5:
                {
                    // A small change to one field of a tensor or op record: the near misses that test geometry and ranges.
                    bool tensor = random.Next(2) == 0;
                    int section = PlanImage.Section(original, tensor ? SectionKind.Tensors : SectionKind.Ops, out int length);
                    int size = tensor ? PlanFormat.TensorRecordSize : PlanFormat.OpRecordSize;
                    int[] fields = tensor ? TensorFields : OpFields;
                    int field = fields[random.Next(fields.Length)];
                    int at = section + random.Next(length / size) * size + field;
                    bool wide = field % 4 == 0;
                    long v = wide ? BitConverter.ToInt32(b, at) : BitConverter.ToUInt16(b, at);
                    long nudged = random.Next(8) switch
                    {
                        0 => v - 2,
                        1 => v - 1,
                        2 => v + 1,
                        3 => v + 2,
                        4 => v * 2,
                        5 => v / 2,
                        6 => v + random.Next(1, 1000),
                        _ => -v,
                    };
                    if (wide) PlanImage.Put32(b, at, (int)nudged);
                    else PlanImage.Put16(b, at, (int)nudged);
                    return (b, "record field nudge", $"{(tensor ? "tensor" : "op")} field at {at} nudged from {v} to {nudged}");
                }
            case 6:
                {
                    // Reshape a tensor and fix its byte length to match, so the change reaches the ops that use it.
                    int section = PlanImage.Section(original, SectionKind.Tensors, out int length);
                    int r = section + random.Next(length / PlanFormat.TensorRecordSize) * PlanFormat.TensorRecordSize;
                    int dim = PlanFormat.TensorC + 4 * random.Next(3);
                    uint v = PlanImage.U32(b, r + dim);
                    uint reshaped = (uint)Math.Max(1, random.Next(2) == 0 ? v * 2 : (long)v + random.Next(-2, 3));
                    PlanImage.Put32(b, r + dim, reshaped);
                    long n = (long)PlanImage.U32(b, r + PlanFormat.TensorC) * PlanImage.U32(b, r + PlanFormat.TensorH) * PlanImage.U32(b, r + PlanFormat.TensorW);
                    long bytes = (ElementType)b[r + PlanFormat.TensorType] switch { ElementType.Int8 => n, ElementType.Bits => (n + 7) / 8, _ => 4 * n };
                    PlanImage.Put32(b, r + PlanFormat.TensorByteLength, (uint)bytes);
                    return (b, "tensor reshape", $"tensor at {r}: dim {dim} reshaped from {v} to {reshaped}");
                }
            default:
                {
                    // A plausible-looking field value at a field boundary of a header, table or record.
                    int at = random.Next(original.Length / 2) * 2;
                    uint[] interesting = { 0, 1, 2, 3, 4, 7, 8, 15, 16, 255, 0x7FFF, 0xFFFE, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, (uint)original.Length };
                    uint value = random.Next(3) == 0 ? (uint)random.Next(-300, 300) : interesting[random.Next(interesting.Length)];
                    if (random.Next(2) == 0 || at + 4 > b.Length) PlanImage.Put16(b, at, (int)value);
                    else PlanImage.Put32(b, at, value);
                    return (b, "field value", $"field at {at} set to {value}");
                }
        }
    }
}
