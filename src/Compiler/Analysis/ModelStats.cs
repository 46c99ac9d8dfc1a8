namespace TinyTrain.Compiler.Analysis;

// Inside the namespace so that `Graph` means the class, not the sibling namespace TinyTrain.Compiler.Graphs.
using TinyTrain.Compiler.Graphs;

/// <summary>One node's row in <see cref="ModelStats"/>.</summary>
/// <param name="Name">The node's name.</param>
/// <param name="Kind">The node's op.</param>
/// <param name="OutputShape">Output shape of one sample (C, H, W).</param>
/// <param name="Params">Parameters this node keeps in the deployable (BatchNorm-folded) model; see <see cref="ModelStats.Params"/>.</param>
/// <param name="ParamsFloat">Parameters this node holds in the float graph; see <see cref="ModelStats.ParamsFloat"/>.</param>
/// <param name="Macs">Multiply-accumulates of one forward pass; see <see cref="ModelStats.Macs"/>.</param>
/// <param name="ActivationBytesFloat32">Size of the output tensor as float32.</param>
/// <param name="ActivationBytesInt8">Size of the output tensor as int8.</param>
public sealed record LayerStats(
    string Name, OpKind Kind, Shape OutputShape, int Params, int ParamsFloat, long Macs,
    long ActivationBytesFloat32, long ActivationBytesInt8);

/// <summary>
/// Size and cost of a float graph for one sample, counted the way the MCU literature counts them
/// (conventions of data/reference/tte-models.json), so that zoo models can be checked against it.
/// </summary>
public sealed class ModelStats
{
    private ModelStats(IReadOnlyList<LayerStats> layers, int parameters, int parametersFloat, long macs, long peakBytes, string peakLayer)
    {
        Layers = layers;
        Params = parameters;
        ParamsFloat = parametersFloat;
        Macs = macs;
        PeakActivationBytesInt8 = peakBytes;
        PeakActivationLayer = peakLayer;
    }

    /// <summary>One row per node, in graph order (the input included).</summary>
    public IReadOnlyList<LayerStats> Layers { get; }

    /// <summary>
    /// Parameters of the deployable model: conv and linear weights and biases, with each
    /// BatchNorm folded into the conv or linear layer before it, which then has one bias per
    /// output channel (C values, not the 2C of gamma and beta). A BatchNorm that cannot be folded
    /// (its producer is not a conv or linear layer, or has other consumers) keeps 2C.
    /// This is the reference's <c>params_w_plus_b</c>.
    /// </summary>
    public int Params { get; }

    /// <summary>Parameters the float graph holds: weights, biases and BatchNorm gamma and beta (running statistics excluded).</summary>
    public int ParamsFloat { get; }

    /// <summary>
    /// Multiply-accumulates of one forward pass: a conv counts its weight elements x out_h x out_w,
    /// a linear layer in x out; BatchNorm, activations, pooling, flatten and adds count 0.
    /// </summary>
    public long Macs { get; }

    /// <summary>
    /// A simple peak-memory estimate for int8 inference: the largest, over all layers, of the
    /// layer's distinct inputs plus its output, at one byte per element. BatchNorm, ReLU, ReLU6
    /// and Flatten are left out because the int8 model fuses them into the producer or runs them
    /// in place. Tensors kept alive for later skips are ignored; the memory planner gives the real figure.
    /// </summary>
    public long PeakActivationBytesInt8 { get; }

    /// <summary>The node at which <see cref="PeakActivationBytesInt8"/> is reached.</summary>
    public string PeakActivationLayer { get; }

    public static ModelStats Compute(Graph g)
    {
        IReadOnlyList<Node> nodes = g.Nodes;
        var consumers = new int[nodes.Count];
        foreach (Node n in nodes)
            foreach (int input in n.Inputs.Distinct())
                consumers[input]++;

        // folded[i]: node i is a conv/linear whose sole consumer is a BatchNorm that folds into it.
        var folded = new bool[nodes.Count];
        var bnFolded = new bool[nodes.Count];
        foreach (Node n in nodes)
        {
            if (n.Kind != OpKind.BatchNorm) continue;
            Node producer = nodes[n.Inputs[0]];
            if ((producer.Kind == OpKind.Conv2d || producer.Kind == OpKind.Linear) && consumers[producer.Id] == 1)
            {
                folded[producer.Id] = true;
                bnFolded[n.Id] = true;
            }
        }

        var rows = new List<LayerStats>(nodes.Count);
        int totalParams = 0, totalParamsFloat = 0;
        long totalMacs = 0, peak = 0;
        string peakLayer = g.Input.Name;
        foreach (Node n in nodes)
        {
            int weights = n.Weight?.Length ?? 0;
            int biases = n.Bias?.Length ?? 0;
            int paramsFloat = weights + biases;
            int parameters = n.Kind switch
            {
                OpKind.BatchNorm when bnFolded[n.Id] => 0,
                OpKind.Conv2d or OpKind.Linear when folded[n.Id] && n.Bias is null => weights + n.Shape.C,
                _ => paramsFloat,
            };
            long macs = n.Kind switch
            {
                OpKind.Conv2d => (long)weights * n.Shape.H * n.Shape.W,
                OpKind.Linear => weights,
                _ => 0,
            };
            long size = n.Shape.Size;
            rows.Add(new LayerStats(n.Name, n.Kind, n.Shape, parameters, paramsFloat, macs, size * sizeof(float), size));

            long live = size;
            foreach (int input in n.Inputs.Distinct()) live += nodes[input].Shape.Size;
            if (!FusedOrInPlace(n.Kind) && live > peak)
            {
                peak = live;
                peakLayer = n.Name;
            }
            totalParams += parameters;
            totalParamsFloat += paramsFloat;
            totalMacs += macs;
        }
        return new ModelStats(rows, totalParams, totalParamsFloat, totalMacs, peak, peakLayer);
    }

    private static bool FusedOrInPlace(OpKind kind)
        => kind is OpKind.BatchNorm or OpKind.Relu or OpKind.Relu6 or OpKind.Flatten;
}
