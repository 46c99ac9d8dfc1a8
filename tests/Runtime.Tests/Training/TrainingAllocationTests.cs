namespace TinyTrain.Runtime.Tests.Training;

using TinyTrain.Runtime.Kernels;

/// <summary>The Step phase allocates nothing: every training kernel, 50 calls, zero bytes.</summary>
public class TrainingAllocationTests
{
    [Fact]
    public void TrainingKernels_AllocateNothing()
    {
        var rng = new Random(501);
        byte[] arena = new byte[64 * 1024];
        byte[] x = TrainTest.Int8(rng, 4096);
        byte[] w = TrainTest.Int8(rng, 8192, -127, 127);
        byte[] scales = TrainTest.Floats(TrainTest.Scales(rng, 64));
        byte[] bias = new byte[4 * 64];
        byte[] state = new byte[4 * 8192];
        byte[] dy = TrainTest.Floats(TrainTest.Normal(rng, 4096, 0.01));
        var conv = new ConvParams { InC = 4, H = 8, W = 8, OutC = 8, OH = 4, OW = 4, Kernel = 3, Stride = 2, Pad = 1, Groups = 2, InputZeroPoint = 3 };
        var dw = new DepthwiseParams { C = 8, H = 8, W = 8, OH = 8, OW = 8, Kernel = 3, Stride = 1, Pad = 1, InputZeroPoint = -2 };
        var fc = new FullyConnectedParams { In = 64, Out = 10, InputZeroPoint = 1 };
        var pool = new PoolParams { C = 4, H = 8, W = 8, OH = 4, OW = 4, Kernel = 2, Stride = 2 };
        var rule = new UpdateRule { LearningRate = 0.01f, Momentum = 0.9f, Qas = true };
        uint seed = StochasticRounding.DefaultSeed;
        float[] gw = new float[8 * 2 * 9];
        float[] gb = new float[8];

        long before = 0;
        for (int round = 0; round < 2; round++)
        {
            // Round 0 warms up (JIT, static initialisers); round 1 is measured.
            if (round == 1)
            {
                before = GC.GetAllocatedBytesForCurrentThread();
            }
            for (int i = 0; i < 50; i++)
            {
                Training.SaveMask(x, 0, 1000, 0, 128, arena, 0);
                Training.LossGradient(x, 0, 10, 0.1f, 0, 3, arena, 1024);
                Training.MaskGradient(arena, 0, dy, 0, 1000, arena, 2048);
                Training.MaskGradient(arena, 0, arena, 2048, 1000, arena, 2048);
                Training.GradientAdd(arena, 2048, dy, 0, 1000, arena, 2048);
                Conv2D.BackwardInput(conv, dy, 0, w, 0, scales, 0, arena, 8192, accumulate: i % 2 == 0);
                DepthwiseConv2D.BackwardInput(dw, dy, 0, w, 0, scales, 0, arena, 8192, accumulate: false);
                FullyConnected.BackwardInput(fc, dy, 0, w, 0, scales, 0, arena, 8192, accumulate: true);
                AvgPool.Backward(pool, dy, 0, arena, 16384, accumulate: false);
                GlobalAvgPool.Backward(pool, dy, 0, arena, 16384, accumulate: true);
                Conv2D.Update(conv, x, 0, dy, 0, w, 0, bias, 0, scales, 0, 0.05f, 1, rule, state, 0, ref seed);
                DepthwiseConv2D.Update(dw, x, 0, dy, 0, w, 0, bias, 0, scales, 0, 0.05f, 4, rule, state, 0, ref seed);
                FullyConnected.Update(fc, x, 0, dy, 0, w, 0, bias, 0, scales, 0, 0.05f, 16, rule, state, 0, ref seed);
                Conv2D.WeightGradient(conv, x, 0, dy, 0, 0.05f, 2, gw, gb);
                DepthwiseConv2D.WeightGradient(dw, x, 0, dy, 0, 0.05f, 8, gw, gb);
                FullyConnected.WeightGradient(fc, x, 0, dy, 0, 0.05f, 1, gw, null);
                StochasticRounding.Round(0.5f, ref seed);
                FloatMath.Log(FloatMath.Exp(0.3f));
            }
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
