namespace TinyTrain.Compiler.Zoo;

using TinyTrain.Compiler.Graphs;

/// <summary>
/// imu-cnn: a small 1-D conv network over IMU windows (imu-gestures: 6 channels x 64 samples), for gesture
/// recognition that keeps learning on the board.
/// </summary>
/// <remarks>
/// The window is the input (6, T, 1): time runs along H, W is 1. A 1-D conv of 3 taps is the IR's square 3x3 conv
/// with padding 1: along W only the middle kernel column meets data, the side columns only meet padding. Those
/// columns are set to zero here and get zero gradient, so they stay zero (the quantizer's per-channel scales are not
/// widened by them); they cost 2/3 of the conv weight bytes in Flash and nothing else. A native Kx1 kernel in the
/// IR and the kernels would save those bytes.
///   conv1 6->16 s1, conv2 16->32 s2, conv3 32->32 s2, conv4 32->32 s2 (each + BN + ReLU), global average pool over
///   time, fc 32->classes.
/// </remarks>
internal static class ImuCnn
{
    public const int DefaultWindow = 64;
    public const int Channels = 6;
    private const int TotalStride = 8;

    public static Graph Build(int window, int classes, int seed)
    {
        ModelZoo.CheckResolution("imu-cnn", window, TotalStride);
        var b = new GraphBuilder("imu-cnn", seed);
        Node x = b.Input(new Shape(Channels, window, 1));
        x = ConvBnRelu(b, x, 16, stride: 1, "conv1");
        x = ConvBnRelu(b, x, 32, stride: 2, "conv2");
        x = ConvBnRelu(b, x, 32, stride: 2, "conv3");
        x = ConvBnRelu(b, x, 32, stride: 2, "conv4");
        x = b.GlobalAvgPool(x, "gap");
        b.Linear(x, classes, bias: true, name: "fc");
        return b.Build();
    }

    private static Node ConvBnRelu(GraphBuilder b, Node x, int outChannels, int stride, string name)
    {
        Node conv = b.Conv(x, outChannels, kernel: 3, stride: stride, bias: false, name: name);
        ZeroSideColumns(conv.Weight!);
        x = b.BatchNorm(conv, name + ".bn");
        return b.Relu(x, name + ".relu");
    }

    // w is (OutC, InC, 3, 3): keep kx = 1, the column that meets the data when W = 1.
    private static void ZeroSideColumns(Tensor w)
    {
        float[] data = w.Data;
        for (int i = 0; i < data.Length; i++)
            if (i % 3 != 1) data[i] = 0f;
    }
}
