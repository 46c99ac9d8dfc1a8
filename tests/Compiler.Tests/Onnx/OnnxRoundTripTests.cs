namespace TinyTrain.Compiler.Tests.Onnx;

using TinyTrain.Compiler.Graphs;
using TinyTrain.Compiler.Onnx;
using TinyTrain.Compiler.Zoo;
using static OnnxTestSupport;

// Export then import must give back the graph: same nodes, same attributes, the same bits in
// every parameter, and so the same outputs.
public class OnnxRoundTripTests
{
    public static TheoryData<string> ZooNames => new() { "cnn-s", "mbv2-w0.35", "proxyless-w0.3", "mcunet-5fps" };

    [Fact]
    public void AllOps_RoundTrip_SameStructureAndBits()
    {
        Graph graph = AllOps();
        Graph back = Import(Export(graph));
        AssertSameGraph(graph, back);
    }

    [Fact]
    public void AllOps_RoundTrip_SameOutputs()
    {
        Graph graph = AllOps();
        Graph back = Import(Export(graph));
        float[] x = RandomInput(graph.InputShape, 5, seed: 7);
        Assert.Equal(RunFloat(graph, x, 5), RunFloat(back, x, 5));
    }

    [Fact]
    public void Heads_RoundTrip_DropsTheExportersReshapes()
    {
        Graph graph = Heads();
        Graph back = Import(Export(graph));
        AssertSameGraph(graph, back);
        float[] x = RandomInput(graph.InputShape, 3, seed: 8);
        Assert.Equal(RunFloat(graph, x, 3), RunFloat(back, x, 3));
    }

    [Theory]
    [MemberData(nameof(ZooNames))]
    public void Zoo_RoundTrip_SameStructureAndBits(string name)
    {
        Graph graph = Randomize(ModelZoo.Build(name, name == "cnn-s" ? 28 : 32, 10, seed: 3), 3);
        AssertSameGraph(graph, Import(Export(graph)));
    }

    [Fact]
    public void Export_ToFile_ImportsFromFile_WithGraphName()
    {
        Graph graph = AllOps();
        string dir = Directory.CreateTempSubdirectory("tinytrain-onnx").FullName;
        try
        {
            string path = Path.Combine(dir, "exported.onnx");
            OnnxExporter.Export(graph, path);
            Graph back = OnnxImporter.Import(path);
            Assert.Equal("all-ops", back.Name);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Export_WritesTheAgreedInterface()
    {
        var model = Parse(Export(AllOps()));
        Assert.Equal(8, model.IrVersion);
        Assert.Equal(13, model.OpsetImport.Single(o => o.Domain == "").Version);
        Assert.Contains(model.MetadataProps, p => p.Key == "tinytrain.model" && p.Value == "all-ops");
        Assert.False(string.IsNullOrEmpty(model.DocString));
        var input = model.Graph.Input.Single();
        Assert.Equal("input", input.Name);
        Assert.Equal("batch", input.Type.TensorType.Shape.Dim[0].DimParam);
        Assert.Equal(new long[] { 3, 16, 16 }, input.Type.TensorType.Shape.Dim.Skip(1).Select(d => d.DimValue));
        var output = model.Graph.Output.Single();
        Assert.Equal("logits", output.Name);
        Assert.Equal(10, output.Type.TensorType.Shape.Dim[1].DimValue);
        Assert.Equal(
            new[] { "Conv", "BatchNormalization", "Relu", "Conv", "BatchNormalization", "Clip", "Conv", "BatchNormalization", "Add",
                    "AveragePool", "Conv", "Clip", "GlobalAveragePool", "Flatten", "Gemm" },
            model.Graph.Node.Select(n => n.OpType));
        Assert.Equal(AllOps().Nodes.Skip(1).Select(n => n.Name), model.Graph.Node.Select(n => n.Name));
        var dw = model.Graph.Node.Single(n => n.Name == "dw");
        Assert.Equal(8, dw.Attribute.Single(a => a.Name == "group").I);
        Assert.Equal(2, dw.Input.Count);   // no bias input when the conv has none
    }

    [Fact]
    public void Import_NoModelName_UsesFileName()
    {
        var model = Parse(Export(AllOps()));
        model.MetadataProps.Clear();
        Graph back = Import(Google.Protobuf.MessageExtensions.ToByteArray(model), "some/dir/my-net.onnx");
        Assert.Equal("my-net", back.Name);
    }

    internal static void AssertSameGraph(Graph expected, Graph actual)
    {
        Assert.Equal(expected.Name, actual.Name);
        Assert.Equal(expected.Nodes.Select(n => n.ToString()), actual.Nodes.Select(n => n.ToString()));
        for (int i = 0; i < expected.Nodes.Count; i++)
        {
            Node e = expected.Nodes[i], a = actual.Nodes[i];
            Assert.Equal(e.Inputs, a.Inputs);
            Assert.Equal((e.Kernel, e.Stride, e.Padding, e.Groups), (a.Kernel, a.Stride, a.Padding, a.Groups));
            Assert.Equal(e.Epsilon, a.Epsilon);
            Assert.Equal(e.Momentum, a.Momentum);
            AssertSameBits(e.Weight, a.Weight, e.Name);
            AssertSameBits(e.Bias, a.Bias, e.Name);
            AssertSameBits(e.RunningMean, a.RunningMean, e.Name);
            AssertSameBits(e.RunningVar, a.RunningVar, e.Name);
        }
    }

    private static void AssertSameBits(Tensor? expected, Tensor? actual, string node)
    {
        if (expected is null)
        {
            Assert.Null(actual);
            return;
        }
        Assert.NotNull(actual);
        Assert.Equal(expected.Dims, actual.Dims);
        for (int i = 0; i < expected.Length; i++)
            if (BitConverter.SingleToInt32Bits(expected.Data[i]) != BitConverter.SingleToInt32Bits(actual.Data[i]))
                Assert.Fail($"node '{node}': parameter {expected} differs at {i}: {expected.Data[i]} vs {actual.Data[i]}");
    }
}
