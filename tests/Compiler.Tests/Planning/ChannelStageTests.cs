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
/// Channel stages (the backward of expansion -> depthwise -> projection chains one expanded channel at a time):
/// on the largest shipped sparse schemes of the three networks, bit for bit the same losses, learned parameters
/// and probed gradients as the plan without them, a smaller arena that one real step touches exactly, nothing
/// allocated per step, and damaged stages refused with a message that names the op.
/// </summary>
public class ChannelStageTests
{
    private static SparseScheme Largest(string model) => PlanSamples.LargestScheme(model);

    private static (CompileResult Off, CompileResult On) CompileBoth(string model, int resolution, string patch, string? update = null, bool momentum = false)
    {
        var graph = ModelZoo.Build(model, resolution, 10, seed: 7);
        Quantized q = PlanCompiler.Quantize(graph, CalibrationSet.Random(graph.InputShape, 4, 8), new CompileOptions(),
            m => update is null ? TrainableSet.FromScheme(Largest(model), m, "largest") : TrainableSet.Parse(update, m));
        var options = new CompileOptions { Patch = patch, InPlaceDepthwise = true, Training = new TrainingOptions { Momentum = momentum } };
        return (PlanCompiler.Emit(q, q.Trainable!, options), PlanCompiler.Emit(q, q.Trainable!, options with { ChannelBackward = true }));
    }

    private static byte[] Input(PlanType plan, int seed) => PlanSamples.RandomInput(plan, seed);

    private static List<int> Stages(PlanType plan) =>
        Enumerable.Range(0, plan.OpCount).Where(i => plan.Op(i).Kind == OpKind.ChannelStage).ToList();

    [Theory]
    [InlineData("mbv2-w0.35", 64, "off")]
    [InlineData("mbv2-w0.35", 48, "auto")]
    [InlineData("proxyless-w0.3", 64, "auto")]
    [InlineData("mcunet-5fps", 64, "auto")]
    [InlineData("mcunet-5fps", 40, "off")]
    public void The_largest_schemes_learn_bit_for_bit_the_same_in_a_smaller_arena_touched_as_planned(string model, int resolution, string patch)
    {
        (CompileResult off, CompileResult on) = CompileBoth(model, resolution, patch);
        var a = new Executor(PlanType.Load(off.Image, "off")) { LearningRate = 0.05f };
        var b = new Executor(PlanType.Load(on.Image, "on")) { LearningRate = 0.05f };
        List<int> stages = Stages(b.Plan);
        Assert.NotEmpty(stages);
        // Some stage trains the expansion conv's weights (a Conv2DUpdate inside) and some ends with its input gradient.
        Assert.Contains(stages, s => Enumerable.Range(s + 1, b.Plan.Op(s).Arg(0)).Any(i => b.Plan.Op(i).Kind == OpKind.Conv2DUpdate));
        Assert.Contains(stages, s => b.Plan.Op(s).Output != PlanFormat.NoTensor);
        Assert.True(on.Plan.ArenaBytes <= off.Plan.ArenaBytes, $"{on.Plan.ArenaBytes} vs {off.Plan.ArenaBytes}");
        Assert.Equal(off.Plan.ParamBytes, on.Plan.ParamBytes);
        a.Seed(11);
        b.Seed(11);
        for (int step = 0; step < 4; step++)
        {
            byte[] input = Input(a.Plan, 70 + step);
            a.SetInput(input, 0);
            b.SetInput(input, 0);
            Assert.Equal(BitConverter.SingleToInt32Bits(a.TrainStep(step % 10)), BitConverter.SingleToInt32Bits(b.TrainStep(step % 10)));
            Assert.Equal(a.Params, b.Params);
        }
        Assert.Equal(b.Plan.ArenaBytes, ArenaProbe.MeasureTrainStep(b.Plan, Input(b.Plan, 9), 0, 2));
    }

    [Fact]
    public void The_gradient_probe_reports_the_same_gradients_and_a_step_allocates_nothing()
    {
        (CompileResult off, CompileResult on) = CompileBoth("mbv2-w0.35", 48, "off");
        var reports = new List<(float[] Dw, float[] Db)>[2];
        CompileResult[] plans = [off, on];
        for (int p = 0; p < 2; p++)
        {
            var list = reports[p] = [];
            var e = new Executor(PlanType.Load(plans[p].Image, "probe")) { LearningRate = 0.05f, GradientProbe = (_, dw, db) => list.Add(((float[])dw.Clone(), (float[])db.Clone())) };
            e.SetInput(Input(e.Plan, 3), 0);
            e.TrainStep(4);
        }
        Assert.Equal(reports[0].Count, reports[1].Count);
        for (int i = 0; i < reports[0].Count; i++)
        {
            Assert.Equal(reports[0][i].Dw, reports[1][i].Dw);
            Assert.Equal(reports[0][i].Db, reports[1][i].Db);
        }

        var b = new Executor(PlanType.Load(on.Image, "on")) { LearningRate = 0.05f };
        byte[] input = Input(b.Plan, 4);
        b.SetInput(input, 0);
        b.TrainStep(1);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int step = 0; step < 5; step++)
        {
            b.SetInput(input, 0);
            b.TrainStep(step);
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void Plans_with_momentum_or_with_trained_projection_weights_are_left_as_they_are()
    {
        (CompileResult off, CompileResult on) = CompileBoth("mbv2-w0.35", 48, "off", momentum: true);
        Assert.Empty(Stages(PlanType.Load(on.Image, "momentum")));
        Assert.Equal(off.Image, on.Image);
        // Full update trains each projection's weights, whose input gradient must read them before their update.
        (off, on) = CompileBoth("mbv2-w0.35", 32, "off", update: "full");
        Assert.Equal(off.Image, on.Image);
    }

    // Damaged channel stages: each edit is re-sealed, so only the loader's checks can refuse it.
    public static TheoryData<string, string> Damage => new()
    {
        { "channels", "is not float32 planes of" },
        { "plane", "float slots (args 1, 2)" },
        { "buffer", "do not fit its" },
        { "count", "runs 9 ops (arg 0)" },
        { "short", "only the ops of a patch stage or a channel stage may name a tiled tensor" },
        { "kind", "is not one a channel stage runs" },
        { "first", "must read the stage input" },
        { "overlap", "overlaps its inner ops' tensor" },
    };

    [Theory]
    [MemberData(nameof(Damage))]
    public void A_damaged_channel_stage_is_refused_with_a_message_that_names_the_op(string damage, string message)
    {
        (_, CompileResult on) = CompileBoth("mbv2-w0.35", 48, "off");
        byte[] image = (byte[])on.Image.Clone();
        PlanType good = PlanType.Load(image, "good");
        int stage = Stages(good).First(s => good.Op(s).Output != PlanFormat.NoTensor);
        OpInfo op = good.Op(stage);
        int n = op.Arg(0);
        switch (damage)
        {
            case "channels": PlanImage.Put32(image, PlanImage.OpArg(image, stage, 1), op.Arg(1) + 1); break;
            case "plane": PlanImage.Put32(image, PlanImage.OpArg(image, stage, 2), 1); break;
            case "buffer": PlanImage.Put32(image, PlanImage.OpArg(image, stage, 2), op.Arg(2) * 4); break;
            case "count": PlanImage.Put32(image, PlanImage.OpArg(image, stage, 0), 9); break;
            case "short": PlanImage.Put32(image, PlanImage.OpArg(image, stage, 0), n - 1); break;
            case "kind":
                // The mask gradient becomes a GradientAdd of the tiled plane with itself: a valid op, but not one a stage runs.
                Assert.Equal(OpKind.MaskGradient, good.Op(stage + 2).Kind);
                PlanImage.Put16(image, PlanImage.Op(image, stage + 2, PlanFormat.OpKindField), (int)OpKind.GradientAdd);
                PlanImage.Put16(image, PlanImage.Op(image, stage + 2, PlanFormat.OpInput0), good.Op(stage + 2).Input1);
                break;
            case "first": PlanImage.Put16(image, PlanImage.Op(image, stage, PlanFormat.OpInput0), op.Output); break;
            case "overlap":
                PlanImage.Put32(image, PlanImage.Tensor(image, op.Scratch, PlanFormat.TensorArenaOffset), good.Tensor(op.Input0).ArenaOffset);
                break;
        }
        PlanImage.Seal(image);
        var e = Assert.Throws<PlanException>(() => PlanType.Load(image, "damaged.ttplan"));
        Assert.Contains("damaged.ttplan", e.Message);
        if (damage != "short") Assert.Contains($"op {stage} (ChannelStage", e.Message);
        Assert.Contains(message, e.Message);
    }
}
