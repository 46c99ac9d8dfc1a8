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
/// Patch stages past the first (CompileOptions.PatchMidStages): where the step peaks in a chain of frozen convs further in,
/// that chain runs patch by patch as another PatchStage reading a whole tensor of the step. Bit for bit the plan without
/// them, smaller where they are taken, measured as planned, within auto's recompute limit, off when switched off.
/// </summary>
public class MidStageTests
{
    private static (CompileResult Off, CompileResult On) Compile(string model, int resolution, bool stream)
    {
        var graph = ModelZoo.Build(model, resolution, 10, seed: 3);
        Quantized q = PlanCompiler.Quantize(graph, CalibrationSet.Random(graph.InputShape, 4, 5), new CompileOptions(),
            m => TrainableSet.FromScheme(PlanSamples.LargestScheme(model), m, "largest"));
        var off = new CompileOptions
        {
            Patch = "auto", InPlaceDepthwise = true, ChannelBackward = true, InPlacePointwise = true, TrainedSlices = true, StreamInput = stream,
        };
        return (PlanCompiler.Emit(q, q.Trainable!, off), PlanCompiler.Emit(q, q.Trainable!, off with { PatchMidStages = true }));
    }

    private static List<int> Stages(PlanType plan)
    {
        var stages = new List<int>();
        for (int i = 0; i < plan.OpCount; i++)
            if (plan.Op(i).Kind is OpKind.PatchStage or OpKind.PatchGraphStage) stages.Add(i);
        return stages;
    }

    [Theory]
    [InlineData("mcunet-5fps", 128, true)]
    [InlineData("mbv2-w0.35", 128, false)]
    [InlineData("proxyless-w0.3", 128, true)]
    public void Stages_further_in_learn_bit_for_bit_in_a_smaller_arena_measured_as_planned(string model, int resolution, bool stream)
    {
        (CompileResult off, CompileResult on) = Compile(model, resolution, stream);
        Assert.Empty(off.Program.MidStages);
        Assert.NotEmpty(on.Program.MidStages);
        Assert.True(on.Plan.ArenaBytes < off.Plan.ArenaBytes, $"with stages further in {on.Plan.ArenaBytes} vs {off.Plan.ArenaBytes}");

        var a = new Executor(PlanType.Load(off.Image, "off")) { LearningRate = 0.05f };
        var b = new Executor(PlanType.Load(on.Image, "on")) { LearningRate = 0.05f };
        // Each stage past the first reads a whole tensor of the step, not the model input.
        List<int> stages = Stages(b.Plan);
        Assert.Equal(1 + on.Program.MidStages.Count, stages.Count);
        foreach (int s in stages.Skip(1))
        {
            Assert.Equal(OpKind.PatchStage, b.Plan.Op(s).Kind);
            Assert.NotEqual(b.Plan.InputTensor, b.Plan.Op(s).Input0);
            Assert.False(b.Plan.Tensor(b.Plan.Op(s).Input0).Tiled);
        }
        Assert.Equal(b.Plan.ArenaBytes, ArenaProbe.MeasureTrainStep(b.Plan, PlanSamples.RandomInput(b.Plan, 9), 0, 2));
        PlanSamples.AssertSameTraining(a, b, 3, 400);
    }

    [Fact]
    public void All_stages_together_stay_within_autos_recompute_limit()
    {
        (_, CompileResult on) = Compile("mcunet-5fps", 128, true);
        long extra = on.Program.Patch!.ExtraMacs + on.Program.MidStages.Sum(m => m.ExtraMacs);
        long step = on.Plan.Ops.Sum(o => o.Macs) - extra;
        Assert.True(extra <= PatchStages.DefaultAutoRecompute * step, $"{extra:N0} recomputed MACs in a {step:N0}-MAC step");
    }

    [Fact]
    public void Stages_further_in_allocate_nothing_per_step()
    {
        (_, CompileResult on) = Compile("mbv2-w0.35", 128, false);
        var executor = new Executor(PlanType.Load(on.Image, "on"));
        byte[] input = PlanSamples.RandomInput(executor.Plan, 1);
        executor.SetInput(input, 0);
        executor.TrainStep(1);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 2; i++)
        {
            executor.SetInput(input, 0);
            executor.TrainStep(1);
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
