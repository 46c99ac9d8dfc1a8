namespace TinyTrain.Boards.Tests;

using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Data.Imu;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Compiler.Training;
using TinyTrain.Compiler.Zoo;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

/// <summary>imu-cnn trained briefly on imu-gestures (float, 4 epochs, seed 0) and compiled with bias:2: the plan a board ships.</summary>
internal static class ImuPlan
{
    private static readonly Lazy<(byte[] Image, byte[] Tta, float FloatAccuracy)> Trained = new(() =>
    {
        Dataset train = ImuGestures.Load(Split.Train), test = ImuGestures.Load(Split.Test);
        var graph = ModelZoo.Build("imu-cnn", classes: train.NumClasses, seed: 0);
        TrainResult result = Trainer.Train(graph, train, test, new TrainOptions { Epochs = 4, Seed = 0 }, null, null);
        var calib = CalibrationSet.FromData(train, graph.InputShape, 256);
        CompileResult compiled = PlanCompiler.Compile(graph, calib, new CompileOptions { Update = "bias:2" });
        CompileResult tta = PlanCompiler.Compile(graph, calib, new CompileOptions { Update = "tta:norm" });
        return (compiled.Image, tta.Image, result.TestAccuracy);
    });

    public static float FloatAccuracy => Trained.Value.FloatAccuracy;

    public static PlanImage Load() => PlanImage.Load(Trained.Value.Image, "imu.ttplan");

    public static PlanImage LoadTta() => PlanImage.Load(Trained.Value.Tta, "imu-tta.ttplan");

    /// <summary>Writes the plan to a file in <paramref name="directory"/> and returns its path.</summary>
    public static string Write(string directory)
    {
        string path = Path.Combine(directory, "imu.ttplan");
        File.WriteAllBytes(path, Trained.Value.Image);
        return path;
    }

    /// <summary>The same model compiled with tta:norm (label-free test-time adaptation), written to <paramref name="directory"/>.</summary>
    public static string WriteTta(string directory)
    {
        string path = Path.Combine(directory, "imu-tta.ttplan");
        File.WriteAllBytes(path, Trained.Value.Tta);
        return path;
    }
}

/// <summary>A fresh directory under the temp folder, removed on Dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory() => Path = Directory.CreateTempSubdirectory("tinytrain-boards-").FullName;

    public string Path { get; }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}
