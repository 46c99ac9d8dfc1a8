using System.Text.Json.Nodes;
using TinyTrain.Compiler.Boards;
using TinyTrain.Compiler.Data;
using TinyTrain.Emulator.Device;
using TinyTrain.Emulator.Report;
using TinyTrain.Emulator.Streams;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

namespace TinyTrain.Emulator.Tests.Device;

public class EmulatedDeviceTests
{
    private const string Stream = "mnist-mini:clean*150, mnist-mini-c:fog*150";

    // Training steps of the reference runtime take milliseconds each: the tests that only read a report share one run.
    private static readonly Lazy<EmulationReport> MainRun = new(() => RunStream(seed: 1));

    private static EmulationReport RunStream(int seed, string spec = Stream)
    {
        var device = new EmulatedDevice(TestPlans.CnnS(), BoardCatalog.Get("stm32f746-disco"), learningRate: 0.01f, seed: (uint)seed);
        var stream = new DataStream(StreamSpec.Parse(spec), (ulong)seed, device.InputShape);
        return device.Run(stream);
    }

    [Fact]
    public void A_stream_run_accounts_for_every_sample_and_measures_the_whole_arena()
    {
        PlanImage plan = TestPlans.CnnS();
        EmulationReport report = MainRun.Value;

        Assert.Equal(["mnist-mini:clean", "mnist-mini-c:fog"], report.Segments.Select(s => s.Name));
        Assert.Equal([150, 150], report.Segments.Select(s => s.Samples));
        Assert.Equal([0, 150], report.Segments.Select(s => s.Start));
        Assert.Equal(300, report.Samples);
        Assert.All(report.Segments, s => Assert.InRange(s.Accuracy, 0.0, 1.0));
        // Every sample of this stream is labelled and the plan trains: one step per sample, none skipped.
        Assert.Equal([150, 150], report.Segments.Select(s => s.Trained));
        Assert.Equal(0, report.Skipped);
        Assert.Equal(3, report.WindowedAccuracy.Count);
        Assert.All(report.WindowedAccuracy, v => Assert.InRange(v!.Value, 0.0, 1.0));
        Assert.Equal(300, report.RollingAccuracy.Count);

        // The planner's peak is a promise: the runtime touches exactly the arena it was given.
        Assert.Equal(plan.ArenaBytes, report.ArenaBytes);
        Assert.Equal(plan.ArenaBytes, report.SramHighWaterBytes);
        BoardProfile board = BoardCatalog.Get("stm32f746-disco");
        Assert.Equal(board.SramBytes, report.SramBytes);
        Assert.Equal(plan.ArenaBytes + plan.SramParamBytes + plan.StateBytes + board.ReservedSramBytes, report.SramUsedBytes);
        Assert.Equal(plan.Image.Length + board.ReservedFlashBytes, report.FlashBytes);
        Assert.True(report.StepsPerSecond > 0);
        Assert.True(report.EstimatedMsPerInference > 0);
        Assert.True(report.EstimatedMsPerStep > report.EstimatedMsPerInference);
    }

    [Fact]
    public void A_device_that_predicts_then_learns_gets_better_over_the_stream()
    {
        // Prequential: each sample is scored before the device learns from it, so rising accuracy is learning.
        var device = new EmulatedDevice(TestPlans.CnnS(), BoardCatalog.Get("stm32f746-disco"), 0.01f, 1);
        var stream = new DataStream(StreamSpec.Parse("mnist-mini:clean*800"), 3, device.InputShape, Split.Train);
        EmulationReport report = device.Run(stream, null, 200);
        double first = report.WindowedAccuracy[0]!.Value, last = report.WindowedAccuracy[^1]!.Value;
        // Before the device scored and learned with one forward pass, it learned from a clobbered input and stayed near 10 %.
        Assert.True(last >= first + 0.15 && last > 0.5, $"windowed accuracy {first:P1} -> {last:P1}");
    }

    [Fact]
    public void The_same_seed_gives_the_same_report_apart_from_timing()
    {
        static string WithoutTiming(EmulationReport r)
        {
            JsonObject json = r.ToJsonNode();
            Assert.True(json.Remove("steps_per_second"));
            return json.ToJsonString();
        }

        const string shortStream = "mnist-mini:clean*60, mnist-mini-c:fog*60";
        string first = WithoutTiming(RunStream(7, shortStream)), second = WithoutTiming(RunStream(7, shortStream));
        Assert.Equal(first, second);
        Assert.NotEqual(first, WithoutTiming(RunStream(8, shortStream)));
    }

    [Fact]
    public void The_json_has_the_documented_shape()
    {
        JsonObject json = JsonNode.Parse(MainRun.Value.ToJson())!.AsObject();
        foreach (string key in new[] { "board", "plan", "segments", "sram_high_water_bytes", "sram_bytes", "arena_bytes", "flash_bytes",
                     "steps_per_second", "estimated_ms_per_step", "windowed_accuracy" })
            Assert.True(json.ContainsKey(key), $"missing '{key}'");
        Assert.Equal("stm32f746-disco", (string?)json["board"]);
        JsonObject segment = json["segments"]![0]!.AsObject();
        Assert.Equal(["name", "samples", "accuracy", "trained", "skipped", "ood_rate"], segment.Select(p => p.Key));
        Assert.Equal("mnist-mini:clean", (string?)segment["name"]);
        Assert.Equal(150, (int)segment["samples"]!);
        Assert.Equal(3, json["windowed_accuracy"]!.AsArray().Count);
    }

    [Fact]
    public void A_non_finite_sample_is_skipped_and_counted_not_learned()
    {
        var device = new EmulatedDevice(TestPlans.CnnS(), BoardCatalog.Get("stm32f746-disco"));
        float[] good = new float[device.InputShape.Size], bad = new float[device.InputShape.Size];
        for (int i = 0; i < good.Length; i++) good[i] = (i % 7) / 7f;
        bad[100] = float.NaN;
        float[] infinite = (float[])good.Clone();
        infinite[5] = float.PositiveInfinity;

        device.Begin(["clean", "broken"], capacity: 4);
        Assert.NotEqual(SampleOutcome.Skipped, device.Feed(0, good, 0, label: 3, labelled: true));
        byte[] before = (byte[])device.Executor.Arena.Clone();
        byte[] paramsBefore = (byte[])device.Executor.Params.Clone();
        Assert.Equal(SampleOutcome.Skipped, device.Feed(1, bad, 0, label: 3, labelled: true));
        Assert.Equal(SampleOutcome.Skipped, device.Feed(1, infinite, 0, label: 4, labelled: true));
        Assert.Equal(before, device.Executor.Arena);
        Assert.Equal(paramsBefore, device.Executor.Params);
        Assert.NotEqual(SampleOutcome.Skipped, device.Feed(1, good, 0, label: 3, labelled: false));
        EmulationReport report = device.Finish(window: 2);

        SegmentReport broken = report.Segments[1];
        Assert.Equal(3, broken.Samples);
        Assert.Equal(2, broken.Skipped);
        Assert.Equal(0, broken.Trained);        // the skipped ones are never learned from; the last was unlabelled
        Assert.Equal(1, report.Segments[0].Trained);
        Assert.Equal(2, report.Skipped);
        // Samples 1 and 2 were both skipped: the trailing window of two at sample 2 has nothing to score.
        Assert.True(double.IsNaN(report.RollingAccuracy[2]));
        Assert.NotNull(report.WindowedAccuracy[1]);
    }

    [Fact]
    public void A_plan_too_big_for_the_board_is_refused_with_a_breakdown_that_adds_up()
    {
        var compiled = TestPlans.Compile("mcunet-5fps", 224, "none");
        var plan = PlanImage.Load(compiled.Image, "mcunet-5fps-224.ttplan");
        BoardProfile board = BoardCatalog.Get("nrf52840");

        var e = Assert.Throws<TinyTrainException>(() => new EmulatedDevice(plan, board));

        FitReport fit = MemoryFit.Check(EmulatedDevice.Requirement(plan), board);
        Assert.False(fit.Sram.Fits);
        Assert.Equal(plan.ArenaBytes + plan.SramParamBytes + plan.StateBytes + board.ReservedSramBytes, fit.Sram.TotalBytes);
        Assert.Equal(fit.Sram.TotalBytes - board.SramBytes, fit.Sram.OverBytes);
        Assert.Equal(plan.Image.Length + board.ReservedFlashBytes, fit.Flash.TotalBytes);
        Assert.DoesNotContain('\n', e.Message);
        Assert.StartsWith("mcunet-5fps-224.ttplan does not fit nrf52840: ", e.Message);
        Assert.Contains($"plan needs {ByteSize.Format(fit.Sram.TotalBytes)} SRAM", e.Message);
        Assert.Contains($"(arena {ByteSize.Format(plan.ArenaBytes)} + params {ByteSize.Format(plan.SramParamBytes)} + state {ByteSize.Format(plan.StateBytes)} " +
                        $"+ reserve {ByteSize.Format(board.ReservedSramBytes)})", e.Message);
        Assert.Contains($"but nrf52840 has {ByteSize.Format(board.SramBytes)}: over by {ByteSize.Format(fit.Sram.OverBytes)}", e.Message);
        Assert.EndsWith("the arena is the largest part: recompile at a lower --resolution, or train fewer layers (a smaller --update)", e.Message);
    }

    [Fact]
    public void An_inference_plan_predicts_but_never_trains()
    {
        var plan = PlanImage.Load(TestPlans.Compile("cnn-s", 28, "none").Image, "cnn-s.ttplan");
        var device = new EmulatedDevice(plan, BoardCatalog.Get("nrf52840"));
        EmulationReport report = device.Run(new DataStream(StreamSpec.Parse("mnist-mini:clean*50"), 0, device.InputShape));
        Assert.False(device.CanTrain);
        Assert.Equal(50, report.Samples);
        Assert.Equal(0, report.Trained);
        Assert.Null(report.EstimatedMsPerStep);
        Assert.Null(report.ToJsonNode()["estimated_ms_per_step"]);
        Assert.Equal(plan.ArenaBytes, report.SramHighWaterBytes);
    }

    [Fact]
    public void Feeding_a_sample_allocates_nothing()
    {
        var device = new EmulatedDevice(TestPlans.CnnS(), BoardCatalog.Get("stm32f746-disco"));
        float[] input = new float[device.InputShape.Size];
        for (int i = 0; i < input.Length; i++) input[i] = (i % 13) / 13f;
        device.Begin(["only"], capacity: 40);
        for (int i = 0; i < 20; i++) device.Feed(0, input, 0, i % 10, labelled: i % 2 == 0);   // warm up both paths
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 20; i++) device.Feed(0, input, 0, i % 10, labelled: true);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void Windowed_accuracy_is_over_consecutive_windows()
    {
        var device = new EmulatedDevice(TestPlans.CnnS(), BoardCatalog.Get("stm32f746-disco"));
        float[] input = new float[device.InputShape.Size];
        device.Begin(["only"], capacity: 5);
        // Learning is off (unlabelled), so the same input always gives the same prediction.
        device.Feed(0, input, 0, 0, labelled: false);
        device.Executor.Invoke();
        int predicted = device.Executor.ArgMax(), other = (predicted + 1) % 10;
        int[] labels = [predicted, other, predicted, predicted];
        foreach (int label in labels) device.Feed(0, input, 0, label, labelled: false);
        EmulationReport report = device.Finish(window: 2);
        // samples: [?, predicted, other, predicted, predicted] -> windows [0,2), [2,4), [4,5)
        Assert.Equal(3, report.WindowedAccuracy.Count);
        Assert.Equal(0.5, report.WindowedAccuracy[1]);
        Assert.Equal(1.0, report.WindowedAccuracy[2]);
        Assert.Equal(0.5, report.RollingAccuracy[3]);
        Assert.Equal(1.0, report.RollingAccuracy[4]);
    }

    [Fact]
    public void The_plot_is_a_png_of_some_size()
    {
        EmulationReport report = MainRun.Value;
        string path = Path.Combine(Path.GetTempPath(), $"tinytrain-emulate-{Guid.NewGuid():N}", "accuracy.png");
        try
        {
            report.WritePlot(path);
            byte[] png = File.ReadAllBytes(path);
            Assert.True(png.Length > 10_000, $"the plot is only {png.Length} bytes");
            Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png[..4]);
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(path)!, recursive: true);
        }
    }
}
