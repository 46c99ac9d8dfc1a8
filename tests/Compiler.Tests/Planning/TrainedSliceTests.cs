namespace TinyTrain.Compiler.Tests.Planning;

using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Learning;
using TinyTrain.Compiler.Planning;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Compiler.Zoo;
using TinyTrain.Runtime.Execution;
using TinyTrain.Runtime.Plans;
using PlanType = TinyTrain.Runtime.Plans.Plan;

/// <summary>
/// Trained slices (a 1x1 conv that trains its first input channels keeps only that slice writable, the rest read from
/// Flash): bit for bit the same logits, losses and learned parameters as the plan with whole writable weights, fewer
/// writable bytes, the arena touched as planned, and damaged slices refused with a message that names the op.
/// </summary>
public class TrainedSliceTests
{
    // Shipped schemes with ratios below 1 (data/reference/tte-models.json).
    private static SparseScheme Scheme(string name) => name switch
    {
        "mcunet-148kb" => new SparseScheme(23, [21, 24, 27, 30, 36, 39], [1, 1, 1, 1, 1, 0.5]),
        "mcunet-49kb" => new SparseScheme(20, [23, 24, 27, 30, 33, 39], [0, 0.25, 0.5, 0.5, 0, 0]),
        "mbv2-49kb" => new SparseScheme(16, [36, 39, 40, 41, 42, 45, 48, 49], [1, 1, 0, 0.25, 0.125, 0.125, 0.125, 0.125]),
        _ => new SparseScheme(21, [39, 42, 44, 45, 50, 51, 54, 57], [0.25, 1, 0, 1, 0, 0.125, 0.25, 0.25]), // proxyless-49kb
    };

    private static string Model(string scheme) => scheme.StartsWith("mcunet") ? "mcunet-5fps" : scheme.StartsWith("mbv2") ? "mbv2-w0.35" : "proxyless-w0.3";

    private static (CompileResult Off, CompileResult On) CompileBoth(string scheme, int resolution, string patch, bool channelBackward, bool momentum = false)
    {
        var graph = ModelZoo.Build(Model(scheme), resolution, 10, seed: 7);
        Quantized q = PlanCompiler.Quantize(graph, CalibrationSet.Random(graph.InputShape, 4, 8), new CompileOptions(),
            m => TrainableSet.FromScheme(Scheme(scheme), m, scheme));
        var options = new CompileOptions { Patch = patch, InPlaceDepthwise = true, ChannelBackward = channelBackward, InPlacePointwise = true,
            Training = new TrainingOptions { Momentum = momentum } };
        return (PlanCompiler.Emit(q, q.Trainable!, options), PlanCompiler.Emit(q, q.Trainable!, options with { TrainedSlices = true }));
    }

    private static byte[] Input(PlanType plan, int seed) => PlanSamples.RandomInput(plan, seed);

    // Every writable parameter whole, in Init op order (the same in both plans).
    private static List<byte[]> Learned(Executor e) =>
        Enumerable.Range(0, e.Plan.OpCount).Where(i => e.Plan.Op(i).Phase == OpPhase.Init).Select(i => TrainedParams.Whole(e.Plan, e.Params, i)).ToList();

    [Theory]
    [InlineData("mcunet-148kb", 128, "auto", true, false)]
    [InlineData("mcunet-49kb", 128, "auto", true, false)]
    [InlineData("mcunet-49kb", 64, "off", false, true)]
    [InlineData("mbv2-49kb", 128, "auto", true, false)]
    [InlineData("proxyless-49kb", 128, "auto", false, false)]
    [InlineData("proxyless-49kb", 128, "off", true, true)]
    public void Partially_trained_convs_learn_bit_for_bit_the_same_with_fewer_writable_bytes(string scheme, int resolution, string patch, bool channelBackward, bool momentum)
    {
        (CompileResult off, CompileResult on) = CompileBoth(scheme, resolution, patch, channelBackward, momentum);
        var a = new Executor(PlanType.Load(off.Image, "off")) { LearningRate = 0.05f, Momentum = 0.9f };
        var b = new Executor(PlanType.Load(on.Image, "on")) { LearningRate = 0.05f, Momentum = 0.9f };
        Assert.Contains(Enumerable.Range(0, b.Plan.OpCount), i => b.Plan.Op(i).Kind == OpKind.InitParamsRows);
        Assert.True(on.Plan.ParamBytes < off.Plan.ParamBytes, $"{on.Plan.ParamBytes} vs {off.Plan.ParamBytes}");
        Assert.Equal(off.Plan.ArenaBytes, on.Plan.ArenaBytes);
        Assert.Equal(Learned(a), Learned(b));
        a.Seed(11);
        b.Seed(11);
        for (int step = 0; step < 3; step++)
        {
            byte[] input = Input(a.Plan, 70 + step);
            a.SetInput(input, 0);
            b.SetInput(input, 0);
            Assert.Equal(BitConverter.SingleToInt32Bits(a.TrainStep(step % 10)), BitConverter.SingleToInt32Bits(b.TrainStep(step % 10)));
            Assert.Equal(Learned(a), Learned(b));
            Assert.Equal(a.State, b.State);
        }
        byte[] probe = Input(a.Plan, 99);
        a.SetInput(probe, 0);
        b.SetInput(probe, 0);
        a.Invoke();
        b.Invoke();
        Assert.Equal(a.Arena.AsSpan(a.OutputOffset, a.OutputLength).ToArray(), b.Arena.AsSpan(b.OutputOffset, b.OutputLength).ToArray());
        b.Reset();
        a.Reset();
        Assert.Equal(Learned(a), Learned(b));
        Assert.Equal(b.Plan.ArenaBytes, ArenaProbe.MeasureTrainStep(b.Plan, Input(b.Plan, 9), 0, 2));
    }

    public static TheoryData<string, string> Damage => new()
    {
        { "slice", "trained slice of" },
        { "whole", "whole weights" },
        { "shape", "is not a 1x1, stride 1, unpadded, one-group conv" },
        { "buffer", "row buffer" },
        { "slice in buffer", "overlaps its trained slice" },
    };

    [Theory]
    [MemberData(nameof(Damage))]
    public void A_damaged_slice_is_refused_with_a_message_that_names_the_op(string damage, string message)
    {
        (_, CompileResult on) = CompileBoth("mcunet-49kb", 128, "auto", true);
        byte[] image = (byte[])on.Image.Clone();
        PlanType good = PlanType.Load(image, "good");
        int index = Enumerable.Range(0, good.OpCount).First(i => good.Op(i).Kind == OpKind.Conv2D && (good.Op(i).Flags & OpFlags.WeightsSliced) != 0);
        switch (damage)
        {
            case "slice": PlanImage.Put32(image, PlanImage.OpArg(image, index, 7), good.Tensor(good.Op(index).Input0).C); break;
            case "whole": PlanImage.Put32(image, PlanImage.OpArg(image, index, 8), int.MaxValue); break;
            case "shape": PlanImage.Put32(image, PlanImage.OpArg(image, index, 3), 2); break;
            case "slice in buffer":
                PlanImage.Put32(image, PlanImage.Op(image, index, PlanFormat.OpWeights), (int)good.SramParamBytes - good.Tensor(good.Op(index).Output).C * good.Op(index).Arg(7));
                break;
            case "buffer":
            {
                // The sliced weights' Init op now fills the params region up to its end, over the row buffer.
                int init = Enumerable.Range(0, good.OpCount).Last(i => good.Op(i).Phase == OpPhase.Init);
                long end = good.SramParamBytes;
                OpInfo last = good.Op(init);
                long length = last.Kind == OpKind.InitParams ? last.Arg(0) : (long)last.Arg(0) * last.Arg(2);
                PlanImage.Put32(image, PlanImage.OpArg(image, init, last.Kind == OpKind.InitParams ? 1 : 3), (int)(end - length));
                break;
            }
        }
        PlanImage.Seal(image);
        var e = Assert.Throws<PlanException>(() => PlanType.Load(image, "damaged.ttplan"));
        Assert.Contains("damaged.ttplan", e.Message);
        Assert.Contains(message, e.Message);
    }

    // Seeded damage to the fields of sliced ops and of InitParamsRows, re-sealed: the loader refuses it, or the plan
    // that loads runs a training step and a forward pass without any exception (no index out of range, no kernel
    // refusing its arguments).
    [Fact]
    public void Damaged_slice_fields_load_and_run_or_are_refused_never_crash()
    {
        (_, CompileResult on) = CompileBoth("mcunet-49kb", 64, "off", true);
        PlanType good = PlanType.Load(on.Image, "good");
        int[] targets = Enumerable.Range(0, good.OpCount)
            .Where(i => good.Op(i).Kind == OpKind.InitParamsRows || (good.Op(i).Flags & OpFlags.WeightsSliced) != 0).ToArray();
        var random = new Random(20261127);
        int loaded = 0, refused = 0;
        for (int n = 0; n < 400; n++)
        {
            byte[] image = (byte[])on.Image.Clone();
            int op = targets[random.Next(targets.Length)];
            int field = random.Next(11); // args 0-8, weights, flags
            int at = field < 9 ? PlanImage.OpArg(image, op, field) : PlanImage.Op(image, op, field == 9 ? PlanFormat.OpWeights : PlanFormat.OpFlags);
            int old = BitConverter.ToInt32(image, at);
            int value = random.Next(6) switch
            {
                0 => 0, 1 => -1, 2 => old + random.Next(-3, 4), 3 => old ^ (1 << random.Next(31)), 4 => random.Next(1 << 16), _ => int.MaxValue,
            };
            if (field == 10) image[at] = (byte)value;
            else PlanImage.Put32(image, at, value);
            PlanImage.Seal(image);
            PlanType plan;
            try
            {
                plan = PlanType.Load(image, "fuzz.ttplan");
            }
            catch (PlanException)
            {
                refused++;
                continue;
            }
            loaded++;
            var e = new Executor(plan) { LearningRate = 0.05f };
            byte[] input = Input(plan, n);
            e.SetInput(input, 0);
            e.TrainStep(1);
            e.SetInput(input, 0);
            e.Invoke();
        }
        Assert.True(loaded > 0 && refused > 0, $"{loaded} loaded, {refused} refused");
    }
}
