namespace TinyTrain.Compiler.Tests.Planning;

using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Learning;
using TinyTrain.Compiler.Planning;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Compiler.Zoo;
using TinyTrain.Runtime.Execution;
using TinyTrain.Runtime.Plans;
using PlanType = TinyTrain.Runtime.Plans.Plan;

/// <summary>
/// Patch stages through residual blocks (plan op PatchGraphStage): the frozen prefix runs tile by tile through the skip
/// adds, bit for bit the plain plan (logits, losses, learned parameters), the arena as measured, smaller than with
/// chain-only stages, damaged stages refused naming the op.
/// </summary>
public class PatchGraphStageTests
{
    private static (CompileResult Plain, CompileResult Chain, CompileResult Graph) Compile(string model, int resolution, string update, string patch)
    {
        var graph = ModelZoo.Build(model, resolution, 10, seed: 3);
        Quantized q = PlanCompiler.Quantize(graph, CalibrationSet.Random(graph.InputShape, 4, 5), new CompileOptions(),
            m => TrainableSet.Parse(update, m));
        var trainable = q.Trainable!;
        // Auto without its recompute limit: these tests want the smallest arena's stage, whatever its halos cost.
        double unlimited = double.PositiveInfinity;
        return (PlanCompiler.Emit(q, trainable, new CompileOptions { Patch = "off" }),
            PlanCompiler.Emit(q, trainable, new CompileOptions { Patch = patch, PatchResiduals = false, PatchRecomputeLimit = unlimited }),
            PlanCompiler.Emit(q, trainable, new CompileOptions { Patch = patch, PatchRecomputeLimit = unlimited }));
    }

    private static byte[] Input(PlanType plan, int seed) => PlanSamples.RandomInput(plan, seed);

    private static int StageIndex(PlanType plan) => PlanSamples.FirstRunOp(plan);

    private static int InnerAdds(PlanType plan, int stage)
    {
        int adds = 0;
        for (int k = 1; k <= plan.Op(stage).Arg(0); k++)
            if (plan.Op(stage + k).Kind == OpKind.Add) adds++;
        return adds;
    }

    [Theory]
    [InlineData("mbv2-w0.35", 96, "bias:6", "auto")]
    [InlineData("mbv2-w0.35", 128, "bias:8", "auto")]
    [InlineData("proxyless-w0.3", 96, "bias:6", "3x3")]
    [InlineData("proxyless-w0.3", 112, "bias:8", "auto")]
    [InlineData("mcunet-5fps", 96, "bias:8", "4x3")]
    [InlineData("mcunet-5fps", 128, "bias:10", "auto")]
    public void Training_through_residual_blocks_tile_by_tile_is_bit_identical_and_measured_as_planned(string model, int resolution, string update, string patch)
    {
        (CompileResult plain, CompileResult chain, CompileResult graph) = Compile(model, resolution, update, patch);
        var a = new Executor(PlanType.Load(plain.Image, "plain")) { LearningRate = 0.05f };
        var b = new Executor(PlanType.Load(graph.Image, "graph")) { LearningRate = 0.05f };
        int stage = StageIndex(b.Plan);
        Assert.Equal(OpKind.PatchGraphStage, b.Plan.Op(stage).Kind);
        Assert.True(InnerAdds(b.Plan, stage) >= 1, "the stage runs through a skip add");
        Assert.True(graph.Plan.ArenaBytes < chain.Plan.ArenaBytes, $"graph {graph.Plan.ArenaBytes} vs chain {chain.Plan.ArenaBytes}");

        Assert.Equal(b.Plan.ArenaBytes, ArenaProbe.MeasureTrainStep(b.Plan, Input(b.Plan, 9), 0, 2));
        PlanSamples.AssertSameTraining(a, b, 3, 200);
    }

    [Fact]
    public void Auto_takes_no_stage_whose_halos_add_more_than_its_recompute_limit_to_the_step()
    {
        var graph = ModelZoo.Build("mbv2-w0.35", 128, 10, seed: 3);
        Quantized q = PlanCompiler.Quantize(graph, CalibrationSet.Random(graph.InputShape, 4, 5), new CompileOptions(), m => TrainableSet.Parse("bias:8", m));
        CompileResult unlimited = PlanCompiler.Emit(q, q.Trainable!, new CompileOptions { Patch = "auto", PatchRecomputeLimit = double.PositiveInfinity });
        CompileResult limited = PlanCompiler.Emit(q, q.Trainable!, new CompileOptions { Patch = "auto" });
        long stepMacs = limited.Plan.Ops.Sum(o => o.Macs);
        Assert.NotNull(limited.Plan.Program.Patch);
        Assert.True(limited.Plan.Program.Patch!.ExtraMacs <= PatchStages.DefaultAutoRecompute * stepMacs,
            $"auto recomputes {limited.Plan.Program.Patch.ExtraMacs:N0} MACs of a {stepMacs:N0}-MAC step");
        // Without the limit auto buys a little memory with a lot of recomputation.
        Assert.True(unlimited.Plan.ArenaBytes <= limited.Plan.ArenaBytes);
        Assert.True(unlimited.Plan.Program.Patch!.ExtraMacs > PatchStages.DefaultAutoRecompute * unlimited.Plan.Ops.Sum(o => o.Macs));
    }

    [Fact]
    public void Graph_stage_steps_allocate_nothing()
    {
        (_, _, CompileResult graph) = Compile("mbv2-w0.35", 96, "bias:6", "auto");
        var executor = new Executor(PlanType.Load(graph.Image, "graph"));
        Assert.Equal(OpKind.PatchGraphStage, executor.Plan.Op(StageIndex(executor.Plan)).Kind);
        byte[] input = Input(executor.Plan, 1);
        executor.SetInput(input, 0);
        executor.TrainStep(1);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 3; i++)
        {
            executor.SetInput(input, 0);
            executor.TrainStep(1);
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    // Damaged graph stages: each edit is re-sealed, so only the loader's checks can refuse it.
    public static TheoryData<string, string> Damage => new()
    {
        { "slots", "its tiles need" },
        { "padded", "its tiles need" },
        { "source", "which is neither the stage input nor written by an earlier op of the stage" },
        { "count", "a graph stage runs 1..32" },
    };

    [Theory]
    [MemberData(nameof(Damage))]
    public void A_damaged_graph_stage_is_refused_naming_the_op(string damage, string message)
    {
        (_, _, CompileResult graph) = Compile("mbv2-w0.35", 96, "bias:6", "auto");
        byte[] image = (byte[])graph.Image.Clone();
        PlanType good = PlanType.Load(image, "good");
        int stage = StageIndex(good), n = good.Op(stage).Arg(0);
        int add = stage + 1;
        while (good.Op(add).Kind != OpKind.Add) add++;
        switch (damage)
        {
            case "slots": PlanImage.Put32(image, PlanImage.OpArg(image, stage, 4), good.Op(stage).Arg(4) - 1); break;
            case "padded": PlanImage.Put32(image, PlanImage.OpArg(image, stage, 3), good.Op(stage).Arg(3) - 1); break;
            case "source":
                // The skip add reads the stage output, which no earlier op of the stage writes (same shape, so only the stage check sees it).
                PlanImage.Put16(image, PlanImage.Op(image, add, PlanFormat.OpInput1), good.Op(stage).Output);
                break;
            case "count": PlanImage.Put32(image, PlanImage.OpArg(image, stage, 0), 40); break;
        }
        PlanImage.Seal(image);
        var e = Assert.Throws<PlanException>(() => PlanType.Load(image, "damaged.ttplan"));
        Assert.Contains("damaged.ttplan", e.Message);
        Assert.Contains($"op {stage} (PatchGraphStage", e.Message);
        Assert.Contains(message, e.Message);
    }
}
