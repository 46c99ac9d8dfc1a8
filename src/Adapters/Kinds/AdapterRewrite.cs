namespace TinyTrain.Adapters.Kinds;

using TinyTrain.Adapters.Packs;
using TinyTrain.Compiler.Graphs;
using TinyTrain.Compiler.Learning;
using TinyTrain.Compiler.Quantization;

/// <summary>
/// Adapter kinds as graph rewrites of the float model, before the compiler's passes: new nodes are
/// inserted so that the model computes exactly what it did (identity or zero-started adapters),
/// the graph is renamed "model+adapter:KIND" (the kind the plan and its packs carry), and
/// <see cref="Trainable"/> gives the trainable set: the inserted nodes plus what the kind adds
/// (biases, a new head). The base model's parameters are never trained by an adapter.
/// </summary>
public static class AdapterRewrite
{
    // Suffixes of the nodes a rewrite inserts; the trainable set finds them by name.
    public const string ClrSuffix = ".clr";
    public const string ResidualPoolSuffix = ".res_pool";
    public const string ResidualSuffix = ".res";
    public const string ResidualAddSuffix = ".res_add";
    public const string LoraASuffix = ".lora_a";
    public const string LoraBSuffix = ".lora_b";
    public const string LoraAddSuffix = ".lora_add";

    /// <summary>CLR's depthwise weights hold 1.0 exactly (64 at scale 1/64) and can grow to about 2.</summary>
    public const float ClrWeightScale = 1f / 64f;
    /// <summary>Zero-started weights (residual 1x1, LoRA B) may grow to +-1.</summary>
    public const float ZeroStartWeightScale = 1f / 127f;
    /// <summary>A zero-started branch output may reach this share of the range of the tensor it is added to.</summary>
    public const float BranchRange = 0.5f;
    /// <summary>LoRA's A may grow to this many times its starting weights and outputs.</summary>
    public const float LoraAGrowth = 4f;

    public static Graph Apply(Graph graph, AdapterSpec spec, int seed = 0)
    {
        if (graph.Name.Contains(AdapterLayout.KindMarker, StringComparison.Ordinal))
            throw new TinyTrainException($"model '{graph.Name}' already has an adapter; rewrite the base model");
        var editor = new GraphEditor(graph, $"{graph.Name}{AdapterLayout.KindMarker}{spec.Name}", seed);
        int inserted = 0;
        foreach (Node node in graph.Nodes)
        {
            editor.Copy(node);
            if (!editor.EndsBlock(node, out Node layer)) continue;
            switch (spec.Kind)
            {
                case AdapterKind.Clr when layer.Kind == OpKind.Conv2d && layer.Kernel > 1:
                    editor.InsertClr(node, layer);
                    inserted++;
                    break;
                case AdapterKind.Residual when layer.Kind == OpKind.Conv2d && layer.Kernel > 1:
                    if (editor.InsertResidual(node, layer)) inserted++;
                    break;
                case AdapterKind.Lora when IsLoraTarget(layer, node):
                    editor.InsertLora(node, layer, spec.Rank);
                    inserted++;
                    break;
            }
        }
        if (inserted == 0 && spec.Kind != AdapterKind.Bias)
            throw new TinyTrainException($"--update {spec}: model '{graph.Name}' has no layer this adapter attaches to"
                + (spec.Kind == AdapterKind.Lora ? " (fully connected layers, pointwise convs without an activation)" : " (convs with a kernel larger than 1x1)"));
        return editor.Build();
    }

    // LoRA adds B A x to the layer's output before any activation: only layers whose block has none.
    private static bool IsLoraTarget(Node layer, Node blockEnd)
        => blockEnd.Kind is not (OpKind.Relu or OpKind.Relu6)
           && (layer.Kind == OpKind.Linear || (layer.Kind == OpKind.Conv2d && layer.Kernel == 1 && layer.Groups == 1));

    /// <summary>The trainable set of a rewritten model: inserted nodes in full, plus the kind's biases and head.</summary>
    public static Func<QuantizedModel, TrainableSet> Trainable(AdapterSpec spec) => model =>
    {
        var perOp = new OpTraining[model.Ops.Count];
        int head = model.Ops.FindLastIndex(o => o.Kind == QOpKind.FullyConnected && !IsInserted(o.Name));
        if (head < 0) throw new TinyTrainException($"--update {spec}: model '{model.Name}' has no fully connected classifier");
        for (int i = 0; i < model.Ops.Count; i++)
        {
            QOp op = model.Ops[i];
            if (op.Weight is null) continue;
            if (IsInserted(op.Name)) perOp[i] = new OpTraining(TrainableSet.InputChannels(op, model), true);
            else if (spec.Kind == AdapterKind.Bias) perOp[i] = new OpTraining(0, true);
        }
        // A new classifier head per task (bias, clr, residual); LoRA adapts the head through its low-rank
        // branch and trains only the head's bias.
        perOp[head] = spec.Kind == AdapterKind.Lora ? new OpTraining(0, true) : new OpTraining(TrainableSet.InputChannels(model.Ops[head], model), true);
        return TrainableSet.FromOps(spec.ToString(), perOp, model);
    };

    public static bool IsInserted(string name)
        => name.EndsWith(ClrSuffix, StringComparison.Ordinal) || name.EndsWith(ResidualSuffix, StringComparison.Ordinal)
           || name.EndsWith(LoraASuffix, StringComparison.Ordinal) || name.EndsWith(LoraBSuffix, StringComparison.Ordinal);
}
