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
/// In-place 1x1 convs (PointwiseInPlace: the output over whole planes of the dying input, pixel by pixel): bit for
/// bit the plan without them, an arena no larger that the runtime touches exactly, bad layouts refused at load.
/// </summary>
public class PointwiseInPlaceTests
{
    private static (CompileResult Off, CompileResult On) CompileBoth(string model, int resolution, string update, string patch)
    {
        var graph = ModelZoo.Build(model, resolution, 10, seed: 5);
        Quantized q = PlanCompiler.Quantize(graph, CalibrationSet.Random(graph.InputShape, 4, 2), new CompileOptions(), m => TrainableSet.Parse(update, m));
        var options = new CompileOptions { Patch = patch, InPlaceDepthwise = true, ChannelBackward = true };
        return (PlanCompiler.Emit(q, q.Trainable!, options), PlanCompiler.Emit(q, q.Trainable!, options with { InPlacePointwise = true }));
    }

    private static byte[] Input(PlanType plan, int seed) => PlanSamples.RandomInput(plan, seed);

    [Theory]
    [InlineData("mcunet-5fps", 128, "none", "auto")]
    [InlineData("proxyless-w0.3", 128, "none", "auto")]
    public void Inference_gives_the_same_logits_in_a_smaller_arena_measured_as_planned(string model, int resolution, string update, string patch)
    {
        (CompileResult off, CompileResult on) = CompileBoth(model, resolution, update, patch);
        Assert.Contains(on.Plan.Ops, o => o.InPlace && o.Kind == nameof(OpKind.PointwiseInPlace));
        Assert.True(on.Plan.ArenaBytes < off.Plan.ArenaBytes, $"{on.Plan.ArenaBytes} vs {off.Plan.ArenaBytes}");
        var a = new Executor(PlanType.Load(off.Image, "off"));
        var b = new Executor(PlanType.Load(on.Image, "on"));
        for (int sample = 0; sample < 3; sample++)
        {
            byte[] input = Input(a.Plan, 20 + sample);
            a.SetInput(input, 0);
            b.SetInput(input, 0);
            a.Invoke();
            b.Invoke();
            Assert.Equal(a.Arena.AsSpan(a.OutputOffset, a.OutputLength).ToArray(), b.Arena.AsSpan(b.OutputOffset, b.OutputLength).ToArray());
        }
        Assert.Equal(b.Plan.ArenaBytes, ArenaProbe.MeasureInference(b.Plan, Input(b.Plan, 6), 0));
    }

    [Fact]
    public void Training_learns_exactly_the_same_and_touches_the_planned_arena()
    {
        (CompileResult off, CompileResult on) = CompileBoth("mcunet-5fps", 128, "bias:20", "auto");
        Assert.Contains(on.Plan.Ops, o => o.InPlace && o.Kind == nameof(OpKind.PointwiseInPlace));
        Assert.True(on.Plan.ArenaBytes <= off.Plan.ArenaBytes);
        var a = new Executor(PlanType.Load(off.Image, "off")) { LearningRate = 0.05f };
        var b = new Executor(PlanType.Load(on.Image, "on")) { LearningRate = 0.05f };
        for (int step = 0; step < 3; step++)
        {
            byte[] input = Input(a.Plan, 50 + step);
            a.SetInput(input, 0);
            b.SetInput(input, 0);
            Assert.Equal(BitConverter.SingleToInt32Bits(a.TrainStep(step)), BitConverter.SingleToInt32Bits(b.TrainStep(step)));
            Assert.Equal(a.Params, b.Params);
        }
        Assert.Equal(b.Plan.ArenaBytes, ArenaProbe.MeasureTrainStep(b.Plan, Input(b.Plan, 7), 0, 3));
    }

    public static TheoryData<string, string> Damage => new()
    {
        { "shifted", "not at a whole plane" },
        { "mask", "only a 1x1 conv without a mask runs in place" },
        { "scratch", "overlaps its input" },
    };

    [Theory]
    [MemberData(nameof(Damage))]
    public void A_damaged_in_place_pointwise_conv_is_refused_with_a_message_that_names_the_op(string damage, string message)
    {
        (_, CompileResult on) = CompileBoth("mcunet-5fps", 128, "none", "auto");
        OpReport report = on.Plan.Ops.First(o => o.InPlace && o.Kind == nameof(OpKind.PointwiseInPlace));
        byte[] image = (byte[])on.Image.Clone();
        PlanType good = PlanType.Load(image, "good");
        OpInfo op = good.Op(report.Index);
        switch (damage)
        {
            case "shifted": PlanImage.Put32(image, PlanImage.Tensor(image, op.Output, PlanFormat.TensorArenaOffset), report.OutputOffset + 1); break;
            case "mask": PlanImage.Put32(image, PlanImage.OpArg(image, report.Index, 6), 1); break;
            case "scratch":
                PlanImage.Put32(image, PlanImage.Tensor(image, op.Scratch, PlanFormat.TensorArenaOffset), good.Tensor(op.Input0).ArenaOffset);
                break;
        }
        PlanImage.Seal(image);
        var e = Assert.Throws<PlanException>(() => PlanType.Load(image, "damaged.ttplan"));
        Assert.Contains("damaged.ttplan", e.Message);
        Assert.Contains($"op {report.Index} (PointwiseInPlace", e.Message);
        Assert.Contains(message, e.Message);
    }
}
