namespace TinyTrain.Runtime.Tests.Training;

using TinyTrain.Runtime.Kernels;

/// <summary>Every training kernel refuses bad arguments with a message that names the op and the field.</summary>
public class TrainingRefusalTests
{
    private static void Refused(Action call, params string[] words)
    {
        var e = Assert.Throws<TinyTrainException>(call);
        foreach (string word in words)
        {
            Assert.Contains(word, e.Message);
        }
    }

    private static readonly ConvParams Conv = new() { InC = 2, H = 4, W = 4, OutC = 2, OH = 2, OW = 2, Kernel = 3, Stride = 2, Pad = 1, Groups = 1 };
    private static readonly FullyConnectedParams Fc = new() { In = 4, Out = 2 };

    [Fact]
    public void Elementwise()
    {
        byte[] buf = new byte[256];
        Refused(() => Training.LossGradient(buf, 0, 10, 0.1f, 0, 10, buf, 64), "LossGradient", "label is 10", "[0, 10)");
        Refused(() => Training.LossGradient(buf, 0, 10, 0.1f, 0, -1, buf, 64), "label is -1");
        Refused(() => Training.LossGradient(buf, 0, 10, 0f, 0, 1, buf, 64), "scale is 0");
        Refused(() => Training.LossGradient(buf, 0, 10, 0.1f, 0, 1, buf, 4), "overlaps");
        Refused(() => Training.SaveMask(buf, 0, 16, 5, 4, buf, 100), "SaveMask", "5..4");
        Refused(() => Training.SaveMask(buf, 0, 16, -129, 128, buf, 1), "SaveMask", "overlaps");
        Refused(() => Training.MaskGradient(buf, 0, buf, 16, 8, buf, 20), "MaskGradient", "partly overlaps");
        Refused(() => Training.GradientAdd(buf, 0, buf, 64, 16, buf, 4), "GradientAdd", "partly overlaps");
        Refused(() => Training.GradientAdd(buf, 0, buf, 64, 60, buf, 128), "GradientAdd", "needs bytes");
        Refused(() => Training.GradientAdd(buf, 0, buf, 64, 0, buf, 128), "count is 0");
    }

    [Fact]
    public void BackwardInput()
    {
        byte[] dy = new byte[4 * 8], w = new byte[2 * 2 * 9], scales = new byte[8], dx = new byte[4 * 32];
        ConvParams bad = Conv;
        bad.OH = 3;
        Refused(() => Conv2D.BackwardInput(bad, dy, 0, w, 0, scales, 0, dx, 0, false), "Conv2D.BackwardInput", "OH is 3");
        bad = Conv;
        bad.Groups = 3;
        Refused(() => Conv2D.BackwardInput(bad, dy, 0, w, 0, scales, 0, dx, 0, false), "Groups 3");
        Refused(() => Conv2D.BackwardInput(Conv, dy, 0, w, 0, scales, 0, dx, 4, false), "dx needs bytes");
        Refused(() => Conv2D.BackwardInput(Conv, dx, 0, w, 0, scales, 0, dx, 0, false), "dx", "overlaps dy");
        Refused(() => FullyConnected.BackwardInput(Fc, dy, 0, w, 30, scales, 0, dx, 0, false), "FullyConnected.BackwardInput", "w needs bytes");
        var pool = new PoolParams { C = 1, H = 4, W = 4, OH = 2, OW = 2, Kernel = 5, Stride = 2 };
        Refused(() => AvgPool.Backward(pool, dy, 0, dx, 0, false), "AvgPool.Backward", "Kernel 5");
        var dwp = new DepthwiseParams { C = 2, H = 4, W = 4, OH = 4, OW = 4, Kernel = 3, Stride = 1, Pad = -1 };
        Refused(() => DepthwiseConv2D.BackwardInput(dwp, dy, 0, w, 0, scales, 0, dx, 0, false), "DepthwiseConv2D.BackwardInput", "Pad is -1");
    }

    [Fact]
    public void Update()
    {
        byte[] x = new byte[4], dy = new byte[8], w = new byte[8], bias = new byte[8], state = new byte[64];
        byte[] scales = TrainTest.Floats([0.1f, 0f]);
        byte[] good = TrainTest.Floats([0.1f, 0.2f]);
        var rule = new UpdateRule { LearningRate = 0.1f };
        uint rng = 1, zero = 0;
        Refused(() => FullyConnected.Update(Fc, x, 0, dy, 0, w, 0, bias, 0, scales, 0, 1f, 4, rule, [], -1, ref rng), "FullyConnected.Update", "scales[1] is 0");
        Refused(() => FullyConnected.Update(Fc, x, 0, dy, 0, w, 0, bias, 0, good, 0, 1f, 5, rule, [], -1, ref rng), "trainChannels is 5", "[0, 4]");
        Refused(() => FullyConnected.Update(Fc, x, 0, dy, 0, w, 0, bias, 0, good, 0, 1f, 4, rule, [], -1, ref zero), "rng is 0");
        Refused(() => FullyConnected.Update(Fc, x, 0, dy, 0, w, 0, bias, 0, good, 0, -1f, 4, rule, [], -1, ref rng), "inputScale is -1");
        Refused(() => FullyConnected.Update(Fc, x, 0, dy, 0, w, 0, bias, 0, good, 0, 1f, 4, new UpdateRule { LearningRate = float.NaN }, [], -1, ref rng), "LearningRate is NaN");
        Refused(() => FullyConnected.Update(Fc, x, 0, dy, 0, w, 0, bias, 0, good, 0, 1f, 4, new UpdateRule { Momentum = 1f }, state, 0, ref rng), "Momentum is 1");
        // 8 trained weights + 2 biases = 40 bytes of state.
        Refused(() => FullyConnected.Update(Fc, x, 0, dy, 0, w, 0, bias, 0, good, 0, 1f, 4, rule, state, 32, ref rng), "state needs bytes [32, 72)");
        Refused(() => FullyConnected.Update(Fc, x, 0, dy, 0, state, 0, bias, 0, good, 0, 1f, 4, rule, state, 0, ref rng), "state", "overlaps w");
        Refused(() => FullyConnected.Update(Fc, w, 0, dy, 0, w, 0, bias, 0, good, 0, 1f, 4, rule, [], -1, ref rng), "w", "overlaps x");
        var pz = Fc;
        pz.InputZeroPoint = 200;
        Refused(() => FullyConnected.Update(pz, x, 0, dy, 0, w, 0, bias, 0, good, 0, 1f, 4, rule, [], -1, ref rng), "InputZeroPoint is 200");
        Refused(() => Conv2D.Update(Conv, new byte[32], 0, new byte[32], 0, new byte[36], 0, bias, 0, good, 0, 1f, 3, rule, [], -1, ref rng), "Conv2D.Update", "trainChannels is 3", "[0, 2]");
        Refused(() => Conv2D.WeightGradient(Conv, new byte[32], 0, new byte[32], 0, 1f, 2, new float[10], null), "Conv2D.WeightGradient", "dw holds 10");
        var dwp = new DepthwiseParams { C = 2, H = 2, W = 2, OH = 2, OW = 2, Kernel = 1, Stride = 1 };
        Refused(() => DepthwiseConv2D.Update(dwp, new byte[8], 0, new byte[32], 0, new byte[2], 0, bias, 0, good, 0, 1f, 3, rule, [], -1, ref rng), "DepthwiseConv2D.Update", "trainChannels is 3");
    }
}
