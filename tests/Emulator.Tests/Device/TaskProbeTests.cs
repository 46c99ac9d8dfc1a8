using TinyTrain.Compiler.Boards;
using TinyTrain.Compiler.Data;
using TinyTrain.Emulator.Device;
using TinyTrain.Emulator.Report;
using TinyTrain.Emulator.Streams;

namespace TinyTrain.Emulator.Tests.Device;

/// <summary>Per-task accuracy over a class-incremental stream: held-out images, scored without changing what is learned.</summary>
public class TaskProbeTests
{
    private const string ClassIncremental = "mnist-mini[0-1]:clean*200, mnist-mini[2-3]:clean*200";

    private static EmulationReport Run(string spec, int heldOut, int window = 50)
    {
        var device = new EmulatedDevice(TestPlans.CnnS(), BoardCatalog.Get("stm32f746-disco"), learningRate: 0.01f, seed: 1);
        var stream = new DataStream(StreamSpec.Parse(spec), 1, device.InputShape);
        return device.Run(stream, null, window, heldOut);
    }

    private static readonly Lazy<EmulationReport> Probed = new(() => Run(ClassIncremental, 60));

    [Fact]
    public void Each_class_subset_is_a_task_scored_at_every_window_from_its_first_sample()
    {
        EmulationReport report = Probed.Value;
        Assert.Equal(["mnist-mini[0,1]", "mnist-mini[2,3]"], report.Tasks.Select(t => t.Name));
        Assert.Equal([0, 200], report.Tasks.Select(t => t.FirstSample));
        Assert.All(report.Tasks, t => Assert.Equal(60, t.HeldOut));
        Assert.All(report.Tasks, t => Assert.Equal(report.WindowedAccuracy.Count, t.Accuracy.Count));
        // Task 2 is not scored before its first sample; task 1 is scored at every window.
        Assert.All(report.Tasks[1].Accuracy.Take(4), v => Assert.Null(v));
        Assert.All(report.Tasks[1].Accuracy.Skip(4), v => Assert.InRange(v!.Value, 0.0, 1.0));
        Assert.All(report.Tasks[0].Accuracy, v => Assert.InRange(v!.Value, 0.0, 1.0));

        var json = report.ToJsonNode()["tasks"]!.AsArray();
        Assert.Equal(2, json.Count);
        Assert.Equal(200, (int)json[1]!["first_sample"]!);
        Assert.Null(json[1]!["windowed_accuracy"]![0]);
    }

    [Fact]
    public void Fine_tuning_on_the_second_task_shows_the_first_one_forgotten()
    {
        // Every parameter trained on labelled 2s and 3s: the held-out 0s and 1s are learned, then forgotten.
        TaskReport first = Probed.Value.Tasks[0], second = Probed.Value.Tasks[1];
        double afterFirst = first.Accuracy[3]!.Value;
        Assert.True(afterFirst > 0.9, $"task 1 after its segment: {afterFirst:P1}");
        Assert.True(second.Final > 0.8, $"task 2 at the end: {second.Final:P1}");
        Assert.True(first.Final < afterFirst - 0.3, $"task 1: {afterFirst:P1} -> {first.Final:P1}");
        Assert.Equal(first.Best - first.Final, first.Forgetting, 9);
    }

    [Fact]
    public void Probing_the_tasks_changes_nothing_the_device_learns()
    {
        EmulationReport probed = Probed.Value, plain = Run(ClassIncremental, 0);
        Assert.Empty(plain.Tasks);
        Assert.Equal(plain.Segments, probed.Segments);
        Assert.Equal(plain.WindowedAccuracy, probed.WindowedAccuracy);
        Assert.Equal(plain.SramHighWaterBytes, probed.SramHighWaterBytes);
    }

    [Fact]
    public void Held_out_images_come_from_the_split_the_stream_does_not_play()
    {
        var stream = new DataStream(StreamSpec.Parse(ClassIncremental), 1, new TinyTrain.Compiler.Graphs.Shape(1, 28, 28));
        var splits = new List<Split>();
        TaskProbe probe = TaskProbe.For(stream, 30, (name, split) =>
        {
            splits.Add(split);
            return DataCatalog.Load(name, split);
        })!;
        Assert.Equal([Split.Train, Split.Train], splits);
        Assert.Equal(2, probe.Count);
        Assert.Equal(30, probe.HeldOut(0));
    }

    [Theory]
    [InlineData("mnist-mini:clean*100, mnist-mini-c:fog*100")]
    [InlineData("mnist-mini[0-1]:clean*50, mnist-mini-c[0-1]:fog*50")]
    public void A_stream_with_fewer_than_two_class_subsets_has_no_tasks(string spec)
    {
        var stream = new DataStream(StreamSpec.Parse(spec), 1, new TinyTrain.Compiler.Graphs.Shape(1, 28, 28));
        Assert.Null(TaskProbe.For(stream));
    }
}
