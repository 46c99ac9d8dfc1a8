using TinyTrain.Compiler.Boards;
using TinyTrain.Compiler.Compilation;
using TinyTrain.Emulator.CostModel;
using TinyTrain.Emulator.Tests.Device;
using TinyTrain.Runtime.Plans;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

namespace TinyTrain.Emulator.Tests.CostModel;

public class CostModelTests
{
    [Fact]
    public void The_first_conv_of_cnn_s_costs_what_the_formula_says()
    {
        PlanImage plan = TestPlans.CnnS();
        BoardProfile board = BoardCatalog.Get("stm32f746-disco");
        OpCost first = CostEstimator.Op(plan, FirstOf(plan, OpKind.Conv2D), board.Throughput);

        // x (1,28,28) int8, w (16,1,3,3), y (16,28,28) int8: 16*9 MACs per output pixel.
        long macs = 16L * 9 * 28 * 28;
        long bytes = 28 * 28 + 16 * 28 * 28 + 16 * 9 + 12 * 16;
        Assert.Equal(MacKind.Conv, first.MacKind);
        Assert.Equal(macs, first.Macs);
        Assert.Equal(bytes, first.Bytes);
        Assert.Equal(macs / board.Throughput.ConvMacsPerCycle + bytes / board.Throughput.MemoryBytesPerCycle, first.Cycles, 6);
    }

    [Fact]
    public void Every_op_has_the_MACs_the_compiler_reports()
    {
        // Two independent counts: the compiler's (from the graph) and the cost model's (from the plan file alone).
        CompileResult compiled = TestPlans.CnnSTraining;
        PlanImage plan = TestPlans.CnnS();
        CostEstimate estimate = CostEstimator.Estimate(plan, BoardCatalog.Get("stm32f746-disco"));
        Assert.Equal(plan.OpCount, estimate.Ops.Count);
        foreach (var op in compiled.Plan.Ops)
            Assert.True(op.Macs == estimate.Ops[op.Index].Macs, $"op {op.Index} ({op.Name}, {op.Kind}): compiler {op.Macs} MACs, cost model {estimate.Ops[op.Index].Macs}");
        Assert.Contains(estimate.Ops, o => o.Kind == OpKind.Conv2DBackwardInput && o.Macs > 0);
        Assert.Contains(estimate.Ops, o => o.Kind == OpKind.Conv2DUpdate && o.Macs > 0);
    }

    [Fact]
    public void A_patch_stage_costs_the_halo_MACs_the_compiler_reports()
    {
        var graph = TinyTrain.Compiler.Zoo.ModelZoo.Build("mbv2-w0.35", 64, 10, seed: 2);
        CompileResult compiled = PlanCompiler.Compile(graph, TinyTrain.Compiler.Quantization.CalibrationSet.Random(graph.InputShape, 4, 3),
            new CompileOptions { Update = "bias:4", Patch = "auto" });
        PlanImage plan = PlanImage.Load(compiled.Image, "patched");
        CostEstimate estimate = CostEstimator.Estimate(plan, BoardCatalog.Get("stm32f746-disco"));
        foreach (var op in compiled.Plan.Ops)
            Assert.True(op.Macs == estimate.Ops[op.Index].Macs, $"op {op.Index} ({op.Name}, {op.Kind}): compiler {op.Macs} MACs, cost model {estimate.Ops[op.Index].Macs}");
        // A chain stage, or one through residual blocks (which the compiler picks for this plan since it tries both).
        int first = 0;
        while (plan.Op(first).Kind is not (OpKind.PatchStage or OpKind.PatchGraphStage)) first++;
        OpCost stage = estimate.Ops[first];
        Assert.Equal(compiled.Program.Patch!.ExtraMacs, stage.Macs);
        Assert.True(stage.Macs > 0);
    }

    [Fact]
    public void A_step_costs_more_than_an_inference_and_a_faster_board_costs_less()
    {
        PlanImage plan = TestPlans.CnnS();
        CostEstimate f746 = CostEstimator.Estimate(plan, BoardCatalog.Get("stm32f746-disco"));
        CostEstimate h743 = CostEstimator.Estimate(plan, BoardCatalog.Get("stm32h743"));
        Assert.True(f746.MsPerTrainStep > f746.MsPerInference);
        Assert.True(h743.MsPerInference < f746.MsPerInference);
        Assert.Equal(f746.InferenceCycles / (216 * 1000.0), f746.MsPerInference, 9);
        Assert.True(f746.TrainStepMacs > f746.InferenceMacs);
    }

    [Fact]
    public void The_estimate_is_compared_with_the_published_TTE_latencies()
    {
        string reference = CostModelCalibration.FindReference() ?? throw new InvalidOperationException("data/reference/tte-models.json not found");
        IReadOnlyList<CalibrationRow> rows = CostModelCalibration.Run(reference);

        Assert.Equal(["mbv2-w0.35", "proxyless-w0.3", "mcunet-5fps"], rows.Select(r => r.Model));
        Assert.Equal([373.0, 443.0, 546.0], rows.Select(r => r.PublishedMsPerStep));
        Assert.Equal(["138kb", "148kb", "148kb"], rows.Select(r => r.Scheme));
        foreach (CalibrationRow r in rows)
        {
            Assert.True(r.EstimatedMsPerStep > r.EstimatedMsPerInference, r.Model);
            Assert.Equal(r.EstimatedMsPerStep / r.PublishedMsPerStep, r.Ratio, 9);
            // Honest bound, not a tuned one: the model is optimistic by 3.6x to 4.2x on these networks (see
            // emulator/CostModel/README.md), so a factor of 3 does not hold; 5 does. A change that moves it outside
            // [1/5, 1] should be explained in the README, not absorbed by widening this range.
            Assert.InRange(r.Ratio, 0.2, 1.0);
        }
        string table = CostModelCalibration.Format(rows);
        Assert.Contains("mcunet-5fps", table);
        Assert.Contains("546", table);
    }

    private static int FirstOf(PlanImage plan, OpKind kind)
    {
        for (int i = 0; i < plan.OpCount; i++)
            if (plan.Op(i).Kind == kind) return i;
        throw new InvalidOperationException($"no {kind} op");
    }
}
