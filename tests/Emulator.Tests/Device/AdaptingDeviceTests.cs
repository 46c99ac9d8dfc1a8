using TinyTrain.Compiler.Boards;
using TinyTrain.Emulator.Device;
using TinyTrain.Emulator.Report;
using TinyTrain.Emulator.Streams;

namespace TinyTrain.Emulator.Tests.Device;

/// <summary>A test-time adaptation plan on the emulated board: it adapts without labels and reports its OOD rate.</summary>
public class AdaptingDeviceTests
{
    private static readonly Lazy<Runtime.Plans.Plan> Norm = new(() =>
        Runtime.Plans.Plan.Load(TestPlans.Compile("cnn-s", 28, "tta:norm", real: true).Image, "cnn-s-tta-norm.ttplan"));

    private static EmulationReport Run(float oodThreshold, string spec = "mnist-mini:clean*60, mnist-mini-c:fog*60")
    {
        var device = new EmulatedDevice(Norm.Value, BoardCatalog.Get("stm32f746-disco"), oodThreshold: oodThreshold);
        Assert.True(device.AdaptsWithoutLabels);
        return device.Run(new DataStream(StreamSpec.Parse(spec), 1, device.InputShape));
    }

    [Fact]
    public void Without_a_gate_every_sample_is_adapted_on_and_none_is_out_of_distribution()
    {
        EmulationReport report = Run(0f);
        Assert.Equal([60, 60], report.Segments.Select(s => s.Trained));
        Assert.All(report.Segments, s => Assert.Equal(0, s.OodRate));
    }

    [Fact]
    public void Samples_scored_out_of_distribution_are_counted_per_segment_and_not_adapted_on()
    {
        // cnn-s with random weights is never confident: with a threshold of 0.99 every sample is out of distribution.
        EmulationReport report = Run(0.99f);
        Assert.All(report.Segments, s => Assert.Equal(1.0, s.OodRate));
        Assert.Equal(0, report.Trained);
        Assert.Equal(1.0, report.ToJsonNode()["segments"]![0]!["ood_rate"]!.GetValue<double>());
    }
}
