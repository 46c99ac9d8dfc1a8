namespace TinyTrain.Compiler.Tests.Planning;

using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Learning;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Compiler.Zoo;
using TinyTrain.Runtime.Execution;
using TinyTrain.Runtime.Plans;
using PlanType = TinyTrain.Runtime.Plans.Plan;

/// <summary>
/// A first stage that stages its output over its dying input (CompileOptions.StageOverInput, PatchStage args 6-7): each
/// output row is kept on input rows no later tile reads and moved into place after the last tile. Bit for bit the plan
/// without it, a smaller arena measured as planned, nothing allocated per step; damaged staging refused naming the op.
/// </summary>
public class StageOverInputTests
{
    private static (CompileResult Off, CompileResult On) Compile(string model, int resolution, string? update = null)
    {
        var graph = ModelZoo.Build(model, resolution, 10, seed: 3);
        Quantized q = PlanCompiler.Quantize(graph, CalibrationSet.Random(graph.InputShape, 4, 5), new CompileOptions(),
            m => update is null ? TrainableSet.FromScheme(PlanSamples.LargestScheme(model), m, "largest") : TrainableSet.Parse(update, m));
        var off = new CompileOptions
        {
            Patch = "auto", InPlaceDepthwise = true, ChannelBackward = true, InPlacePointwise = true, TrainedSlices = true, PatchMidStages = true,
        };
        return (PlanCompiler.Emit(q, q.Trainable!, off), PlanCompiler.Emit(q, q.Trainable!, off with { StageOverInput = true }));
    }

    [Theory]
    [InlineData("mcunet-5fps", 128, null)]
    [InlineData("mbv2-w0.35", 128, null)]
    [InlineData("proxyless-w0.3", 96, "bias:8")]
    public void Staging_the_first_stage_output_over_its_input_learns_bit_for_bit_in_a_smaller_arena(string model, int resolution, string? update)
    {
        (CompileResult off, CompileResult on) = Compile(model, resolution, update);
        Assert.Equal(0, off.Program.Patch!.SpillRows);
        Assert.True(on.Program.Patch!.SpillRows > 0, "the first stage stages its output");
        Assert.True(on.Plan.ArenaBytes < off.Plan.ArenaBytes, $"staged {on.Plan.ArenaBytes} vs {off.Plan.ArenaBytes}");

        var a = new Executor(PlanType.Load(off.Image, "off")) { LearningRate = 0.05f };
        var b = new Executor(PlanType.Load(on.Image, "on")) { LearningRate = 0.05f };
        OpInfo stage = b.Plan.Op(PlanSamples.FirstRunOp(b.Plan));
        Assert.Equal(on.Program.Patch.SpillRows, stage.Arg(6));
        Assert.Equal(b.Plan.ArenaBytes, ArenaProbe.MeasureTrainStep(b.Plan, PlanSamples.RandomInput(b.Plan, 9), 0, 2));
        PlanSamples.AssertSameTraining(a, b, 3, 500);
    }

    [Fact]
    public void Staged_steps_allocate_nothing()
    {
        (_, CompileResult on) = Compile("mbv2-w0.35", 96, "bias:6");
        var executor = new Executor(PlanType.Load(on.Image, "on"));
        Assert.True(executor.Plan.Op(PlanSamples.FirstRunOp(executor.Plan)).Arg(6) > 0);
        byte[] input = PlanSamples.RandomInput(executor.Plan, 1);
        executor.SetInput(input, 0);
        executor.TrainStep(1);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 2; i++)
        {
            executor.SetInput(input, 0);
            executor.TrainStep(1);
            executor.SetInput(input, 0);
            executor.Invoke();
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    // Damaged staging: each edit is re-sealed, so only the loader's checks can refuse it.
    public static TheoryData<string, string> Damage => new()
    {
        { "spill", "would land on input rows a later tile reads" },
        { "spill-all", "its output has" },
        { "base", "of its" },
        { "output", "or the" },
    };

    [Theory]
    [MemberData(nameof(Damage))]
    public void A_damaged_staging_is_refused_naming_the_op(string damage, string message)
    {
        (_, CompileResult on) = Compile("mbv2-w0.35", 96, "bias:6");
        byte[] image = (byte[])on.Image.Clone();
        PlanType good = PlanType.Load(image, "good");
        int stage = PlanSamples.FirstRunOp(good);
        OpInfo op = good.Op(stage);
        TensorInfo x = good.Tensor(op.Input0), y = good.Tensor(op.Output);
        switch (damage)
        {
            case "spill": PlanImage.Put32(image, PlanImage.OpArg(image, stage, 6), op.Arg(6) - 1); break;
            case "spill-all": PlanImage.Put32(image, PlanImage.OpArg(image, stage, 6), y.H); break;
            case "base": PlanImage.Put32(image, PlanImage.OpArg(image, stage, 7), x.ByteLength); break;
            case "output":
                // Staged at the input's start, where the output goes: the move at the end would read bytes it has already written.
                Assert.Equal(x.ArenaOffset, y.ArenaOffset);
                PlanImage.Put32(image, PlanImage.OpArg(image, stage, 7), 0);
                break;
        }
        PlanImage.Seal(image);
        var e = Assert.Throws<PlanException>(() => PlanType.Load(image, "damaged.ttplan"));
        Assert.Contains("damaged.ttplan", e.Message);
        Assert.True(e.Message.Contains(message), e.Message);
    }
}
