using TinyTrain.Compiler.Boards;
using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Compiler.Zoo;
using TinyTrain.Emulator.Device;
using TinyTrain.Emulator.Report;
using TinyTrain.Emulator.Streams;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

namespace TinyTrain.Emulator.Tests.Device;

public class ImuDeviceTests
{
    [Fact]
    public void ImuPlan_RunsAnImuStream_UnderAnMcuBoardsLimits()
    {
        // imu-cnn with its initial weights, calibrated on imu-gestures, biases of the last two convs and the classifier trainable.
        var graph = ModelZoo.Build("imu-cnn", classes: 6, seed: 0);
        CompileResult compiled = PlanCompiler.Compile(graph,
            CalibrationSet.FromData(DataCatalog.Load("imu-gestures", Split.Train), graph.InputShape, 64), new CompileOptions { Update = "bias:2" });
        PlanImage plan = PlanImage.Load(compiled.Image, "imu.ttplan");
        var device = new EmulatedDevice(plan, BoardCatalog.Get("nrf52840"), learningRate: 0.02f, seed: 1);
        var stream = new DataStream(StreamSpec.Parse("imu-gestures:clean*40, imu-gestures:rotation@1*40/every:2"), 1, device.InputShape);

        EmulationReport report = device.Run(stream);

        Assert.Equal(["imu-gestures:clean", "imu-gestures:rotation"], report.Segments.Select(s => s.Name));
        Assert.Equal([40, 40], report.Segments.Select(s => s.Samples));
        Assert.Equal([40, 20], report.Segments.Select(s => s.Trained));
        Assert.Equal(plan.ArenaBytes, report.SramHighWaterBytes);
        Assert.True(report.Fit.Fits);
    }
}
