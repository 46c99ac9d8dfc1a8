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
/// Patch-by-patch execution of the frozen first stage: bit for bit the plain plan's results (stage output,
/// logits, loss and learned parameters), the arena as planned, nothing allocated, damaged stages refused.
/// </summary>
public class PatchStageTests
{
    private static (CompileResult Plain, CompileResult Patched) CompileBoth(string model, int resolution, string update, string patch)
    {
        var graph = ModelZoo.Build(model, resolution, 10, seed: 3);
        Quantized q = PlanCompiler.Quantize(graph, CalibrationSet.Random(graph.InputShape, 4, 5), new CompileOptions(),
            m => TrainableSet.Parse(update, m));
        var trainable = q.Trainable!;
        return (PlanCompiler.Emit(q, trainable, new CompileOptions { Patch = "off" }), PlanCompiler.Emit(q, trainable, new CompileOptions { Patch = patch }));
    }

    private static byte[] Input(PlanType plan, int seed) => PlanSamples.RandomInput(plan, seed);

    private static int InitOps(PlanType plan) => PlanSamples.FirstRunOp(plan);

    [Theory]
    [InlineData("mbv2-w0.35", 64, "none", "auto")]
    [InlineData("mbv2-w0.35", 72, "bias:4", "2x2")]
    [InlineData("proxyless-w0.3", 80, "bias:6", "3x3")]
    [InlineData("mcunet-5fps", 96, "none", "4x3")]
    [InlineData("mcunet-5fps", 56, "bias:8", "auto")]
    public void The_patched_stage_output_and_the_logits_are_bit_identical_to_the_plain_plan(string model, int resolution, string update, string patch)
    {
        (CompileResult plain, CompileResult patched) = CompileBoth(model, resolution, update, patch);
        PatchInfo info = Assert.IsType<PatchInfo>(patched.Program.Patch);
        Assert.True(info.Ops >= 2);
        var a = new Executor(PlanType.Load(plain.Image, "plain"));
        var b = new Executor(PlanType.Load(patched.Image, "patched"));
        int stageOutput = patched.Program.Ops[0].Output;
        TensorInfo ya = a.Plan.Tensor(stageOutput), yb = b.Plan.Tensor(stageOutput);
        for (int sample = 0; sample < 3; sample++)
        {
            byte[] input = Input(a.Plan, 100 + sample);
            a.SetInput(input, 0);
            b.SetInput(input, 0);
            a.Run(InitOps(a.Plan), InitOps(a.Plan) + info.Ops);
            b.Run(InitOps(b.Plan), InitOps(b.Plan) + 1 + info.Ops);
            Assert.Equal(a.Arena.AsSpan(ya.ArenaOffset, ya.ByteLength).ToArray(), b.Arena.AsSpan(yb.ArenaOffset, yb.ByteLength).ToArray());

            a.SetInput(input, 0);
            b.SetInput(input, 0);
            a.Invoke();
            b.Invoke();
            Assert.Equal(a.Arena.AsSpan(a.OutputOffset, a.OutputLength).ToArray(), b.Arena.AsSpan(b.OutputOffset, b.OutputLength).ToArray());
        }
    }

    [Theory]
    [InlineData("mbv2-w0.35", 64, "bias:6", "auto")]
    [InlineData("proxyless-w0.3", 72, "bias:4", "2x3")]
    [InlineData("mcunet-5fps", 64, "bias:10", "auto")]
    public void Training_steps_of_the_patched_plan_learn_exactly_what_the_plain_plan_learns(string model, int resolution, string update, string patch)
    {
        (CompileResult plain, CompileResult patched) = CompileBoth(model, resolution, update, patch);
        Assert.NotNull(patched.Program.Patch);
        var a = new Executor(PlanType.Load(plain.Image, "plain")) { LearningRate = 0.05f };
        var b = new Executor(PlanType.Load(patched.Image, "patched")) { LearningRate = 0.05f };
        a.Seed(7);
        b.Seed(7);
        for (int step = 0; step < 4; step++)
        {
            byte[] input = Input(a.Plan, 200 + step);
            a.SetInput(input, 0);
            b.SetInput(input, 0);
            float la = a.TrainStep(step % 10), lb = b.TrainStep(step % 10);
            Assert.Equal(BitConverter.SingleToInt32Bits(la), BitConverter.SingleToInt32Bits(lb));
            Assert.Equal(a.LastPrediction, b.LastPrediction);
            Assert.Equal(a.Params, b.Params);
        }
    }

    [Theory]
    [InlineData("mbv2-w0.35", 96, "bias:6")]
    [InlineData("proxyless-w0.3", 64, "none")]
    [InlineData("mcunet-5fps", 80, "bias:4")]
    public void The_measured_high_water_mark_equals_the_patched_plan_and_the_arena_shrinks(string model, int resolution, string update)
    {
        (CompileResult plain, CompileResult patched) = CompileBoth(model, resolution, update, "auto");
        var plan = PlanType.Load(patched.Image, model);
        byte[] input = Input(plan, 9);
        int measured = update == "none" ? ArenaProbe.MeasureInference(plan, input, 0) : ArenaProbe.MeasureTrainStep(plan, input, 0, 2);
        Assert.Equal(plan.ArenaBytes, measured);
        Assert.True(patched.Plan.ArenaBytes < plain.Plan.ArenaBytes, $"patched {patched.Plan.ArenaBytes} vs plain {plain.Plan.ArenaBytes}");
        PatchInfo info = patched.Program.Patch!;
        Assert.Equal(plain.Plan.ArenaBytes, info.UnpatchedArenaBytes);
        Assert.True(info.PatchedMacs > info.Macs, "tiles recompute their halos");
    }

    [Fact]
    public void Patched_steps_allocate_nothing()
    {
        (_, CompileResult patched) = CompileBoth("mbv2-w0.35", 64, "bias:4", "auto");
        var executor = new Executor(PlanType.Load(patched.Image, "patched"));
        byte[] input = Input(executor.Plan, 1);
        for (int i = 0; i < 3; i++)
        {
            executor.SetInput(input, 0);
            executor.TrainStep(1);
            executor.SetInput(input, 0);
            executor.Invoke();
        }
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 5; i++)
        {
            executor.SetInput(input, 0);
            executor.TrainStep(1);
            executor.SetInput(input, 0);
            executor.Invoke();
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void Auto_leaves_a_plan_whose_first_layer_trains_unpatched_and_a_forced_grid_says_why()
    {
        (CompileResult plain, CompileResult patched) = CompileBoth("mbv2-w0.35", 32, "full", "auto");
        Assert.Null(patched.Program.Patch);
        Assert.Equal(plain.Image, patched.Image);
        var e = Assert.Throws<TinyTrainException>(() => CompileBoth("mbv2-w0.35", 32, "full", "2x2"));
        Assert.Contains("--patch 2x2: nothing to run patch by patch", e.Message);
    }

    [Fact]
    public void Auto_leaves_a_stage_no_grid_fits_unpatched_and_a_forced_grid_says_why()
    {
        // imu-cnn's windows are one column wide: no square grid tiles them.
        (CompileResult plain, CompileResult patched) = CompileBoth("imu-cnn", 64, "bias:1", "auto");
        Assert.Null(patched.Program.Patch);
        Assert.Equal(plain.Image, patched.Image);
        var e = Assert.Throws<TinyTrainException>(() => CompileBoth("imu-cnn", 64, "bias:1", "2x2"));
        Assert.Contains("the grid is finer than the stage output", e.Message);
    }

    [Theory]
    [InlineData("2")]
    [InlineData("0x2")]
    [InlineData("65x1")]
    [InlineData("on")]
    public void A_bad_patch_option_is_refused_with_what_to_write(string text)
    {
        var e = Assert.Throws<TinyTrainException>(() => PatchStages.Parse(text, out _, out _, out _));
        Assert.Equal($"--patch must be auto, off or RxC (tiles per column and row, 1..64, e.g. 2x2), got '{text}'", e.Message);
    }

    // Damaged patch stages: each edit is re-sealed, so only the loader's checks can refuse it.
    public static TheoryData<string, string> Damage => new()
    {
        { "grid", "grid (args 1, 2) does not tile" },
        { "padded", "its tiles need" },
        { "count", "only" },
        { "short", "is tiled, but only the ops of a patch stage or a channel stage may name a tiled tensor" },
        { "untiled", "which is not tiled" },
        { "flags", "set bits this runtime does not know" },
        { "outside", "only the ops of a patch stage or a channel stage may name a tiled tensor" },
    };

    [Theory]
    [MemberData(nameof(Damage))]
    public void A_damaged_patch_stage_is_refused_with_a_clear_message(string damage, string message)
    {
        (_, CompileResult patched) = CompileBoth("mbv2-w0.35", 64, "bias:4", "2x2");
        byte[] image = (byte[])patched.Image.Clone();
        PlanType good = PlanType.Load(image, "good");
        int stage = InitOps(good), n = good.Op(stage).Arg(0);
        int firstTiled = good.Op(stage + 1).Output;
        switch (damage)
        {
            case "grid": PlanImage.Put32(image, PlanImage.OpArg(image, stage, 1), 0); break;
            case "padded": PlanImage.Put32(image, PlanImage.OpArg(image, stage, 3), good.Op(stage).Arg(3) - 1); break;
            case "count": PlanImage.Put32(image, PlanImage.OpArg(image, stage, 0), good.ForwardOpCount); break;
            case "short": PlanImage.Put32(image, PlanImage.OpArg(image, stage, 0), n - 1); break;
            case "untiled": PlanImage.Put16(image, PlanImage.Tensor(image, firstTiled, PlanFormat.TensorFlags), 0); break;
            case "flags": PlanImage.Put16(image, PlanImage.Tensor(image, firstTiled, PlanFormat.TensorFlags), 4); break;
            case "outside":
                // A later op reads a tiled tensor: it would read bytes that never held it.
                PlanImage.Put16(image, PlanImage.Op(image, stage + n + 1, PlanFormat.OpInput0), firstTiled);
                break;
        }
        PlanImage.Seal(image);
        var e = Assert.Throws<PlanException>(() => PlanType.Load(image, "damaged.ttplan"));
        Assert.Contains("damaged.ttplan", e.Message);
        Assert.Contains(message, e.Message);
    }
}
