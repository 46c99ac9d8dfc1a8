namespace TinyTrain.Compiler.Learning;

using System.Text.Json;
using TinyTrain.Compiler.Quantization;

/// <summary>
/// What one op trains: the first WeightChannels input channels of each output channel's weights (0 = none), and/or
/// its bias; for a NormAffine op (Affine), its per-channel scale and shift.
/// </summary>
public readonly record struct OpTraining(int WeightChannels, bool Bias, bool Affine = false)
{
    public bool Any => WeightChannels > 0 || Bias || Affine;
}

/// <summary>What the plan's step minimizes: cross-entropy with a label, or the entropy of the prediction (no label).</summary>
public enum Objective { CrossEntropy, Entropy }

/// <summary>
/// The trainable set of a plan (DESIGN.md: plan = graph + objective + trainable set), parsed from
/// `--update`: none; full; bias:K; sparse:scheme.json in the Tiny Training Engine's own keys.
/// Conv indices count convs (standard and depthwise) from the input, the classifier excluded, as
/// n_bias_update and manual_weight_idx do in the published engine. The classifier (the last fully
/// connected layer) is always trained in full when anything is.
/// </summary>
public sealed class TrainableSet
{
    private TrainableSet(string spec, OpTraining[] perOp, Objective objective = Objective.CrossEntropy, bool normStatistics = false,
        IReadOnlySet<int>? distilled = null)
    {
        Spec = spec;
        PerOp = perOp;
        Objective = objective;
        NormStatistics = normStatistics;
        Distilled = distilled ?? new HashSet<int>();
    }

    public string Spec { get; }
    public Objective Objective { get; }
    /// <summary>Every NormAffine op re-estimates its input's statistics on the stream (tta:norm and tta:tent).</summary>
    public bool NormStatistics { get; }
    /// <summary>
    /// tta:eco: the Add ops that join a meta network's output (input 1) to its frozen part's output (input 0); the loss
    /// adds lambda x the mean L1 distance between the join's output and the part's output at each (TrainingOptions.DistillWeight).
    /// </summary>
    public IReadOnlySet<int> Distilled { get; }
    /// <summary>The spec asks for test-time adaptation (tta:...): the model must be lowered with NormAffine ops.</summary>
    public static bool IsTestTime(string spec) => spec.StartsWith("tta:", StringComparison.Ordinal);
    /// <summary>One entry per forward op of the lowered model.</summary>
    public IReadOnlyList<OpTraining> PerOp { get; }
    public bool IsEmpty => PerOp.All(o => !o.Any);

    public static TrainableSet None(QuantizedModel model) => new("none", new OpTraining[model.Ops.Count]);

    /// <summary>A trainable set chosen op by op (adapter kinds build theirs this way); one entry per op of the model.</summary>
    public static TrainableSet FromOps(string spec, OpTraining[] perOp, QuantizedModel model)
    {
        if (perOp.Length != model.Ops.Count)
            throw new ArgumentException($"trainable set '{spec}' has {perOp.Length} entries for {model.Ops.Count} ops", nameof(perOp));
        return new TrainableSet(spec, (OpTraining[])perOp.Clone());
    }

    public static TrainableSet Parse(string spec, QuantizedModel model)
    {
        if (spec == "none") return None(model);
        List<int> convs = ConvOps(model);
        int classifier = model.Ops.FindLastIndex(o => o.Kind == QOpKind.FullyConnected);
        var perOp = new OpTraining[model.Ops.Count];
        if (spec == "full")
        {
            for (int i = 0; i < model.Ops.Count; i++)
                if (model.Ops[i].Weight is not null) perOp[i] = new OpTraining(InputChannels(model.Ops[i], model), true);
            return new TrainableSet(spec, perOp);
        }
        if (spec.StartsWith("bias:", StringComparison.Ordinal))
        {
            if (!int.TryParse(spec.AsSpan(5), out int k) || k < 0 || k > convs.Count)
                throw new TinyTrainException($"--update {spec}: K must be a whole number from 0 to {convs.Count} (model '{model.Name}' has {convs.Count} convs)");
            for (int i = convs.Count - k; i < convs.Count; i++) perOp[convs[i]] = new OpTraining(0, true);
            TrainClassifier(perOp, classifier, model, spec);
            return new TrainableSet(spec, perOp);
        }
        if (spec.StartsWith("sparse:", StringComparison.Ordinal))
        {
            string path = spec[7..];
            SparseScheme scheme = SparseScheme.Load(path);
            ApplyScheme(scheme, path, model, convs, perOp);
            TrainClassifier(perOp, classifier, model, spec);
            return new TrainableSet(spec, perOp);
        }
        if (IsTestTime(spec)) return ParseTestTime(spec, model);
        throw new TinyTrainException($"--update {spec}: not a trainable set; use none, full, bias:K, sparse:scheme.json, tta:norm, tta:tent[:K] or tta:eco[:K]");
    }

    /// <summary>
    /// Test-time adaptation, no labels. tta:norm: running statistics of every NormAffine op's input, no backward.
    /// tta:tent[:K]: those statistics plus entropy minimization (EATA-filtered) on the scale/shift of the last K
    /// NormAffine ops (all when K is not given).
    /// </summary>
    private static TrainableSet ParseTestTime(string spec, QuantizedModel model)
    {
        var norms = new List<int>();
        for (int i = 0; i < model.Ops.Count; i++)
            if (model.Ops[i].Kind == QOpKind.NormAffine) norms.Add(i);
        if (norms.Count == 0)
            throw new TinyTrainException($"--update {spec}: model '{model.Name}' has no conv with a folded BatchNorm, so there is no per-channel scale/shift to adapt");
        var perOp = new OpTraining[model.Ops.Count];
        if (spec == "tta:norm") return new TrainableSet(spec, perOp, Objective.Entropy, normStatistics: true);
        if (spec == "tta:tent" || spec.StartsWith("tta:tent:", StringComparison.Ordinal))
        {
            int k = norms.Count;
            if (spec.Length > "tta:tent".Length && (!int.TryParse(spec.AsSpan("tta:tent:".Length), out k) || k < 1 || k > norms.Count))
                throw new TinyTrainException($"--update {spec}: K must be a whole number from 1 to {norms.Count} (model '{model.Name}' has {norms.Count} convs with a folded BatchNorm)");
            for (int i = norms.Count - k; i < norms.Count; i++) perOp[norms[i]] = new OpTraining(0, false, Affine: true);
            return new TrainableSet(spec, perOp, Objective.Entropy, normStatistics: true);
        }
        if (Passes.MetaNetworks.IsSpec(spec)) return ParseEco(spec, model, perOp);
        throw new TinyTrainException($"--update {spec}: not a test-time adaptation; use tta:norm, tta:tent[:K] or tta:eco[:K][:dw]");
    }

    /// <summary>
    /// tta:eco[:K] on a model the compiler rewrote with meta networks (Passes.MetaNetworks): the meta networks' weights
    /// and biases, the scale/shift of every NormAffine op after the first meta network (so that the backward pass stops
    /// there), running statistics everywhere, and the L1 self-distillation at each join.
    /// </summary>
    private static TrainableSet ParseEco(string spec, QuantizedModel model, OpTraining[] perOp)
    {
        var distilled = new HashSet<int>();
        int first = -1;
        for (int i = 0; i < model.Ops.Count; i++)
        {
            QOp op = model.Ops[i];
            if (op.Kind is QOpKind.Conv or QOpKind.DepthwiseConv && op.Name.EndsWith(Passes.MetaNetworks.ConvSuffix, StringComparison.Ordinal))
            {
                perOp[i] = new OpTraining(InputChannels(op, model), true);
                if (first < 0) first = i;
            }
            else if (op.Kind == QOpKind.Add && op.Name.EndsWith(Passes.MetaNetworks.JoinSuffix, StringComparison.Ordinal)) distilled.Add(i);
            else if (op.Kind == QOpKind.NormAffine && first >= 0) perOp[i] = new OpTraining(0, false, Affine: true);
        }
        if (first < 0)
            throw new TinyTrainException($"--update {spec}: model '{model.Name}' has no meta networks; compile it with PlanCompiler, which inserts them (Passes.MetaNetworks)");
        return new TrainableSet(spec, perOp, Objective.Entropy, normStatistics: true, distilled);
    }

    /// <summary>
    /// A trainable set given op by op (e.g. a channel-wise adapter: OpTraining(0, false, Affine: true) on the model's
    /// NormAffine ops, compiled with CompileOptions.NormAffine), with its objective.
    /// </summary>
    public static TrainableSet Of(string spec, QuantizedModel model, OpTraining[] perOp, Objective objective = Objective.CrossEntropy, bool normStatistics = false)
    {
        if (perOp.Length != model.Ops.Count)
            throw new TinyTrainException($"trainable set {spec}: {perOp.Length} entries for the {model.Ops.Count} ops of model '{model.Name}'");
        for (int i = 0; i < perOp.Length; i++)
        {
            QOp op = model.Ops[i];
            if (perOp[i].Affine && op.Kind != QOpKind.NormAffine)
                throw new TinyTrainException($"trainable set {spec}: op '{op.Name}' is a {op.Kind}, not a NormAffine op; only those have a scale/shift to train");
            if ((perOp[i].WeightChannels > 0 || perOp[i].Bias) && op.Weight is null)
                throw new TinyTrainException($"trainable set {spec}: op '{op.Name}' ({op.Kind}) has no weights or bias to train");
        }
        return new TrainableSet(spec, (OpTraining[])perOp.Clone(), objective, normStatistics);
    }

    /// <summary>A scheme given in memory (the same checks as a file).</summary>
    public static TrainableSet FromScheme(SparseScheme scheme, QuantizedModel model, string name = "scheme")
    {
        List<int> convs = ConvOps(model);
        var perOp = new OpTraining[model.Ops.Count];
        ApplyScheme(scheme, name, model, convs, perOp);
        TrainClassifier(perOp, model.Ops.FindLastIndex(o => o.Kind == QOpKind.FullyConnected), model, name);
        return new TrainableSet($"sparse:{name}", perOp);
    }

    public static List<int> ConvOps(QuantizedModel model)
    {
        var convs = new List<int>();
        for (int i = 0; i < model.Ops.Count; i++)
            if (model.Ops[i].Kind is QOpKind.Conv or QOpKind.DepthwiseConv) convs.Add(i);
        return convs;
    }

    /// <summary>Input channels a weight update can choose from: per group for a conv, the channels for a depthwise conv, the inputs of a linear layer.</summary>
    public static int InputChannels(QOp op, QuantizedModel model) => op.Kind switch
    {
        QOpKind.DepthwiseConv => op.OutChannels,
        QOpKind.Conv => model.Tensors[op.Inputs[0]].Shape.C / op.Groups,
        QOpKind.FullyConnected => model.Tensors[op.Inputs[0]].Shape.Size,
        _ => 0,
    };

    private static void ApplyScheme(SparseScheme scheme, string name, QuantizedModel model, List<int> convs, OpTraining[] perOp)
    {
        if (scheme.NBiasUpdate < 0 || scheme.NBiasUpdate > convs.Count)
            throw new TinyTrainException($"sparse scheme {name}: n_bias_update {scheme.NBiasUpdate} is outside 0..{convs.Count} (model '{model.Name}' has {convs.Count} convs)");
        if (scheme.ManualWeightIdx.Length != scheme.WeightUpdateRatio.Length)
            throw new TinyTrainException($"sparse scheme {name}: manual_weight_idx has {scheme.ManualWeightIdx.Length} entries but weight_update_ratio has {scheme.WeightUpdateRatio.Length}; give one ratio per layer");
        for (int i = convs.Count - scheme.NBiasUpdate; i < convs.Count; i++) perOp[convs[i]] = perOp[convs[i]] with { Bias = true };
        for (int i = 0; i < scheme.ManualWeightIdx.Length; i++)
        {
            int idx = scheme.ManualWeightIdx[i];
            double ratio = scheme.WeightUpdateRatio[i];
            if (idx < 0 || idx >= convs.Count)
                throw new TinyTrainException($"sparse scheme {name}: manual_weight_idx {idx} names no conv; model '{model.Name}' has convs 0..{convs.Count - 1}");
            // 0 is the published engine's "no weight update for this conv" (its shipped schemes use it).
            if (!(ratio >= 0 && ratio <= 1))
                throw new TinyTrainException($"sparse scheme {name}: weight_update_ratio {ratio} for conv {idx} is outside [0, 1] (0 = bias only)");
            if (ratio == 0) continue;
            QOp op = model.Ops[convs[idx]];
            int channels = Math.Max(1, (int)(InputChannels(op, model) * ratio));
            perOp[convs[idx]] = perOp[convs[idx]] with { WeightChannels = channels };
        }
    }

    private static void TrainClassifier(OpTraining[] perOp, int classifier, QuantizedModel model, string spec)
    {
        if (classifier < 0)
            throw new TinyTrainException($"--update {spec}: model '{model.Name}' has no fully connected classifier to train");
        perOp[classifier] = new OpTraining(InputChannels(model.Ops[classifier], model), true);
    }
}

/// <summary>A sparse update scheme in the published engine's keys (see data/reference/tte-models.json).</summary>
public sealed record SparseScheme(int NBiasUpdate, int[] ManualWeightIdx, double[] WeightUpdateRatio)
{
    public static SparseScheme Load(string path)
    {
        if (!File.Exists(path))
            throw new TinyTrainException($"sparse scheme {path}: no such file; give a JSON file with n_bias_update, manual_weight_idx and weight_update_ratio");
        try
        {
            using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(path));
            return FromJson(doc.RootElement, path);
        }
        catch (JsonException e)
        {
            throw new TinyTrainException($"sparse scheme {path}: not valid JSON ({e.Message})");
        }
    }

    public static SparseScheme FromJson(JsonElement root, string name)
    {
        if (root.ValueKind != JsonValueKind.Object)
            throw new TinyTrainException($"sparse scheme {name}: expected a JSON object with n_bias_update, manual_weight_idx and weight_update_ratio");
        int nBias = root.TryGetProperty("n_bias_update", out JsonElement nb) && nb.ValueKind == JsonValueKind.Number && nb.TryGetInt32(out int v) ? v
            : throw new TinyTrainException($"sparse scheme {name}: n_bias_update must be a whole number");
        int[] idx = ReadArray(root, "manual_weight_idx", name, e => e.TryGetInt32(out int i) ? i : throw new TinyTrainException($"sparse scheme {name}: manual_weight_idx holds a non-integer"));
        double[] ratio = ReadArray(root, "weight_update_ratio", name, e => e.GetDouble());
        return new SparseScheme(nBias, idx, ratio);
    }

    private static T[] ReadArray<T>(JsonElement root, string key, string name, Func<JsonElement, T> read)
    {
        if (!root.TryGetProperty(key, out JsonElement a)) return Array.Empty<T>();
        if (a.ValueKind != JsonValueKind.Array)
            throw new TinyTrainException($"sparse scheme {name}: {key} must be an array");
        var list = new List<T>();
        foreach (JsonElement e in a.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.Number) throw new TinyTrainException($"sparse scheme {name}: {key} must hold numbers");
            list.Add(read(e));
        }
        return list.ToArray();
    }
}
