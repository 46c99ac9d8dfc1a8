namespace TinyTrain.Compiler.Compilation;

using TinyTrain.Compiler.Learning;
using TinyTrain.Compiler.Passes;
using TinyTrain.Compiler.Planning;
using TinyTrain.Compiler.Quantization;

public sealed record CompileOptions
{
    /// <summary>The trainable set: none (an inference plan), full, bias:K, sparse:scheme.json.</summary>
    public string Update { get; init; } = "none";
    /// <summary>A trainable set given directly (overrides Update).</summary>
    public Func<QuantizedModel, TrainableSet>? Trainable { get; init; }
    public TrainingOptions Training { get; init; } = new();
    public PlannerMode Planner { get; init; } = PlannerMode.Greedy;
    /// <summary>Lower every conv with a folded BatchNorm as conv + NormAffine (per-channel scale/shift) even when Update
    /// is not tta:... (for a Trainable set that trains them, e.g. a channel-wise adapter). tta:... implies it.</summary>
    public bool NormAffine { get; init; }
    /// <summary>The board the plan is compiled for (recorded in the plan so a runner can warn when it differs).</summary>
    public string? Board { get; init; }
    /// <summary>
    /// Share of calibration values each activation range keeps on each side; 100 is TFLite's min/max.
    /// 99.99 (the default) measured better on cnn-s/Fashion-MNIST: int8 accuracy 91.32 % vs 91.26 %
    /// with min/max (float 91.32 %), and int8 gradients closer to the float model's.
    /// </summary>
    public double CalibrationPercentile { get; init; } = DefaultCalibrationPercentile;
    /// <summary>
    /// Patch-by-patch execution of the frozen first stage: off, auto (the stage end and square grid with the
    /// smallest arena, if smaller than without) or RxC (that grid). See Planning.PatchStages.
    /// </summary>
    public string Patch { get; init; } = "off";

    /// <summary>Whether the patch stage may run through residual blocks (a graph stage, plan op PatchGraphStage); off, it is
    /// a chain of frozen convs only (plan op PatchStage), which every executor runs, the nanoFramework one included.</summary>
    public bool PatchResiduals { get; init; } = true;

    /// <summary>The most halo recomputation `--patch auto` accepts, as a share of the step's MACs (an explicit grid has no
    /// limit); <see cref="double.PositiveInfinity"/> keeps the smallest arena whatever it costs.</summary>
    public double PatchRecomputeLimit { get; init; } = PatchStages.DefaultAutoRecompute;
    /// <summary>Depthwise convs (and their input gradients) write their output over their dying input, channel by channel.</summary>
    public bool InPlaceDepthwise { get; init; }
    /// <summary>The backward of each expansion -> depthwise -> projection chain runs one expanded channel at a time (a
    /// ChannelStage), so that its float32 gradients exist one plane at a time. Bit for bit the same results.</summary>
    public bool ChannelBackward { get; init; }
    /// <summary>A 1x1 conv without a mask whose input dies at it writes its output over that input, pixel by pixel
    /// (a PointwiseInPlace op with an IC + OC byte pixel buffer). Bit for bit the same results.</summary>
    public bool InPlacePointwise { get; init; }
    /// <summary>A 1x1 conv that trains only its first input channels keeps only that slice of its weights writable
    /// (SRAM); the frozen rest is read from Flash (Planning.TrainedSlices). Bit for bit the same results.</summary>
    public bool TrainedSlices { get; init; }
    /// <summary>The model input is never stored whole in the arena: the first patch stage (so Patch must not be off) reads it
    /// band by band, each row once and in order, from a frame the host keeps outside the arena (a camera FIFO, external RAM,
    /// the caller's array); SRAM holds only the band. Bit for bit the same results. See PlanFormat.TensorFlagStreamed.</summary>
    public bool StreamInput { get; init; }
    /// <summary>With Patch auto, further frozen conv chains where the step peaks (an expansion, its depthwise and projection
    /// convs) run patch by patch too, as more PatchStage ops past the first (Planning.PatchStages). Bit for bit the same results.</summary>
    public bool PatchMidStages { get; init; }
    /// <summary>A chain first stage keeps its output row by row over the input rows no later tile reads, and moves it into place
    /// at the input's end after its last tile, so that the input and the output are not live side by side (PatchStage arg 6).
    /// Bit for bit the same results.</summary>
    public bool StageOverInput { get; init; }

    public const double DefaultCalibrationPercentile = 99.99;
}

/// <summary>What the compiler produced: the plan image and the intermediate forms, for reports and tests.</summary>
public sealed record CompileResult(EmittedPlan Plan, Graphs.Graph Folded, QuantizedModel Model, string Calibration)
{
    public byte[] Image => Plan.Image;
    public PlanProgram Program => Plan.Program;
}

/// <summary>
/// The compiler's pipeline of passes: fold BatchNorm, lower (fuse activations), calibrate, quantize,
/// attach the trainable set and derive the backward pass, plan memory, emit.
/// </summary>
public static class PlanCompiler
{
    /// <summary>The smallest logit range (in real units, each side of zero) of a training plan.</summary>
    public const float LogitRange = 16f;

    public static CompileResult Compile(Graphs.Graph graph, CalibrationSet calibration, CompileOptions options)
    {
        Quantized quantized = Quantize(graph, calibration, options, q => options.Trainable?.Invoke(q) ?? TrainableSet.Parse(options.Update, q));
        return Emit(quantized, quantized.Trainable!, options);
    }

    /// <summary>
    /// The passes before the trainable set matters: fold, lower, calibrate, quantize. A training plan
    /// (choose returns a non-empty set, or training is true) widens the logits first.
    /// </summary>
    public static Quantized Quantize(Graphs.Graph graph, CalibrationSet calibration, CompileOptions options,
        Func<QuantizedModel, TrainableSet>? choose = null, bool training = false)
    {
        // tta:eco: meta networks beside the frozen parts, inserted into the float model (they start at zero).
        if (MetaNetworks.IsSpec(options.Update)) graph = MetaNetworks.Apply(graph, options.Update);
        FoldBatchNorm.Folded folded = FoldBatchNorm.Run(graph);
        // Test-time adaptation keeps each folded BatchNorm's per-channel scale/shift as a NormAffine op beside its conv.
        IReadOnlySet<string>? normAffine = TrainableSet.IsTestTime(options.Update) || options.NormAffine
            ? folded.NormParameters.Keys.ToHashSet() : null;
        QuantizedModel model = Lowering.Run(folded.Graph, normAffine);
        TrainableSet? trainable = choose?.Invoke(model);
        Calibrator.Run(folded.Graph, model, calibration, options.CalibrationPercentile);
        NormStatistics.Run(folded.Graph, model, calibration);
        if (training || trainable is { IsEmpty: false })
        {
            // Learning moves the logits beyond what calibration saw; int8 logits that saturate stop the
            // loss gradient. A training plan gives them at least +-LogitRange.
            QTensor logits = model.Tensors[model.Output];
            logits.Min = Math.Min(logits.Min, -LogitRange);
            logits.Max = Math.Max(logits.Max, LogitRange);
        }
        Quantizer.Run(model);
        return new Quantized(folded.Graph, model, calibration.Description, trainable);
    }

    /// <summary>The passes after it: autodiff and pruning for the trainable set, memory planning, emission.</summary>
    public static CompileResult Emit(Quantized quantized, TrainableSet trainable, CompileOptions options)
    {
        PlanProgram program = Learning.Autodiff.Build(quantized.Model, trainable, options.Training);
        if (options.TrainedSlices) Planning.TrainedSlices.Mark(program);
        EmittedPlan plan = PatchStages.Emit(program, options.Patch, options.Planner, options.Board, options.InPlaceDepthwise, options.ChannelBackward,
            options.InPlacePointwise, options.PatchResiduals, options.PatchRecomputeLimit, options.StreamInput, options.PatchMidStages,
            options.StageOverInput);
        return new CompileResult(plan, quantized.Folded, quantized.Model, quantized.Calibration);
    }
}

/// <summary>A quantized model ready for any trainable set (the model is not changed by Emit).</summary>
public sealed record Quantized(Graphs.Graph Folded, QuantizedModel Model, string Calibration, TrainableSet? Trainable);
