using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Training;
using TinyTrain.Compiler.Zoo;

namespace TinyTrain.Bench;

/// <summary>
/// `pretrain`: float training of cnn-s on the full Fashion-MNIST and MNIST splits (fetched with
/// `tinytrain data fetch`), with the CLI's default options; reports test accuracy and wall time.
/// </summary>
internal static class PretrainBench
{
    public static object Run(BenchArgs args)
    {
        int epochsOverride = args.Int("epochs", 0);
        int seed = args.Int("seed", 0);
        string[] sets = args.Text("data", "fashion-mnist,mnist").Split(',');
        var rows = new List<object>();
        foreach (string data in sets)
        {
            Dataset train = DataCatalog.Load(data, Split.Train), test = DataCatalog.Load(data, Split.Test);
            int epochs = epochsOverride > 0 ? epochsOverride : TrainOptions.DefaultEpochs(train.Count);
            var graph = ModelZoo.Build("cnn-s", classes: train.NumClasses, seed: seed);
            var options = new TrainOptions { Epochs = epochs, Seed = seed };
            TrainResult r = Trainer.Train(graph, train, test, options, onEpoch: e =>
                args.Log($"{data} epoch {e.Epoch}/{e.Epochs}: loss {e.Loss:F4} train {e.TrainAccuracy:P2} test {e.TestAccuracy:P2}"));
            args.Log($"{data}: cnn-s test accuracy {r.TestAccuracy:P2} in {r.Elapsed.TotalSeconds:F1} s ({train.Count} train samples x {epochs} epochs, {Environment.ProcessorCount} cores)");
            rows.Add(new
            {
                data,
                model = "cnn-s",
                epochs,
                seed,
                train_samples = train.Count,
                test_samples = test.Count,
                test_accuracy = r.TestAccuracy,
                seconds = Math.Round(r.Elapsed.TotalSeconds, 1),
                cores = Environment.ProcessorCount,
            });
        }
        return new { benchmark = "pretrain", results = rows };
    }
}
