namespace TinyTrain.Adapters.Kinds;

using TinyTrain.Adapters.Packs;
using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Graphs;
using TinyTrain.Compiler.Quantization;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

/// <summary>What one adapter costs: parameters a task adds (its pack) and the SRAM to train it.</summary>
public sealed record AdapterCost(string Kind, long ParamsPerTask, int PackBytes, int ArenaBytes, int ParamBytes, int StateBytes, long FlashBytes, string? Board)
{
    /// <summary>SRAM of one training step: arena + writable adapter parameters + optimizer state.</summary>
    public int SramBytes => ArenaBytes + ParamBytes + StateBytes;
}

/// <summary>Rewrites a model for an adapter kind and compiles it with the kind's trainable set (`--update adapter:KIND`).</summary>
public static class AdapterCompiler
{
    public static CompileResult Compile(Graph model, CalibrationSet calibration, AdapterSpec spec, CompileOptions? options = null, int seed = 0)
    {
        Graph rewritten = AdapterRewrite.Apply(model, spec, seed);
        options ??= new CompileOptions();
        return PlanCompiler.Compile(rewritten, calibration, options with { Update = spec.ToString(), Trainable = AdapterRewrite.Trainable(spec) });
    }

    public static AdapterCost Cost(CompileResult result, string? board = null)
    {
        var plan = PlanImage.Load(result.Image, "adapter plan");
        AdapterLayout layout = AdapterLayout.Of(plan);
        int packBytes = layout.Capture(new Runtime.Execution.Executor(plan), "cost", 0, createdUtc: DateTime.UnixEpoch).Serialize().Length;
        return new AdapterCost(layout.Kind, layout.ParameterCount, packBytes, result.Plan.ArenaBytes, result.Plan.ParamBytes, result.Plan.StateBytes,
            plan.FlashBytes, board ?? plan.Board);
    }
}
