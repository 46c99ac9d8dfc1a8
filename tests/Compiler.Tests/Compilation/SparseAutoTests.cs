using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Learning;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Compiler.Tests.Learning;
using TinyTrain.Compiler.Zoo;
using TinyTrain.Runtime.Execution;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

namespace TinyTrain.Compiler.Tests.Compilation;

/// <summary>`--update sparse:auto --budget B`: the chosen scheme fits, the runtime uses what it promises, and a budget nothing meets is refused with the smallest that would.</summary>
public class SparseAutoTests : IClassFixture<TrainedCnnFixture>
{
    private static readonly CompileOptions Options = new() { Training = new TrainingOptions { Qas = true } };
    private readonly TrainedCnnFixture _cnn;

    public SparseAutoTests(TrainedCnnFixture cnn) => _cnn = cnn;

    [Theory]
    [InlineData(24 * 1024)]
    [InlineData(40 * 1024)]
    public void The_chosen_scheme_fits_the_budget_and_the_runtime_uses_exactly_the_planned_arena(long budget)
    {
        var graph = ModelZoo.Build("mbv2-w0.35", 32, 10, seed: 1);
        var calibration = CalibrationSet.Random(graph.InputShape, 4, 2);
        Quantized q = PlanCompiler.Quantize(graph, calibration, Options, training: true);
        AutoScheme auto = SparseAuto.Search(q, Options, calibration, budget, scoreSamples: 4);

        Assert.InRange(auto.SramBytes, auto.SmallestBytes, budget);
        Assert.NotEmpty(auto.Steps);   // the budget leaves room beyond the classifier, so something was added
        CompileResult r = PlanCompiler.Emit(q, TrainableSet.FromScheme(auto.Scheme, q.Model, "auto"), Options);
        Assert.Equal(auto.SramBytes, r.Plan.SramBytes);
        var plan = PlanImage.Load(r.Image, "auto");
        byte[] input = new byte[graph.InputShape.Size];
        new Random(4).NextBytes(input);
        Assert.Equal(plan.ArenaBytes, ArenaProbe.MeasureTrainStep(plan, input, 0, 3));
    }

    [Fact]
    public void With_a_streamed_input_the_search_needs_less_and_the_runtime_uses_what_it_planned()
    {
        var graph = ModelZoo.Build("mbv2-w0.35", 64, 10, seed: 1);
        var calibration = CalibrationSet.Random(graph.InputShape, 4, 2);
        CompileOptions whole = Options with { Patch = "auto", InPlaceDepthwise = true, ChannelBackward = true, InPlacePointwise = true, TrainedSlices = true };
        CompileOptions streamed = whole with { StreamInput = true };
        Quantized q = PlanCompiler.Quantize(graph, calibration, whole, training: true);
        AutoScheme plain = SparseAuto.Search(q, whole, calibration, 48 * 1024, scoreSamples: 4);
        AutoScheme auto = SparseAuto.Search(q, streamed, calibration, 48 * 1024, scoreSamples: 4);

        // The frame leaves the arena: the smallest scheme needs less. (The greedy search is not monotone in the bytes it is
        // given, so the score it keeps is not asserted to grow.)
        Assert.True(auto.SmallestBytes < plain.SmallestBytes, $"streamed smallest {auto.SmallestBytes} vs {plain.SmallestBytes}");
        Assert.InRange(auto.SramBytes, auto.SmallestBytes, 48 * 1024);
        CompileResult r = SparseAuto.Emit(q, auto.Scheme, streamed);
        Assert.Equal(auto.SramBytes, r.Plan.SramBytes);
        var plan = PlanImage.Load(r.Image, "auto");
        Assert.True(plan.Tensor(plan.InputTensor).Streamed);
        byte[] input = new byte[graph.InputShape.Size];
        new Random(4).NextBytes(input);
        Assert.Equal(plan.ArenaBytes, ArenaProbe.MeasureTrainStep(plan, input, 0, 3));
    }

    [Fact]
    public void A_budget_that_fits_everything_trains_every_parameter_with_a_gradient()
    {
        var calibration = CalibrationSet.FromData(_cnn.Train, _cnn.Graph.InputShape, 64);
        Quantized q = PlanCompiler.Quantize(_cnn.Graph, calibration, Options, training: true);
        long full = PlanCompiler.Emit(q, TrainableSet.Parse("full", q.Model), Options).Plan.SramBytes;

        AutoScheme auto = SparseAuto.Search(q, Options, calibration, full, scoreSamples: 32);

        Assert.Equal(1.0, auto.ScoreShare, 6);
        Assert.Equal(TrainableSet.ConvOps(q.Model).Count, auto.Scheme.NBiasUpdate);
        Assert.All(auto.Scheme.WeightUpdateRatio, r => Assert.Equal(1.0, r));
    }

    [Fact]
    public void A_tighter_budget_keeps_part_of_the_gradient_score_within_the_budget()
    {
        var calibration = CalibrationSet.FromData(_cnn.Train, _cnn.Graph.InputShape, 64);
        Quantized q = PlanCompiler.Quantize(_cnn.Graph, calibration, Options, training: true);
        long smallest = PlanCompiler.Emit(q, TrainableSet.Parse("bias:0", q.Model), Options).Plan.SramBytes;
        long full = PlanCompiler.Emit(q, TrainableSet.Parse("full", q.Model), Options).Plan.SramBytes;
        long budget = smallest + (full - smallest) / 3;

        AutoScheme auto = SparseAuto.Search(q, Options, calibration, budget, scoreSamples: 32);

        Assert.InRange(auto.SramBytes, smallest, budget);
        Assert.InRange(auto.ScoreShare, 0.0 + 1e-9, 1.0 - 1e-9);
    }

    [Fact]
    public void A_budget_no_scheme_meets_is_refused_with_the_smallest_that_would()
    {
        var graph = ModelZoo.Build("mbv2-w0.35", 32, 10, seed: 1);
        var calibration = CalibrationSet.Random(graph.InputShape, 4, 2);
        Quantized q = PlanCompiler.Quantize(graph, calibration, Options, training: true);
        long smallest = PlanCompiler.Emit(q, TrainableSet.Parse("bias:0", q.Model), Options).Plan.SramBytes;

        var e = Assert.Throws<TinyTrainException>(() => SparseAuto.Search(q, Options, calibration, smallest - 1));

        Assert.Contains($"needs {smallest:N0} B", e.Message);
        Assert.Contains("give a budget of at least", e.Message);
    }
}
