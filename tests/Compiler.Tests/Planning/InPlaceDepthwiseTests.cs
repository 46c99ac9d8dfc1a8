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
/// In-place depthwise convs (forward and input gradient, output one channel plane below the dying input):
/// bit for bit the separate-buffer plan, a smaller or equal arena that the runtime touches exactly, and a
/// layout that is not the exact one-plane shift refused at load.
/// </summary>
public class InPlaceDepthwiseTests
{
    // Trains one early conv's weights (and the classifier): the frozen depthwise convs between them pass
    // gradients they do not keep, so their input gradients can run in place.
    private static TrainableSet EarlyConv(QuantizedModel m) => TrainableSet.FromScheme(new SparseScheme(0, [4], [0.25]), m, "early");

    private static (CompileResult Off, CompileResult On) CompileBoth(string model, int resolution, bool training, string patch = "off", string? update = null)
    {
        var graph = ModelZoo.Build(model, resolution, 10, seed: 4);
        Quantized q = PlanCompiler.Quantize(graph, CalibrationSet.Random(graph.InputShape, 4, 6), new CompileOptions(),
            m => update is not null ? TrainableSet.Parse(update, m) : training ? EarlyConv(m) : TrainableSet.Parse("none", m));
        return (PlanCompiler.Emit(q, q.Trainable!, new CompileOptions { Patch = patch }),
            PlanCompiler.Emit(q, q.Trainable!, new CompileOptions { Patch = patch, InPlaceDepthwise = true }));
    }

    private static byte[] Input(PlanType plan, int seed) => PlanSamples.RandomInput(plan, seed);

    [Theory]
    [InlineData("mbv2-w0.35", 64, "off")]
    [InlineData("mcunet-5fps", 72, "off")]
    [InlineData("proxyless-w0.3", 64, "auto")]
    public void Inference_in_place_gives_the_same_logits_in_a_smaller_arena_measured_as_planned(string model, int resolution, string patch)
    {
        (CompileResult off, CompileResult on) = CompileBoth(model, resolution, training: false, patch);
        Assert.Contains(on.Plan.Ops, o => o.InPlace && o.Kind == nameof(OpKind.DepthwiseConv2D));
        Assert.True(on.Plan.ArenaBytes <= off.Plan.ArenaBytes);
        var a = new Executor(PlanType.Load(off.Image, "off"));
        var b = new Executor(PlanType.Load(on.Image, "on"));
        for (int sample = 0; sample < 3; sample++)
        {
            byte[] input = Input(a.Plan, 30 + sample);
            a.SetInput(input, 0);
            b.SetInput(input, 0);
            a.Invoke();
            b.Invoke();
            Assert.Equal(a.Arena.AsSpan(a.OutputOffset, a.OutputLength).ToArray(), b.Arena.AsSpan(b.OutputOffset, b.OutputLength).ToArray());
        }
        Assert.Equal(b.Plan.ArenaBytes, ArenaProbe.MeasureInference(b.Plan, Input(b.Plan, 5), 0));
    }

    [Theory]
    [InlineData("mbv2-w0.35", 64, "off")]
    [InlineData("mcunet-5fps", 64, "auto")]
    public void Training_in_place_learns_exactly_the_same_and_touches_the_planned_arena(string model, int resolution, string patch)
    {
        (CompileResult off, CompileResult on) = CompileBoth(model, resolution, training: true, patch);
        var a = new Executor(PlanType.Load(off.Image, "off")) { LearningRate = 0.05f };
        var b = new Executor(PlanType.Load(on.Image, "on")) { LearningRate = 0.05f };
        // Stride 1 (dx over dy) and stride 2 (dy at the end of the larger dx) input gradients both run in place.
        var strides = on.Plan.Ops.Where(o => o.InPlace && o.Kind == nameof(OpKind.DepthwiseBackwardInput))
            .Select(o => b.Plan.Op(o.Index)).Select(op => b.Plan.Tensor(op.Output).H / b.Plan.Tensor(op.Input0).H).ToHashSet();
        Assert.Contains(1, strides);
        Assert.Contains(2, strides);
        a.Seed(3);
        b.Seed(3);
        for (int step = 0; step < 4; step++)
        {
            byte[] input = Input(a.Plan, 40 + step);
            a.SetInput(input, 0);
            b.SetInput(input, 0);
            Assert.Equal(BitConverter.SingleToInt32Bits(a.TrainStep(step)), BitConverter.SingleToInt32Bits(b.TrainStep(step)));
            Assert.Equal(a.Params, b.Params);
        }
        Assert.Equal(b.Plan.ArenaBytes, ArenaProbe.MeasureTrainStep(b.Plan, Input(b.Plan, 8), 0, 1));
    }

    [Theory]
    [InlineData("mbv2-w0.35", 64, "bias:12")]
    [InlineData("proxyless-w0.3", 64, "bias:20")]
    public void Bias_only_layers_update_before_their_input_gradient_runs_in_place_and_learn_the_same(string model, int resolution, string update)
    {
        (CompileResult off, CompileResult on) = CompileBoth(model, resolution, training: true, "off", update);
        Assert.Contains(on.Plan.Ops, o => o.InPlace && o.Kind == nameof(OpKind.DepthwiseBackwardInput));
        var a = new Executor(PlanType.Load(off.Image, "off")) { LearningRate = 0.05f };
        var b = new Executor(PlanType.Load(on.Image, "on")) { LearningRate = 0.05f };
        a.Seed(5);
        b.Seed(5);
        for (int step = 0; step < 3; step++)
        {
            byte[] input = Input(a.Plan, 60 + step);
            a.SetInput(input, 0);
            b.SetInput(input, 0);
            Assert.Equal(BitConverter.SingleToInt32Bits(a.TrainStep(step)), BitConverter.SingleToInt32Bits(b.TrainStep(step)));
            Assert.Equal(a.Params, b.Params);
        }
        Assert.True(on.Plan.ArenaBytes <= off.Plan.ArenaBytes);
        Assert.Equal(b.Plan.ArenaBytes, ArenaProbe.MeasureTrainStep(b.Plan, Input(b.Plan, 8), 0, 1));
    }

    [Fact]
    public void An_in_place_output_that_is_not_exactly_one_plane_below_its_input_is_refused()
    {
        (_, CompileResult on) = CompileBoth("mbv2-w0.35", 64, training: false);
        OpReport op = on.Plan.Ops.First(o => o.InPlace && o.Kind == nameof(OpKind.DepthwiseConv2D));
        byte[] image = (byte[])on.Image.Clone();
        int output = PlanType.Load(image, "good").Op(op.Index).Output;
        PlanImage.Put32(image, PlanImage.Tensor(image, output, PlanFormat.TensorArenaOffset), op.OutputOffset + 1);
        PlanImage.Seal(image);
        var e = Assert.Throws<PlanException>(() => PlanType.Load(image, "shifted.ttplan"));
        Assert.Contains("shifted.ttplan", e.Message);
        Assert.Contains("overlaps input 0", e.Message);
    }
}
