using TinyTrain.Compiler.Graphs;

namespace TinyTrain.Compiler.Training;

/// <summary>
/// SGD with momentum and decoupled-from-nothing L2 weight decay (applied to conv and linear weights
/// only, never to biases or BatchNorm parameters): v = m*v + g + wd*w; w -= lr*v.
/// </summary>
public sealed class Sgd
{
    private readonly Dictionary<Tensor, float[]> _velocity = new(ReferenceEqualityComparer.Instance);
    private readonly HashSet<Tensor> _decayed = new(ReferenceEqualityComparer.Instance);

    public Sgd(Graphs.Graph graph, float momentum = 0.9f, float weightDecay = 5e-4f)
    {
        Momentum = momentum;
        WeightDecay = weightDecay;
        foreach (Node node in graph.Nodes)
        {
            foreach (Tensor t in node.Parameters()) _velocity[t] = new float[t.Length];
            if (node.Kind is OpKind.Conv2d or OpKind.Linear) _decayed.Add(node.Weight!);
        }
    }

    public float Momentum { get; }
    public float WeightDecay { get; }

    public void Step(IReadOnlyDictionary<Tensor, float[]> gradients, float learningRate)
    {
        foreach ((Tensor t, float[] v) in _velocity)
        {
            float[] g = gradients[t], w = t.Data;
            float wd = _decayed.Contains(t) ? WeightDecay : 0f;
            for (int i = 0; i < w.Length; i++)
            {
                v[i] = Momentum * v[i] + g[i] + wd * w[i];
                w[i] -= learningRate * v[i];
            }
        }
    }
}
