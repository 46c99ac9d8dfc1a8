namespace TinyTrain.Compiler.Zoo;

using TinyTrain.Compiler.Graphs;

/// <summary>
/// cnn-s: a three-conv network for 28x28 grayscale images (MNIST, Fashion-MNIST), small enough
/// to train end to end on a board.
/// </summary>
/// <remarks>
/// Parameters at 28x28 and 10 classes:
///   conv1 1->16 3x3    144 weights       conv2 16->32 3x3   4608 weights
///   conv3 32->64 3x3 18432 weights       fc 3136->10       31360 weights + 10 biases
/// = 54554 in convs and fc, + 112 folded BN biases = 54666 deployable (ModelStats.Params);
/// the float graph holds 54554 + 224 BN gamma/beta = 54778 (ModelStats.ParamsFloat).
/// </remarks>
internal static class CnnS
{
    public const int DefaultResolution = 28;

    // Two stride-2 convs.
    private const int TotalStride = 4;

    public static Graph Build(int resolution, int classes, int seed)
    {
        ModelZoo.CheckResolution("cnn-s", resolution, TotalStride);
        var b = new GraphBuilder("cnn-s", seed);
        Node x = b.Input(new Shape(1, resolution, resolution));
        x = ConvBnRelu(b, x, 16, stride: 1, "conv1");
        x = ConvBnRelu(b, x, 32, stride: 2, "conv2");
        x = ConvBnRelu(b, x, 64, stride: 2, "conv3");
        x = b.Flatten(x, "flatten");
        b.Linear(x, classes, bias: true, name: "fc");
        return b.Build();
    }

    private static Node ConvBnRelu(GraphBuilder b, Node x, int outChannels, int stride, string name)
    {
        // No conv bias: the BatchNorm shift that follows does its job.
        x = b.Conv(x, outChannels, kernel: 3, stride: stride, bias: false, name: name);
        x = b.BatchNorm(x, name + ".bn");
        return b.Relu(x, name + ".relu");
    }
}
