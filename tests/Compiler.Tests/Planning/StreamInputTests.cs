namespace TinyTrain.Compiler.Tests.Planning;

using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Learning;
using TinyTrain.Compiler.Planning;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Compiler.Zoo;
using TinyTrain.Runtime;
using TinyTrain.Runtime.Execution;
using TinyTrain.Runtime.Plans;
using PlanType = TinyTrain.Runtime.Plans.Plan;

/// <summary>
/// A streamed model input (compile --stream-input on, plan tensor flag Streamed): the input never lives in the arena; the
/// first patch stage reads it band by band from the caller's frame. Bit for bit the plan with the input in the arena (int8
/// and float inputs, chain and graph stages), the arena smaller by the input less the band, measured as planned, nothing
/// allocated per step, each frame row read once; bad options and damaged plans refused with what to do.
/// </summary>
public class StreamInputTests
{
    private static Quantized Quantize(string model, int resolution, string update)
    {
        var graph = ModelZoo.Build(model, resolution, 10, seed: 3);
        return PlanCompiler.Quantize(graph, CalibrationSet.Random(graph.InputShape, 4, 5), new CompileOptions(),
            m => update == "148kb" ? TrainableSet.FromScheme(PlanSamples.LargestScheme("mcunet-5fps"), m, update) : TrainableSet.Parse(update, m));
    }

    // Both with the CLI's memory options (the stage is then often the step's peak) and auto's recompute limit off.
    private static (CompileResult Whole, CompileResult Streamed) Compile(string model, int resolution, string update, string patch, bool residuals)
    {
        Quantized q = Quantize(model, resolution, update);
        var options = new CompileOptions
        {
            Patch = patch, PatchResiduals = residuals, PatchRecomputeLimit = double.PositiveInfinity,
            InPlaceDepthwise = true, ChannelBackward = true, InPlacePointwise = true, TrainedSlices = true,
        };
        return (PlanCompiler.Emit(q, q.Trainable!, options), PlanCompiler.Emit(q, q.Trainable!, options with { StreamInput = true }));
    }

    private static byte[] Input(PlanType plan, int seed) => PlanSamples.RandomInput(plan, seed);

    private static int StageIndex(PlanType plan) => PlanSamples.FirstRunOp(plan);

    [Theory]
    [InlineData("mcunet-5fps", 128, "148kb", "16x16", true, true)]
    [InlineData("mcunet-5fps", 128, "148kb", "8x8", false, true)]
    [InlineData("mcunet-5fps", 96, "bias:8", "auto", true, false)]
    [InlineData("mbv2-w0.35", 96, "bias:6", "4x3", true, false)]
    [InlineData("proxyless-w0.3", 80, "bias:6", "3x3", false, false)]
    public void A_streamed_input_trains_bit_for_bit_as_the_input_in_the_arena_in_less_memory(string model, int resolution, string update, string patch, bool residuals,
        bool stageIsThePeak)
    {
        (CompileResult whole, CompileResult streamed) = Compile(model, resolution, update, patch, residuals);
        var a = new Executor(PlanType.Load(whole.Image, "whole")) { LearningRate = 0.05f };
        var b = new Executor(PlanType.Load(streamed.Image, "streamed")) { LearningRate = 0.05f };
        Assert.False(a.StreamsInput);
        Assert.True(b.StreamsInput);
        TensorInfo x = b.Plan.Tensor(b.Plan.InputTensor);
        Assert.True(x.Streamed);
        OpInfo stage = b.Plan.Op(StageIndex(b.Plan));
        Assert.Equal(residuals ? stage.Kind : OpKind.PatchStage, stage.Kind);
        PatchInfo info = streamed.Program.Patch!;
        Assert.Equal(info.BandRows, stage.Arg(5));
        Assert.True(info.BandRows < x.H, $"band {info.BandRows} of {x.H} rows");
        Assert.Equal(x.C * info.BandRows * x.W, info.BandBytes);
        // Where the first stage sets the arena the streamed plan is smaller; elsewhere the backward's peak stays.
        Assert.True(stageIsThePeak ? streamed.Plan.ArenaBytes < whole.Plan.ArenaBytes : streamed.Plan.ArenaBytes <= whole.Plan.ArenaBytes,
            $"streamed {streamed.Plan.ArenaBytes} vs whole {whole.Plan.ArenaBytes}");
        Assert.Equal(b.Plan.ArenaBytes, ArenaProbe.MeasureTrainStep(b.Plan, Input(b.Plan, 9), 0, 2));

        PlanSamples.AssertSameTraining(a, b, 3, 300);
        // Float frames are quantized as they stream, to the same bytes TrySetInput writes into the arena.
        var values = new float[a.InputLength + 5];
        var random = new Random(11);
        for (int i = 0; i < values.Length; i++) values[i] = (float)(random.NextDouble() * 2.4 - 1.2);
        Assert.True(a.TrySetInput(values, 5));
        Assert.True(b.TrySetInput(values, 5));
        a.Invoke();
        b.Invoke();
        Assert.Equal(a.Arena.AsSpan(a.OutputOffset, a.OutputLength).ToArray(), b.Arena.AsSpan(b.OutputOffset, b.OutputLength).ToArray());
        Assert.Equal(a.InputIsConstant(), b.InputIsConstant());
    }

    [Fact]
    public void Each_frame_row_is_read_once_and_in_order_so_a_line_stream_can_feed_the_band()
    {
        (_, CompileResult streamed) = Compile("mcunet-5fps", 96, "bias:8", "8x8", true);
        PlanType plan = PlanType.Load(streamed.Image, "streamed");
        int stage = StageIndex(plan);
        OpInfo op = plan.Op(stage);
        var g = new PatchGraph();
        PatchGraphLoader.Load(g, plan, stage);
        TensorInfo y = plan.Tensor(op.Output), x = plan.Tensor(plan.InputTensor);
        int rows = op.Arg(1), next = 0, held0 = 0, held1 = 0;
        for (int r = 0; r < rows; r++)
        {
            g.Ranges(PatchGraph.PartStart(y.H, rows, r), PatchGraph.PartStart(y.H, rows, r + 1), 0, PatchGraph.PartStart(y.W, op.Arg(2), 1));
            int count = g.StageInputRows(out int start);
            Assert.True(start >= held0 && start + count >= held1, $"row of tiles {r}: band [{start}, {start + count}) after [{held0}, {held1})");
            Assert.True(count <= op.Arg(5));
            // PatchTile.Advance reads rows [max(start, held1), start + count): the next unread row onwards.
            int firstRead = Math.Max(start, held1);
            if (firstRead < start + count) Assert.Equal(next, firstRead);
            next = Math.Max(next, start + count);
            (held0, held1) = (start, start + count);
        }
        Assert.Equal(x.H, next);
    }

    [Fact]
    public void Streamed_steps_allocate_nothing()
    {
        (_, CompileResult streamed) = Compile("mbv2-w0.35", 96, "bias:6", "auto", true);
        var executor = new Executor(PlanType.Load(streamed.Image, "streamed"));
        byte[] input = Input(executor.Plan, 1);
        var values = new float[executor.InputLength];
        executor.SetInput(input, 0);
        executor.TrainStep(1);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 3; i++)
        {
            executor.SetInput(input, 0);
            executor.TrainStep(1);
            executor.TrySetInput(values, 0);
            executor.Invoke();
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void A_step_with_no_frame_set_and_a_frame_with_NaN_are_refused_keeping_what_was_set()
    {
        (CompileResult whole, CompileResult streamed) = Compile("mbv2-w0.35", 96, "bias:6", "auto", true);
        var executor = new Executor(PlanType.Load(streamed.Image, "streamed.ttplan"));
        var e = Assert.Throws<TinyTrainException>(() => executor.Invoke());
        Assert.Contains("streams its input and none was set; call SetInput or TrySetInput", e.Message);
        Assert.Throws<TinyTrainException>(() => executor.SetInput(new byte[executor.InputLength - 1], 0));

        var reference = new Executor(PlanType.Load(whole.Image, "whole"));
        byte[] input = Input(executor.Plan, 4);
        executor.SetInput(input, 0);
        reference.SetInput(input, 0);
        var bad = new float[executor.InputLength];
        bad[17] = float.NaN;
        Assert.False(executor.TrySetInput(bad, 0));
        executor.Invoke();
        reference.Invoke();
        Assert.Equal(reference.Arena.AsSpan(reference.OutputOffset, reference.OutputLength).ToArray(),
            executor.Arena.AsSpan(executor.OutputOffset, executor.OutputLength).ToArray());
    }

    [Fact]
    public void Streaming_without_a_patch_stage_is_refused_with_what_to_change()
    {
        Quantized q = Quantize("mbv2-w0.35", 96, "bias:6");
        var e = Assert.Throws<TinyTrainException>(() => PlanCompiler.Emit(q, q.Trainable!, new CompileOptions { Patch = "off", StreamInput = true }));
        Assert.Contains("--stream-input on needs a patch stage", e.Message);
        Assert.Contains("--patch auto", e.Message);
        // A model whose first layer trains has no frozen stage to read the input.
        Quantized full = Quantize("mbv2-w0.35", 64, "full");
        e = Assert.Throws<TinyTrainException>(() => PlanCompiler.Emit(full, full.Trainable!, new CompileOptions { Patch = "auto", StreamInput = true }));
        Assert.Contains("--stream-input off", e.Message);
    }

    // Damaged streamed plans: each edit is re-sealed, so only the loader's checks can refuse it.
    public static TheoryData<string, string> Damage => new()
    {
        { "band", "a row of tiles reads" },
        { "band-too-large", "a row of tiles reads" },
        { "band-on-whole", "is not streamed; recompile" },
        { "other-tensor", "only the model input may be streamed" },
        { "no-stage", "the plan's first op is not a patch stage reading it" },
        { "tiled-and-streamed", "both tiled and streamed" },
        { "tiles", "its tiles need" },
    };

    [Theory]
    [MemberData(nameof(Damage))]
    public void A_damaged_streamed_plan_is_refused_naming_what_is_wrong(string damage, string message)
    {
        (CompileResult whole, CompileResult streamed) = Compile("mcunet-5fps", 96, "bias:8", "auto", true);
        byte[] image = (byte[])(damage is "band-on-whole" ? whole.Image : streamed.Image).Clone();
        PlanType good = PlanType.Load(image, "good");
        int stage = StageIndex(good), input = good.InputTensor;
        switch (damage)
        {
            case "band": PlanImage.Put32(image, PlanImage.OpArg(image, stage, 5), good.Op(stage).Arg(5) - 1); break;
            case "band-too-large": PlanImage.Put32(image, PlanImage.OpArg(image, stage, 5), good.Tensor(input).H + 1); break;
            case "band-on-whole": PlanImage.Put32(image, PlanImage.OpArg(image, stage, 5), 3); break;
            case "other-tensor": PlanImage.Put16(image, PlanImage.Tensor(image, good.Op(stage).Output, PlanFormat.TensorFlags), PlanFormat.TensorFlagStreamed); break;
            case "no-stage":
                // The whole-input plan with its input marked streamed: its first op is not a stage with a band.
                Quantized q = Quantize("mbv2-w0.35", 96, "bias:6");
                image = (byte[])PlanCompiler.Emit(q, q.Trainable!, new CompileOptions { Patch = "off" }).Image.Clone();
                good = PlanType.Load(image, "good");
                PlanImage.Put16(image, PlanImage.Tensor(image, good.InputTensor, PlanFormat.TensorFlags), PlanFormat.TensorFlagStreamed);
                PlanImage.Put32(image, PlanImage.Tensor(image, good.InputTensor, PlanFormat.TensorArenaOffset), 0);
                break;
            case "tiled-and-streamed":
                PlanImage.Put16(image, PlanImage.Tensor(image, input, PlanFormat.TensorFlags), PlanFormat.TensorFlagStreamed | PlanFormat.TensorFlagTiled);
                break;
            case "tiles": PlanImage.Put32(image, PlanImage.OpArg(image, stage, 4), good.Op(stage).Arg(4) - 1); break;
        }
        PlanImage.Seal(image);
        var e = Assert.Throws<PlanException>(() => PlanType.Load(image, "damaged.ttplan"));
        Assert.Contains("damaged.ttplan", e.Message);
        Assert.Contains(message, e.Message);
    }
}
