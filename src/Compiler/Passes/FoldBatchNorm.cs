namespace TinyTrain.Compiler.Passes;

using TinyTrain.Compiler.Graphs;

/// <summary>
/// Canonicalize, step 1: fold every BatchNorm that directly follows a conv or linear layer (and is
/// its only reader) into that layer's weights and bias, as the int8 model has no BatchNorm:
///   w' = w * gamma / sqrt(var + eps),  b' = (b - mean) * gamma / sqrt(var + eps) + beta.
/// The per-channel scale and shift are recorded so that later passes (norm-statistics adaptation)
/// can rewrite them. The input graph is not changed.
/// </summary>
public static class FoldBatchNorm
{
    public sealed record Folded(Graph Graph, IReadOnlyDictionary<string, (float[] Scale, float[] Shift)> NormParameters);

    public static Folded Run(Graph graph)
    {
        int[] readers = new int[graph.Nodes.Count];
        foreach (Node n in graph.Nodes)
            foreach (int i in n.Inputs) readers[i]++;

        var nodes = new List<Node>();
        var newId = new int[graph.Nodes.Count];
        var norms = new Dictionary<string, (float[], float[])>();
        foreach (Node node in graph.Nodes)
        {
            if (node.Kind == OpKind.BatchNorm)
            {
                Node producer = graph.Nodes[node.Inputs[0]];
                if (producer.Kind is OpKind.Conv2d or OpKind.Linear && readers[producer.Id] == 1)
                {
                    Node folded = nodes[newId[producer.Id]];
                    (float[] scale, float[] shift) = Fold(folded, node);
                    norms[folded.Name] = (scale, shift);
                    newId[node.Id] = newId[producer.Id];
                    continue;
                }
                throw new TinyTrainException($"node '{node.Name}': a BatchNorm that does not directly follow a conv or linear layer cannot be folded into int8");
            }
            var copy = new Node
            {
                Id = nodes.Count, Name = node.Name, Kind = node.Kind, Shape = node.Shape,
                Inputs = Array.ConvertAll(node.Inputs, i => newId[i]),
                Kernel = node.Kernel, Stride = node.Stride, Padding = node.Padding, Groups = node.Groups,
                Epsilon = node.Epsilon, Momentum = node.Momentum,
                WeightScaleFloor = node.WeightScaleFloor, RangeLike = node.RangeLike, RangeFraction = node.RangeFraction,
                Weight = node.Weight?.Clone(), Bias = node.Bias?.Clone(),
                RunningMean = node.RunningMean?.Clone(), RunningVar = node.RunningVar?.Clone(),
            };
            newId[node.Id] = nodes.Count;
            nodes.Add(copy);
        }
        return new Folded(new Graph(graph.Name, nodes), norms);
    }

    private static (float[] Scale, float[] Shift) Fold(Node layer, Node bn)
    {
        int c = layer.Shape.C;
        float[] gamma = bn.Weight!.Data, beta = bn.Bias!.Data, mean = bn.RunningMean!.Data, variance = bn.RunningVar!.Data;
        var scale = new float[c];
        var shift = new float[c];
        layer.Bias ??= new Tensor(c);
        float[] w = layer.Weight!.Data, b = layer.Bias.Data;
        int perChannel = w.Length / c;
        for (int ch = 0; ch < c; ch++)
        {
            scale[ch] = gamma[ch] / MathF.Sqrt(variance[ch] + bn.Epsilon);
            shift[ch] = beta[ch] - mean[ch] * scale[ch];
            for (int i = 0; i < perChannel; i++) w[ch * perChannel + i] *= scale[ch];
            b[ch] = b[ch] * scale[ch] + shift[ch];
        }
        return (scale, shift);
    }
}
