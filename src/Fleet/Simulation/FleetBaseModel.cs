namespace TinyTrain.Fleet.Simulation;

using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Compiler.Training;
using TinyTrain.Compiler.Zoo;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

/// <summary>
/// The model a simulated fleet ships: cnn-s trained in float on clean bundled digits (mnist-mini), compiled to an int8
/// plan whose trainable set is the biases of the last convs plus the classifier. Cached in the temp folder by its recipe.
/// </summary>
public static class FleetBaseModel
{
    public const string Data = "mnist-mini";

    public static PlanImage Build(string update = "bias:2", int epochs = 6, int seed = 0, Action<string>? log = null)
    {
        string directory = Path.Combine(Path.GetTempPath(), "tinytrain-fleet");
        Directory.CreateDirectory(directory);
        string path = Path.Combine(directory, $"cnn-s.{Data}.e{epochs}.s{seed}.{update.Replace(':', '-')}.ttplan");
        if (File.Exists(path))
        {
            try
            {
                return PlanImage.Load(File.ReadAllBytes(path), path);
            }
            catch (TinyTrainException)
            {
                // A damaged cache is rebuilt below.
            }
        }
        Dataset train = DataCatalog.Load(Data, Split.Train), test = DataCatalog.Load(Data, Split.Test);
        log?.Invoke($"pretraining cnn-s on clean {Data} ({train.Count} images, {epochs} epochs, seed {seed}); cached in {path}");
        var graph = ModelZoo.Build("cnn-s", classes: train.NumClasses, seed: seed);
        Trainer.Train(graph, train, test, new TrainOptions { Epochs = epochs, Seed = seed, BatchSize = 32, LearningRate = 0.05f });
        CompileResult compiled = PlanCompiler.Compile(graph, CalibrationSet.FromData(train, graph.InputShape, 512), new CompileOptions { Update = update });
        string temporary = path + $".{Environment.ProcessId}.tmp";
        File.WriteAllBytes(temporary, compiled.Image);
        File.Move(temporary, path, overwrite: true);
        return PlanImage.Load(compiled.Image, path);
    }
}
