namespace TinyTrain.Compiler.Tests.Zoo;

using TinyTrain.Compiler.Analysis;
using TinyTrain.Compiler.Graphs;
using TinyTrain.Compiler.Zoo;

// The mobile nets are checked against data/reference/tte-models.json's per-layer list, which was
// read from tiny-training's shipped models; the expected counts below are summed from that list,
// not from the zoo's own block tables.
public class ModelZooTests
{
    public static TheoryData<string> MobileNames => new() { "mbv2-w0.35", "proxyless-w0.3", "mcunet-5fps" };

    [Fact]
    public void Names_AreTheFiveModels()
    {
        Assert.Equal(new[] { "cnn-s", "mbv2-w0.35", "proxyless-w0.3", "mcunet-5fps", "imu-cnn" }, ModelZoo.Names);
    }

    [Theory]
    [MemberData(nameof(MobileNames))]
    public void ParamsAndMacs_At128_EqualTheReferenceLayerSums(string name)
    {
        RefModel reference = TteReference.Model(name);
        long weights = reference.Layers.Sum(l => l.Weights);
        long biases = reference.Layers.Sum(l => l.Biases);
        long macs = reference.Layers.Sum(l => l.Macs);
        // The file's own totals agree with its layers; otherwise the comparison below means little.
        Assert.Equal(reference.ParamsWPlusB, weights + biases);
        Assert.Equal(reference.ParamsFp32Style, weights + 2 * biases);
        Assert.Equal(reference.TotalMacs, macs);

        ModelStats stats = ModelStats.Compute(ModelZoo.Build(name));

        Assert.Equal(weights + biases + reference.ClassifierParams10, stats.Params);
        Assert.Equal(weights + 2 * biases + reference.ClassifierParams10, stats.ParamsFloat);
        Assert.Equal(macs + reference.ClassifierMacs10, stats.Macs);
    }

    [Theory]
    [MemberData(nameof(MobileNames))]
    public void Convs_MatchTheReferenceLayerList(string name)
    {
        RefModel reference = TteReference.Model(name);
        Graph g = ModelZoo.Build(name);

        Assert.Equal(new Shape(3, 128, 128), g.InputShape);
        List<Node> convs = g.Nodes.Where(n => n.Kind == OpKind.Conv2d).ToList();
        Assert.Equal(reference.NConv, reference.Layers.Count);
        Assert.Equal(reference.NConv, convs.Count);
        for (int i = 0; i < convs.Count; i++)
        {
            Node conv = convs[i];
            RefLayer l = reference.Layers[i];
            Assert.Equal(l.Name, conv.Name);
            Assert.Equal(new Shape(l.OutCh, l.OutHw, l.OutHw), conv.Shape);
            Assert.Equal(l.InCh, g.Nodes[conv.Inputs[0]].Shape.C);
            Assert.Equal((l.Kernel, l.Stride, l.Pad, l.Groups), (conv.Kernel, conv.Stride, conv.Padding, conv.Groups));
            Assert.Equal(l.Type == "depthwise", conv.IsDepthwise);
            Assert.Null(conv.Bias);

            Node bn = SoleConsumer(g, conv);
            Assert.Equal(OpKind.BatchNorm, bn.Kind);
            Node? afterBn = Consumers(g, bn).FirstOrDefault();
            Assert.Equal(l.Act == "relu6", afterBn?.Kind == OpKind.Relu6);
            Assert.Equal(l.ResidualAddAfter, afterBn?.Kind == OpKind.Add);
        }
        Assert.Equal(reference.NResidualAdds, g.Nodes.Count(n => n.Kind == OpKind.Add));

        Node classifier = Assert.Single(g.Nodes, n => n.Kind == OpKind.Linear);
        Assert.Same(g.Output, classifier);
        Assert.Equal(OpKind.GlobalAvgPool, g.Nodes[classifier.Inputs[0]].Kind);
        Assert.Equal(new[] { ModelZoo.DefaultClasses, reference.ClassifierInCh }, classifier.Weight!.Dims);
        Assert.Equal(10, g.NumClasses);
    }

    [Theory]
    [MemberData(nameof(MobileNames))]
    public void PeakActivation_IsTheLargestConvOrAddInPlusOut(string name)
    {
        RefModel reference = TteReference.Model(name);
        long expected = 0;
        foreach (RefLayer l in reference.Layers)
        {
            long output = (long)l.OutCh * l.OutHw * l.OutHw;
            expected = Math.Max(expected, (long)l.InCh * l.InHw * l.InHw + output);
            if (l.ResidualAddAfter) expected = Math.Max(expected, 3 * output); // two inputs, one output
        }

        Assert.Equal(expected, ModelStats.Compute(ModelZoo.Build(name)).PeakActivationBytesInt8);
    }

    [Theory]
    [MemberData(nameof(MobileNames))]
    public void Resolution96_ScalesConvMacsByNineSixteenths_AndKeepsParams(string name)
    {
        RefModel reference = TteReference.Model(name);
        ModelStats at128 = ModelStats.Compute(ModelZoo.Build(name, 128));
        ModelStats at96 = ModelStats.Compute(ModelZoo.Build(name, 96));

        // Every feature map shrinks from 64,32,16,8,4 to 48,24,12,6,3: each conv does (3/4)^2 of
        // its work; the classifier after global pooling does the same.
        long convMacs128 = at128.Macs - reference.ClassifierMacs10;
        Assert.Equal(0, convMacs128 * 9 % 16);
        Assert.Equal(convMacs128 * 9 / 16 + reference.ClassifierMacs10, at96.Macs);
        Assert.Equal(at128.Params, at96.Params);
        Assert.Equal(at128.ParamsFloat, at96.ParamsFloat);
    }

    [Theory]
    [InlineData("mbv2-w0.35", 144)]
    [InlineData("proxyless-w0.3", 160)]
    [InlineData("mcunet-5fps", 224)]
    [InlineData("mcunet-5fps", 100)]
    public void AnyResolution_GivesTheMacsOfTheReferenceGeometry(string name, int resolution)
    {
        RefModel reference = TteReference.Model(name);
        // Re-run the reference's convs (kernel, stride, padding) at the new side; weights do not change.
        long expected = reference.ClassifierMacs10;
        int side = resolution;
        foreach (RefLayer l in reference.Layers)
        {
            side = (side + 2 * l.Pad - l.Kernel) / l.Stride + 1;
            expected += l.Weights * side * side;
        }

        Graph g = ModelZoo.Build(name, resolution);
        ModelStats stats = ModelStats.Compute(g);

        Assert.Equal(expected, stats.Macs);
        Assert.Equal(reference.ParamsWPlusB + reference.ClassifierParams10, stats.Params);
        Assert.Equal(new Shape(3, resolution, resolution), g.InputShape);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(1000)]
    public void ClassCount_SizesOnlyTheClassifier(int classes)
    {
        RefModel reference = TteReference.Model("mbv2-w0.35");
        Graph g = ModelZoo.Build("mbv2-w0.35", classes: classes);
        ModelStats stats = ModelStats.Compute(g);

        Assert.Equal(classes, g.NumClasses);
        Assert.Equal(reference.ParamsWPlusB + (reference.ClassifierInCh + 1L) * classes, stats.Params);
        Assert.Equal(reference.TotalMacs + (long)reference.ClassifierInCh * classes, stats.Macs);
    }

    [Fact]
    public void CnnS_IsSmall_AndHasTheDocumentedLayers()
    {
        Graph g = ModelZoo.Build("cnn-s");
        ModelStats stats = ModelStats.Compute(g);

        Assert.Equal(new Shape(1, 28, 28), g.InputShape);
        Assert.Equal(10, g.NumClasses);
        Assert.True(stats.Params <= 60_000, $"cnn-s has {stats.Params} parameters");
        // conv 144 + 4608 + 18432, fc 3136*10 + 10; BN folds to 16+32+64 biases (2x that in the float graph).
        Assert.Equal(54_666, stats.Params);
        Assert.Equal(54_778, stats.ParamsFloat);
        Assert.Equal(54_778, g.ParameterCount());
        Assert.Equal(
            new[] { new Shape(16, 28, 28), new Shape(32, 14, 14), new Shape(64, 7, 7) },
            g.Nodes.Where(n => n.Kind == OpKind.Conv2d).Select(n => n.Shape));
        Assert.All(g.Nodes.Where(n => n.Kind == OpKind.Conv2d), n => Assert.Null(n.Bias));
        Assert.Equal(new[] { 10, 64 * 7 * 7 }, g.Output.Weight!.Dims);
        Assert.Equal(1_950_592, stats.Macs);                  // 144*784 + 4608*196 + 18432*49 + 31360
        Assert.Equal(12_544 + 6_272, stats.PeakActivationBytesInt8);
        Assert.Equal("conv2", stats.PeakActivationLayer);
    }

    [Fact]
    public void CnnS_AtAnotherResolution_FlattensWhatTheConvsLeave()
    {
        Graph g = ModelZoo.Build("cnn-s", resolution: 32, classes: 5);
        Assert.Equal(new[] { 5, 64 * 8 * 8 }, g.Output.Weight!.Dims);
    }

    [Fact]
    public void SameSeed_SameWeights_OtherSeed_OtherWeights()
    {
        float[] a = ModelZoo.Build("cnn-s", seed: 7).Nodes[1].Weight!.Data;
        float[] b = ModelZoo.Build("cnn-s", seed: 7).Nodes[1].Weight!.Data;
        float[] c = ModelZoo.Build("cnn-s", seed: 8).Nodes[1].Weight!.Data;
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
    }

    [Fact]
    public void UnknownName_ListsTheKnownModels()
    {
        var e = Assert.Throws<TinyTrainException>(() => ModelZoo.Build("resnet-50"));
        Assert.Contains("'resnet-50'", e.Message);
        foreach (string name in ModelZoo.Names)
            Assert.Contains(name, e.Message);
    }

    [Theory]
    [InlineData("mbv2-w0.35", 16, 32)]
    [InlineData("mcunet-5fps", 31, 32)]
    [InlineData("cnn-s", 3, 4)]
    [InlineData("cnn-s", 0, 4)]
    public void TinyResolution_IsRefused_WithTheMinimum(string name, int resolution, int minimum)
    {
        var e = Assert.Throws<TinyTrainException>(() => ModelZoo.Build(name, resolution));
        Assert.Contains($"resolution {resolution} is too small", e.Message);
        Assert.Contains($"at least {minimum}x{minimum}", e.Message);
        Assert.Contains(name, e.Message);
    }

    [Fact]
    public void SmallestAllowedResolution_Builds()
    {
        Graph g = ModelZoo.Build("proxyless-w0.3", 32);
        Assert.Equal(new Shape(96, 1, 1), g.Nodes[g.Output.Inputs[0]].Shape);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(0)]
    public void FewerThanTwoClasses_IsRefused(int classes)
    {
        var e = Assert.Throws<TinyTrainException>(() => ModelZoo.Build("cnn-s", classes: classes));
        Assert.Contains("classes must be at least 2", e.Message);
    }

    private static IEnumerable<Node> Consumers(Graph g, Node n) => g.Nodes.Where(c => c.Inputs.Contains(n.Id));

    private static Node SoleConsumer(Graph g, Node n) => Assert.Single(Consumers(g, n));
}
