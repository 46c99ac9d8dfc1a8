using Spectre.Console;
using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Onnx;
using TinyTrain.Compiler.Training;
using TinyTrain.Compiler.Zoo;

namespace TinyTrain.Cli.Commands;

/// <summary>`tinytrain pretrain`: float training of a zoo model on a data set, saved as ONNX.</summary>
internal static class PretrainCommand
{
    public static int Run(string[] args, CommandContext context)
    {
        var a = new Arguments(args, new HashSet<string> { "json" });
        string model = a.Required("model", "a zoo model, e.g. cnn-s");
        string data = a.Required("data", "a data set, e.g. fashion-mnist");
        int? epochs = a.Int("epochs", 1, 1000);
        int seed = a.Int("seed", 0) ?? 0;
        int? batch = a.Int("batch", 1, 4096);
        float? lr = a.Float("lr");
        int maxSamples = a.Int("max-samples", 1) ?? 0;
        int? resolution = a.Int("resolution", 8, 1024);
        string output = a.Option("output") ?? throw new UsageException("missing -o model.onnx (where to save the trained model)");
        bool json = a.Flag("json");
        a.EnsureAllUsed(0);
        if (lr is <= 0) throw new UsageException($"--lr must be positive, got {lr}");

        IAnsiConsole console = Consoles.ForMode(context, json);
        Dataset train = DataCatalog.Load(data, Split.Train);
        Dataset test = DataCatalog.Load(data, Split.Test);
        var graph = ModelZoo.Build(model, resolution, train.NumClasses, seed);
        var options = new TrainOptions
        {
            Epochs = epochs ?? TrainOptions.DefaultEpochs(maxSamples > 0 ? Math.Min(maxSamples, train.Count) : train.Count),
            Seed = seed,
            BatchSize = batch ?? 64,
            LearningRate = lr ?? 0.05f,
            MaxSamples = maxSamples,
        };
        console.MarkupLine($"pretraining [bold]{Markup.Escape(model)}[/] ({graph.ParameterCount():N0} parameters) on [bold]{Markup.Escape(data)}[/]: " +
                           $"{(maxSamples > 0 ? Math.Min(maxSamples, train.Count) : train.Count):N0} training / {test.Count:N0} test samples, {options.Epochs} epochs, seed {seed}");
        TrainResult result = Consoles.WithProgress(console, $"training {model}", progress =>
            Trainer.Train(graph, train, test, options, progress,
                e => console.MarkupLine($"  epoch {e.Epoch}/{e.Epochs}: loss {e.Loss:F4}, train accuracy {e.TrainAccuracy:P2}, test accuracy {e.TestAccuracy:P2}")));

        string? dir = Path.GetDirectoryName(Path.GetFullPath(output));
        if (dir is not null) Directory.CreateDirectory(dir);
        OnnxExporter.Export(graph, output);
        console.MarkupLine($"test accuracy [bold green]{result.TestAccuracy:P2}[/] after {result.Steps:N0} steps in {result.Elapsed.TotalSeconds:F1} s; saved {Markup.Escape(output)}");
        if (json)
        {
            Json.Write(context.Stdout, new
            {
                model,
                data,
                epochs = options.Epochs,
                seed,
                train_samples = maxSamples > 0 ? Math.Min(maxSamples, train.Count) : train.Count,
                test_samples = test.Count,
                test_accuracy = result.TestAccuracy,
                final_loss = result.FinalLoss,
                steps = result.Steps,
                seconds = Math.Round(result.Elapsed.TotalSeconds, 2),
                output = Path.GetFullPath(output),
                history = result.Epochs.Select(e => new { epoch = e.Epoch, loss = e.Loss, train_accuracy = e.TrainAccuracy, test_accuracy = e.TestAccuracy }),
            });
        }
        return 0;
    }
}
