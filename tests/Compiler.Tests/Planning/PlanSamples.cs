namespace TinyTrain.Compiler.Tests.Planning;

using TinyTrain.Compiler.Learning;
using TinyTrain.Runtime.Execution;
using TinyTrain.Runtime.Plans;
using PlanType = TinyTrain.Runtime.Plans.Plan;

/// <summary>What the memory-option tests share: random int8 inputs, the first op that runs, and the bit-for-bit comparison
/// of two plans that must learn the same.</summary>
internal static class PlanSamples
{
    /// <summary>The largest shipped scheme of a model (data/reference/tte-models.json): biases of the last convs, weights of
    /// expansion convs (mcunet's last on half its input channels).</summary>
    public static SparseScheme LargestScheme(string model) => model switch
    {
        "mbv2-w0.35" => new SparseScheme(34, [27, 30, 33, 36, 39, 42, 45, 48], [1, 1, 1, 1, 1, 1, 1, 1]),
        "proxyless-w0.3" => new SparseScheme(45, [36, 39, 42, 45, 48, 51, 54, 57], [1, 1, 1, 1, 1, 1, 1, 1]),
        "mcunet-5fps" => new SparseScheme(23, [21, 24, 27, 30, 36, 39], [1, 1, 1, 1, 1, 0.5]),
        _ => throw new ArgumentException($"no shipped scheme for {model}"),
    };

    /// <summary>A random int8 input of the plan's input size.</summary>
    public static byte[] RandomInput(PlanType plan, int seed)
    {
        var input = new byte[plan.Tensor(plan.InputTensor).ByteLength];
        new Random(seed).NextBytes(input);
        return input;
    }

    /// <summary>The first op that is not an Init op (a first stage, when the plan has one).</summary>
    public static int FirstRunOp(PlanType plan)
    {
        int n = 0;
        while (n < plan.OpCount && plan.Op(n).Phase == OpPhase.Init) n++;
        return n;
    }

    /// <summary>
    /// Trains <paramref name="a"/> and <paramref name="b"/> on the same random inputs for <paramref name="steps"/> steps from the
    /// same seed: the losses, predictions, learned parameters and the logits after each step are bit for bit the same.
    /// </summary>
    public static void AssertSameTraining(Executor a, Executor b, int steps, int inputSeed)
    {
        a.Seed(7);
        b.Seed(7);
        for (int step = 0; step < steps; step++)
        {
            byte[] input = RandomInput(a.Plan, inputSeed + step);
            a.SetInput(input, 0);
            b.SetInput(input, 0);
            float la = a.TrainStep(step % a.Plan.NumClasses), lb = b.TrainStep(step % b.Plan.NumClasses);
            Assert.Equal(BitConverter.SingleToInt32Bits(la), BitConverter.SingleToInt32Bits(lb));
            Assert.Equal(a.LastPrediction, b.LastPrediction);
            Assert.Equal(a.Params, b.Params);
            a.SetInput(input, 0);
            b.SetInput(input, 0);
            a.Invoke();
            b.Invoke();
            Assert.Equal(a.Arena.AsSpan(a.OutputOffset, a.OutputLength).ToArray(), b.Arena.AsSpan(b.OutputOffset, b.OutputLength).ToArray());
        }
    }
}
