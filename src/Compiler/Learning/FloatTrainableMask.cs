namespace TinyTrain.Compiler.Learning;

using TinyTrain.Compiler.Graphs;
using TinyTrain.Compiler.Quantization;

/// <summary>
/// The same trainable set applied to float training of the folded graph: gradients of everything the
/// set does not train are zeroed, so float sparse fine-tuning and int8 sparse training update exactly
/// the same parameters (the baseline the int8 numbers are measured against).
/// </summary>
public sealed class FloatTrainableMask
{
    private readonly List<(float[] Gradient, bool[] Keep)> _masks = new();
    private readonly Dictionary<Tensor, bool[]> _keep = new(ReferenceEqualityComparer.Instance);

    public FloatTrainableMask(Graph folded, QuantizedModel model, TrainableSet set)
    {
        var byName = new Dictionary<string, int>();
        for (int i = 0; i < model.Ops.Count; i++) byName[model.Ops[i].Name] = i;
        foreach (Node node in folded.Nodes)
        {
            if (node.Weight is null) continue;
            OpTraining t = byName.TryGetValue(node.Name, out int i) ? set.PerOp[i] : default;
            var keepWeight = new bool[node.Weight.Length];
            int[] d = node.Weight.Dims;
            for (int e = 0; e < keepWeight.Length; e++)
            {
                int channel = node.Kind == OpKind.Linear ? e % d[1]                 // (OUT, IN): input index
                    : node.IsDepthwise ? e / (d[2] * d[3])                         // (C, 1, K, K): the filter's channel
                    : e / (d[2] * d[3]) % d[1];                                    // (OC, IC/G, K, K): input channel in its group
                keepWeight[e] = channel < t.WeightChannels;
            }
            _keep[node.Weight] = keepWeight;
            if (node.Bias is not null)
            {
                var keepBias = new bool[node.Bias.Length];
                Array.Fill(keepBias, t.Bias);
                _keep[node.Bias] = keepBias;
            }
        }
    }

    /// <summary>Parameters the set trains, counted element by element.</summary>
    public int TrainedCount => _keep.Values.Sum(k => k.Count(x => x));

    /// <summary>Zeroes the gradient of every parameter the set does not train.</summary>
    public void Apply(IReadOnlyDictionary<Tensor, float[]> gradients)
    {
        foreach ((Tensor t, float[] g) in gradients)
        {
            if (!_keep.TryGetValue(t, out bool[]? keep))
            {
                Array.Clear(g);
                continue;
            }
            for (int i = 0; i < g.Length; i++)
                if (!keep[i]) g[i] = 0f;
        }
    }
}
