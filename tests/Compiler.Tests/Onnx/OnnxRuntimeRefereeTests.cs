namespace TinyTrain.Compiler.Tests.Onnx;

using TinyTrain.Compiler.Graphs;
using TinyTrain.Compiler.Zoo;
using static OnnxTestSupport;

// ONNX Runtime runs the exported file; FloatNetwork runs our graph. They must agree, which checks
// the exporter's op mapping (and FloatNetwork) against an implementation we did not write.
public class OnnxRuntimeRefereeTests
{
    public static TheoryData<string> ZooNames => new() { "cnn-s", "mbv2-w0.35", "proxyless-w0.3", "mcunet-5fps" };

    [Fact]
    public void AllOps_OrtMatchesFloatNetwork()
    {
        AssertOrtAgrees(AllOps(), batch: 4);
    }

    [Fact]
    public void Heads_OrtMatchesFloatNetwork()
    {
        AssertOrtAgrees(Heads(), batch: 3);
    }

    [Theory]
    [MemberData(nameof(ZooNames))]
    public void Zoo_OrtMatchesFloatNetwork(string name)
    {
        Graph graph = Randomize(ModelZoo.Build(name, name == "cnn-s" ? 28 : 32, 10, seed: 5), 5);
        AssertOrtAgrees(graph, batch: 3);
    }

    private static void AssertOrtAgrees(Graph graph, int batch)
    {
        float[] x = RandomInput(graph.InputShape, batch, seed: 11);
        float[] expected = RunFloat(graph, x, batch);
        float[] actual = RunOrt(Export(graph), x, batch, graph.InputShape, graph.NumClasses);
        AssertClose(expected, actual);
    }
}
