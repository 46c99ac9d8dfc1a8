using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Planning;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Compiler.Zoo;
using TinyTrain.Runtime.Execution;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

namespace TinyTrain.Compiler.Tests.Compilation;

/// <summary>The planner's peak is a promise: the runtime's measured high-water mark equals it.</summary>
public class ArenaTests
{
    [Theory]
    [InlineData("cnn-s", 28)]
    [InlineData("mbv2-w0.35", 48)]
    [InlineData("proxyless-w0.3", 40)]
    [InlineData("mcunet-5fps", 64)]
    public void Measured_high_water_mark_equals_the_planned_peak(string model, int resolution)
    {
        var graph = ModelZoo.Build(model, resolution, 10, seed: 1);
        CompileResult result = PlanCompiler.Compile(graph, CalibrationSet.Random(graph.InputShape, 8, seed: 2), new CompileOptions());
        var plan = PlanImage.Load(result.Image, model);
        var random = new Random(3);
        byte[] input = new byte[graph.InputShape.Size];
        random.NextBytes(input);
        int measured = ArenaProbe.MeasureInference(plan, input, 0);
        Assert.Equal(plan.ArenaBytes, measured);
        Assert.Equal(result.Plan.Memory.PeakBytes, plan.ArenaBytes);
        // The greedy planner must never be worse than laying buffers out one after another.
        Assert.True(result.Plan.Memory.PeakBytes <= result.Plan.NaiveMemory.PeakBytes);
    }

    [Fact]
    public void Naive_planner_mode_gives_a_bigger_arena_that_still_matches_the_runtime()
    {
        var graph = ModelZoo.Build("mbv2-w0.35", 48, 10, seed: 1);
        var calibration = CalibrationSet.Random(graph.InputShape, 4, seed: 2);
        CompileResult greedy = PlanCompiler.Compile(graph, calibration, new CompileOptions());
        CompileResult naive = PlanCompiler.Compile(graph, calibration, new CompileOptions { Planner = PlannerMode.Naive });
        Assert.True(naive.Plan.ArenaBytes > 2 * greedy.Plan.ArenaBytes, $"naive {naive.Plan.ArenaBytes} vs greedy {greedy.Plan.ArenaBytes}");
        byte[] input = new byte[graph.InputShape.Size];
        var plan = PlanImage.Load(naive.Image, "naive");
        Assert.Equal(plan.ArenaBytes, ArenaProbe.MeasureInference(plan, input, 0));
    }

    [Fact]
    public void Residual_add_runs_in_place_when_its_first_input_dies_there()
    {
        var graph = ModelZoo.Build("mbv2-w0.35", 48, 10, seed: 1);
        CompileResult result = PlanCompiler.Compile(graph, CalibrationSet.Random(graph.InputShape, 4, seed: 2), new CompileOptions());
        Assert.Contains(result.Plan.Ops, o => o.Kind == "Add" && o.InPlace);
    }
}
