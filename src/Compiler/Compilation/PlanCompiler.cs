namespace TinyTrain.Compiler.Compilation;

using TinyTrain.Compiler.Passes;
using TinyTrain.Compiler.Planning;
using TinyTrain.Compiler.Quantization;

public sealed record CompileOptions
{
    /// <summary>The trainable set; "none" = an inference plan.</summary>
    public string Update { get; init; } = "none";
    public PlannerMode Planner { get; init; } = PlannerMode.Greedy;
}

/// <summary>What the compiler produced: the plan image and the intermediate forms, for reports and tests.</summary>
public sealed record CompileResult(EmittedPlan Plan, Graph.Graph Folded, QuantizedModel Model, string Calibration)
{
    public byte[] Image => Plan.Image;
}

/// <summary>The compiler's pipeline of passes: fold BatchNorm, lower (fuse activations), calibrate, quantize, plan memory, emit.</summary>
public static class PlanCompiler
{
    public static CompileResult Compile(Graph.Graph graph, CalibrationSet calibration, CompileOptions options)
    {
        if (options.Update != "none")
            throw new TinyTrainException($"--update {options.Update}: only 'none' (an inference plan) is available in this version; training plans come with on-device training");
        FoldBatchNorm.Folded folded = FoldBatchNorm.Run(graph);
        QuantizedModel model = Lowering.Run(folded.Graph);
        Calibrator.Run(folded.Graph, model, calibration);
        Quantizer.Run(model);
        EmittedPlan plan = PlanEmitter.Emit(model, options.Planner);
        return new CompileResult(plan, folded.Graph, model, calibration.Description);
    }
}
