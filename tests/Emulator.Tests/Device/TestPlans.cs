// Plans the device and cost-model tests share, compiled once per test run.
using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Compiler.Zoo;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

namespace TinyTrain.Emulator.Tests.Device;

internal static class TestPlans
{
    private static readonly Lazy<CompileResult> CnnSFull = new(() => Compile("cnn-s", 28, "full", real: true));

    /// <summary>cnn-s (random weights, seed 0), calibrated on 64 mnist-mini images, every parameter trainable.</summary>
    public static CompileResult CnnSTraining => CnnSFull.Value;

    public static PlanImage CnnS() => PlanImage.Load(CnnSTraining.Image, "cnn-s-full.ttplan");

    public static CompileResult Compile(string model, int resolution, string update, bool real = false)
    {
        var graph = ModelZoo.Build(model, resolution, 10, seed: 0);
        CalibrationSet calibration = real
            ? CalibrationSet.FromData(DataCatalog.Load("mnist-mini", Split.Train), graph.InputShape, 64)
            : CalibrationSet.Random(graph.InputShape, 4, 0);
        return PlanCompiler.Compile(graph, calibration, new CompileOptions { Update = update });
    }
}
