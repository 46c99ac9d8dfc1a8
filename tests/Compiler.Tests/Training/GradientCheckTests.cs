using TinyTrain.Compiler.Graphs;
using TinyTrain.Compiler.Training;

namespace TinyTrain.Compiler.Tests.Training;

/// <summary>Every backward rule of the float trainer against central finite differences of the loss.</summary>
public class GradientCheckTests
{
    private static Graphs.Graph EveryOpGraph()
    {
        var b = new GraphBuilder("every-op", seed: 3);
        Node x = b.Input(new Shape(2, 8, 8));
        Node a = b.Relu6(b.BatchNorm(b.Conv(x, 4, 3, name: "conv")));                 // 4x8x8
        Node d = b.BatchNorm(b.DepthwiseConv(a, 3, name: "dw"));                      // 4x8x8
        Node r = b.Relu(b.Add(a, d));
        Node p = b.AvgPool(r, 2, 2);                                                  // 4x4x4
        Node s = b.Conv(p, 6, 3, stride: 2, bias: true, name: "strided");             // 6x2x2
        Node g = b.Conv(s, 6, 1, groups: 2, bias: true, name: "grouped");             // 6x2x2
        Node f = b.Flatten(g);
        Node left = b.Linear(f, 3, name: "fc");
        return b.Build();
    }

    private static Graphs.Graph GapGraph()
    {
        var b = new GraphBuilder("gap", seed: 5);
        Node x = b.Input(new Shape(3, 7, 7));
        Node c = b.Relu(b.Conv(x, 5, 3, stride: 2, bias: true));                      // 5x4x4
        Node pw = b.Conv(c, 8, 1, bias: true);                                        // pointwise, dense
        Node gap = b.GlobalAvgPool(pw);
        b.Linear(gap, 4);
        return b.Build();
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void Analytic_gradients_match_finite_differences(int which)
    {
        Graphs.Graph graph = which == 0 ? EveryOpGraph() : GapGraph();
        const int n = 3;
        var random = new Random(11);
        var net = new FloatNetwork(graph, n);
        float[] input = new float[n * graph.InputShape.Size];
        for (int i = 0; i < input.Length; i++) input[i] = (float)(random.NextDouble() * 2 - 1);
        byte[] labels = { 0, 1, 2 };
        int k = graph.NumClasses;
        float[] dLogits = new float[n * k];

        float Loss()
        {
            Array.Copy(input, net.InputBuffer, input.Length);
            float[] logits = net.Forward(n, training: true);
            return SoftmaxCrossEntropy.Compute(logits, labels, n, k, new float[n * k], out _);
        }

        Array.Copy(input, net.InputBuffer, input.Length);
        float[] outLogits = net.Forward(n, training: true);
        SoftmaxCrossEntropy.Compute(outLogits, labels, n, k, dLogits, out _);
        net.Backward(dLogits, n);

        var failures = new List<string>();
        foreach (Node node in graph.Nodes)
        {
            foreach (Tensor t in node.Parameters())
            {
                float[] analytic = net.Gradients[t];
                double diff = 0, norm = 0;
                for (int i = 0; i < t.Length; i++)
                {
                    float saved = t.Data[i];
                    const float eps = 1e-3f;
                    t.Data[i] = saved + eps;
                    float up = Loss();
                    t.Data[i] = saved - eps;
                    float down = Loss();
                    t.Data[i] = saved;
                    double numeric = (up - down) / (2.0 * eps);
                    diff += (numeric - analytic[i]) * (numeric - analytic[i]);
                    norm += numeric * numeric;
                }
                double relative = Math.Sqrt(diff) / Math.Max(Math.Sqrt(norm), 1e-6);
                if (!(relative < 1e-2)) failures.Add($"{node.Name} {t}: relative gradient error {relative:F4}");
            }
        }
        Assert.Empty(failures);
    }

    [Fact]
    public void Inference_batch_norm_uses_running_statistics()
    {
        var b = new GraphBuilder("bn", seed: 1);
        Node x = b.Input(new Shape(1, 1, 2));
        Node bn = b.BatchNorm(x);
        b.Flatten(bn);
        Graphs.Graph graph = b.Build();
        graph.Nodes[1].RunningMean!.Data[0] = 1f;
        graph.Nodes[1].RunningVar!.Data[0] = 4f;
        var net = new FloatNetwork(graph, 1);
        net.InputBuffer[0] = 3f;
        net.InputBuffer[1] = -1f;
        float[] y = net.Forward(1, training: false);
        Assert.Equal(1f, y[0], 3);     // (3 - 1) / 2
        Assert.Equal(-1f, y[1], 3);    // (-1 - 1) / 2
    }
}
