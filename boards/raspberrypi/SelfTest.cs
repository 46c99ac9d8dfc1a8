namespace TinyTrain.Boards.RaspberryPi;

using System.Runtime.Intrinsics;
using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Data.Imu;
using TinyTrain.Runtime.Execution;
using TinyTrain.Runtime.Kernels;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

/// <summary>
/// --selftest: the runtime's fast kernels (Vector128: AdvSimd on arm64, SSE/AVX on x64) against the scalar reference
/// kernels, bit for bit, on this machine: random Conv2D and FullyConnected calls (forward), then the whole plan —
/// inference and training steps on real windows — once with the fast kernels and once with the reference, comparing
/// every logit, the whole arena and every trained parameter.
/// </summary>
public static class SelfTest
{
    public static int Run(PlanImage? plan, TextWriter log)
    {
        log.WriteLine($"selftest on {System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture}: Vector128 accelerated {Vector128.IsHardwareAccelerated}, "
            + $"AdvSimd {System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported}, Vector256 accelerated {Vector256.IsHardwareAccelerated}");
        if (!Vector128.IsHardwareAccelerated)
        {
            log.WriteLine("error: no Vector128 acceleration here: the fast kernels never run, so there is nothing to compare; run on an arm64 or x64 machine");
            return 1;
        }
        int failures = 0;
        var rng = new Random(12345);
        int conv = 0, fc = 0;
        for (int i = 0; i < 200; i++) { failures += Conv(rng, i) ? 0 : 1; conv++; }
        for (int i = 0; i < 200; i++) { failures += FullyConnectedCase(rng, i) ? 0 : 1; fc++; }
        log.WriteLine($"kernels: {conv} random Conv2D and {fc} FullyConnected calls, fast vs reference: {(failures == 0 ? "identical" : failures + " differ")}");
        if (plan is not null)
        {
            string? difference = ComparePlan(plan, 40);
            if (difference is null)
                log.WriteLine($"plan {plan.ModelName}: 40 inferences and 40 training steps, fast vs reference: logits, arena and parameters identical");
            else
            {
                log.WriteLine($"plan {plan.ModelName}: {difference}");
                failures++;
            }
        }
        else
        {
            log.WriteLine("plan: none given (--plan): the whole-plan comparison was skipped");
        }
        KernelMode.UseFast = true;
        log.WriteLine(failures == 0 ? "selftest passed" : $"error: selftest failed ({failures} mismatches): the fast kernels do not match the reference on this machine");
        return failures == 0 ? 0 : 1;
    }

    private static string? ComparePlan(PlanImage plan, int steps)
    {
        Dataset data = ImuGestures.Load(Split.Test);
        var fast = new Executor(plan) { LearningRate = 0.02f };
        var reference = new Executor(plan) { LearningRate = 0.02f };
        fast.Seed(7);
        reference.Seed(7);
        var input = new float[fast.InputLength];
        for (int i = 0; i < steps; i++)
        {
            for (int k = 0; k < input.Length; k++) input[k] = data.Images[i * input.Length + k] * (1f / 255f);
            foreach (bool training in new[] { false, true })
            {
                KernelMode.UseFast = true;
                fast.TrySetInput(input, 0);
                if (training) fast.TrainStep(data.Labels[i]); else fast.Invoke();
                KernelMode.UseFast = false;
                reference.TrySetInput(input, 0);
                if (training) reference.TrainStep(data.Labels[i]); else reference.Invoke();
                KernelMode.UseFast = true;
                if (!training)
                    for (int c = 0; c < plan.NumClasses; c++)
                        if (fast.Output(c) != reference.Output(c))
                            return $"window {i}: logit {c} is {fast.Output(c)} fast, {reference.Output(c)} reference";
                int arena = First(fast.Arena, reference.Arena);
                if (arena >= 0) return $"window {i} ({(training ? "training step" : "inference")}): arena byte {arena} differs";
                int param = First(fast.Params, reference.Params);
                if (param >= 0) return $"window {i} ({(training ? "training step" : "inference")}): parameter byte {param} differs";
            }
        }
        return null;
    }

    private static int First(byte[] a, byte[] b)
    {
        for (int i = 0; i < a.Length; i++) if (a[i] != b[i]) return i;
        return a.Length == b.Length ? -1 : a.Length;
    }

    private static bool Conv(Random rng, int index)
    {
        int groups = rng.Next(3) == 0 ? 2 : 1;
        int inC = groups * rng.Next(1, 9), outC = groups * rng.Next(1, 9);
        int k = rng.Next(3) switch { 0 => 1, 1 => 3, _ => 5 };
        int h = rng.Next(k, 20), w = index % 4 == 0 ? 1 : rng.Next(k, 20);
        int s = rng.Next(1, 3), pad = k / 2;
        var p = new ConvParams
        {
            InC = inC,
            H = h,
            W = w,
            OutC = outC,
            Kernel = k,
            Stride = s,
            Pad = pad,
            Groups = groups,
            OH = (h + 2 * pad - k) / s + 1,
            OW = (w + 2 * pad - k) / s + 1,
            InputZeroPoint = rng.Next(-128, 128),
            OutputZeroPoint = rng.Next(-128, 128),
            ActMin = -128,
            ActMax = 127,
        };
        if (p.OH < 1 || p.OW < 1) return true;
        byte[] x = Bytes(rng, inC * h * w);
        byte[] weights = Bytes(rng, outC * (inC / groups) * k * k);
        for (int i = 0; i < weights.Length; i++) if (weights[i] == 0x80) weights[i] = 0x81; // weights are in [-127, 127]
        byte[] consts = Constants(rng, outC);
        byte[] yFast = new byte[outC * p.OH * p.OW], yRef = new byte[yFast.Length];
        Conv2D.RunSimd(p, x, 0, weights, 0, consts, 0, consts, 4 * outC, 8 * outC, yFast, 0);
        Conv2D.RunReference(p, x, 0, weights, 0, consts, 0, consts, 4 * outC, 8 * outC, yRef, 0);
        return yFast.AsSpan().SequenceEqual(yRef);
    }

    private static bool FullyConnectedCase(Random rng, int index)
    {
        int inF = rng.Next(1, 200), outF = rng.Next(1, 40);
        var p = new FullyConnectedParams
        {
            In = inF,
            Out = outF,
            InputZeroPoint = rng.Next(-128, 128),
            OutputZeroPoint = rng.Next(-128, 128),
            ActMin = -128,
            ActMax = 127,
        };
        byte[] x = Bytes(rng, inF);
        byte[] weights = Bytes(rng, inF * outF);
        for (int i = 0; i < weights.Length; i++) if (weights[i] == 0x80) weights[i] = 0x81;
        byte[] consts = Constants(rng, outF);
        byte[] yFast = new byte[outF], yRef = new byte[outF];
        FullyConnected.RunSimd(p, x, 0, weights, 0, consts, 0, consts, 4 * outF, 8 * outF, yFast, 0);
        FullyConnected.RunReference(p, x, 0, weights, 0, consts, 0, consts, 4 * outF, 8 * outF, yRef, 0);
        return yFast.AsSpan().SequenceEqual(yRef);
    }

    private static byte[] Bytes(Random rng, int n)
    {
        var b = new byte[n];
        rng.NextBytes(b);
        return b;
    }

    // int32 bias, Q31 multiplier in [2^30, 2^31) and shift in [-12, 1], per channel, little-endian, one after another.
    private static byte[] Constants(Random rng, int channels)
    {
        var b = new byte[12 * channels];
        for (int c = 0; c < channels; c++)
        {
            BitConverter.TryWriteBytes(b.AsSpan(4 * c), rng.Next(-100000, 100000));
            BitConverter.TryWriteBytes(b.AsSpan(4 * channels + 4 * c), rng.Next(1 << 30, int.MaxValue));
            BitConverter.TryWriteBytes(b.AsSpan(8 * channels + 4 * c), rng.Next(-12, 2));
        }
        return b;
    }
}
