namespace TinyTrain.Compiler.Tests.Zoo;

using TinyTrain.Compiler.Analysis;
using TinyTrain.Compiler.Graphs;

// Hand-counted small graphs for each ModelStats definition.
public class ModelStatsTests
{
    [Fact]
    public void ConvBnReluPoolLinear_HandCounted()
    {
        var b = new GraphBuilder("tiny");
        Node x = b.Input(new Shape(3, 5, 5));                 // 75
        x = b.Conv(x, 4, kernel: 3, name: "conv");            // 4x5x5 = 100; w 4*3*3*3 = 108
        x = b.BatchNorm(x, "bn");                             // gamma, beta: 8
        x = b.Relu(x, "relu");
        x = b.GlobalAvgPool(x, "gap");                        // 4
        b.Linear(x, 2, name: "fc");                           // w 8 + b 2
        ModelStats s = ModelStats.Compute(b.Build());

        Assert.Equal(108 + 4 + 10, s.Params);                 // BN folds to 4 conv biases
        Assert.Equal(108 + 8 + 10, s.ParamsFloat);
        Assert.Equal(108 * 25 + 8, s.Macs);
        Assert.Equal(175, s.PeakActivationBytesInt8);        // conv: 75 in + 100 out; bn and relu run in place
        Assert.Equal("conv", s.PeakActivationLayer);

        Assert.Equal(6, s.Layers.Count);
        LayerStats conv = s.Layers[1];
        Assert.Equal(("conv", OpKind.Conv2d, new Shape(4, 5, 5)), (conv.Name, conv.Kind, conv.OutputShape));
        Assert.Equal((112, 108, 2700L), (conv.Params, conv.ParamsFloat, conv.Macs));
        Assert.Equal((400L, 100L), (conv.ActivationBytesFloat32, conv.ActivationBytesInt8));
        Assert.Equal((0, 8, 0L), (s.Layers[2].Params, s.Layers[2].ParamsFloat, s.Layers[2].Macs));
    }

    [Fact]
    public void BatchNormAfterASharedConv_IsNotFolded_AndAddCountsBothInputs()
    {
        var b = new GraphBuilder("skip");
        Node x = b.Input(new Shape(2, 3, 3));                 // 18
        Node c = b.Conv(x, 2, kernel: 1, name: "conv");       // w 4, read by bn and add
        Node bn = b.BatchNorm(c, "bn");
        Node sum = b.Add(bn, c, "add");                       // 18 + 18 in, 18 out
        Node p = b.GlobalAvgPool(sum, "gap");
        b.Linear(p, 2, name: "fc");                           // w 4 + b 2
        ModelStats s = ModelStats.Compute(b.Build());

        Assert.Equal(4 + 4 + 6, s.Params);                    // BN keeps scale and shift
        Assert.Equal(s.ParamsFloat, s.Params);
        Assert.Equal(4 * 9 + 4, s.Macs);
        Assert.Equal(54, s.PeakActivationBytesInt8);
        Assert.Equal("add", s.PeakActivationLayer);
    }
}
