using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Learning;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Compiler.Training;
using TinyTrain.Compiler.Zoo;

namespace TinyTrain.Nano.Tests;

/// <summary>
/// Real training plans for the comparison, compiled once per test run from the bundled mini data sets:
/// cnn-s briefly pretrained on fashion-mnist-mini, and mbv2-w0.35 (depthwise convs, residual adds, global
/// pooling) calibrated on mnist-mini, each with a sparse update scheme and with a bias-only one.
/// </summary>
internal static class NanoPlans
{
    public static readonly Dataset Fashion = DataCatalog.Load("fashion-mnist-mini", Split.Train);
    public static readonly Dataset Digits = DataCatalog.Load("mnist-mini", Split.Train);

    private static readonly Lazy<TinyTrain.Compiler.Graphs.Graph> CnnS = new(() =>
    {
        TinyTrain.Compiler.Graphs.Graph g = ModelZoo.Build("cnn-s", 28, 10, seed: 0);
        Trainer.Train(g, Fashion, Fashion, new TrainOptions { Epochs = 1, BatchSize = 32, Seed = 0, MaxSamples = 512 });
        return g;
    });

    private static readonly Dictionary<string, Lazy<byte[]>> Cache = new()
    {
        // conv2 (a quarter of its input channels) and conv3 (half), biases of the last two convs, and the classifier.
        ["cnn-s sparse"] = new(() => Compile(CnnS.Value, Fashion, new SparseScheme(2, [1, 2], [0.25, 0.5]), momentum: false)),
        ["cnn-s bias:2+momentum"] = new(() => Compile(CnnS.Value, Fashion, "bias:2", momentum: true)),
        ["mbv2-w0.35 sparse+momentum"] = new(() => Compile(ModelZoo.Build("mbv2-w0.35", 32, 10, seed: 1), Digits, new SparseScheme(4, [10, 12], [0.5, 1.0]), momentum: true)),
        ["mbv2-w0.35 bias:6"] = new(() => Compile(ModelZoo.Build("mbv2-w0.35", 32, 10, seed: 1), Digits, "bias:6", momentum: false)),
        ["cnn-s inference"] = new(() => Compile(CnnS.Value, Fashion, "none", momentum: false)),
    };

    public static Dataset DataFor(string name) => name.StartsWith("cnn-s", StringComparison.Ordinal) ? Fashion : Digits;

    /// <summary>A fresh copy of the plan image named <paramref name="name"/>.</summary>
    public static byte[] Image(string name)
    {
        Lazy<byte[]> lazy;
        lock (Cache) lazy = Cache[name];
        return (byte[])lazy.Value.Clone();
    }

    private static byte[] Compile(TinyTrain.Compiler.Graphs.Graph graph, Dataset calibration, object update, bool momentum)
    {
        var options = new CompileOptions { Training = new TrainingOptions { Momentum = momentum } };
        options = update is SparseScheme scheme
            ? options with { Trainable = m => TrainableSet.FromScheme(scheme, m) }
            : options with { Update = (string)update };
        lock (graph)
            return PlanCompiler.Compile(graph, CalibrationSet.FromData(calibration, graph.InputShape, 64), options).Image;
    }
}
