using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Graphs;
using TinyTrain.Compiler.Learning;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Compiler.Training;
using TinyTrain.Compiler.Zoo;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

namespace TinyTrain.Nano.Tests;

/// <summary>
/// Real training plans for the comparison, compiled once per test run from the bundled mini data sets:
/// cnn-s briefly pretrained on fashion-mnist-mini, and mbv2-w0.35 (depthwise convs, residual adds, global
/// pooling) calibrated on mnist-mini, each with a sparse update scheme and with a bias-only one; and a tiny
/// net whose full training plan holds every op kind the executor runs (random inputs: it has no data set).
/// </summary>
internal static class NanoPlans
{
    public static readonly Dataset Fashion = DataCatalog.Load("fashion-mnist-mini", Split.Train);
    public static readonly Dataset Digits = DataCatalog.Load("mnist-mini", Split.Train);

    private static readonly Lazy<Graph> CnnS = new(() =>
    {
        Graph g = ModelZoo.Build("cnn-s", 28, 10, seed: 0);
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
        ["mbv2-w0.35 bias:6 in-place"] = new(() => Compile(ModelZoo.Build("mbv2-w0.35", 32, 10, seed: 1), Digits, "bias:6", momentum: false, inPlaceDepthwise: true)),
        ["cnn-s inference"] = new(() => Compile(CnnS.Value, Fashion, "none", momentum: false)),
        // Test-time adaptation: running statistics only, and entropy minimization on every scale/shift.
        ["cnn-s tta:norm"] = new(() => Compile(CnnS.Value, Fashion, "tta:norm", momentum: false)),
        ["cnn-s tta:tent"] = new(() => Compile(CnnS.Value, Fashion, "tta:tent", momentum: false)),
        ["cnn-s tta:eco:2"] = new(() => Compile(CnnS.Value, Fashion, "tta:eco:2", momentum: false)),
        ["mbv2-w0.35 tta:tent:2"] = new(() => Compile(ModelZoo.Build("mbv2-w0.35", 32, 10, seed: 1), Digits, "tta:tent:2", momentum: false)),
        ["every-op full+momentum"] = new(() => Compile(EveryOpGraph(), null, "full", momentum: true)),
        // The memory options the CLI turns on by default: patch stages, channel-by-channel backward, in-place depthwise
        // and 1x1 convs, on the largest shipped schemes (data/reference/tte-models.json); mbv2's patch stage is kept a chain
        // (kind 60) at 48x48; at 128x128 it runs through blocks.2's skip add (kind 63).
        ["mbv2-w0.35@48 largest, all memory options"] = new(() => Compile(ModelZoo.Build("mbv2-w0.35", 48, 10, seed: 7), Digits,
            new SparseScheme(34, [27, 30, 33, 36, 39, 42, 45, 48], [1, 1, 1, 1, 1, 1, 1, 1]), momentum: false, inPlaceDepthwise: true, memoryOptions: true, residuals: false)),
        ["proxyless-w0.3@64 largest, all memory options"] = new(() => Compile(ModelZoo.Build("proxyless-w0.3", 64, 10, seed: 7), Digits,
            new SparseScheme(45, [36, 39, 42, 45, 48, 51, 54, 57], [1, 1, 1, 1, 1, 1, 1, 1]), momentum: false, inPlaceDepthwise: true, memoryOptions: true)),
        // Trained slices: mcunet's 49kb scheme trains a quarter or half of three expansion convs' input channels.
        ["mcunet-5fps@64 49kb, trained slices"] = new(() => Compile(ModelZoo.Build("mcunet-5fps", 64, 10, seed: 7), Digits,
            new SparseScheme(20, [23, 24, 27, 30, 33, 39], [0, 0.25, 0.5, 0.5, 0, 0]), momentum: false, inPlaceDepthwise: true, memoryOptions: true)),
        ["mbv2-w0.35@128 largest, all memory options"] = new(() => Compile(ModelZoo.Build("mbv2-w0.35", 128, 10, seed: 7), Digits,
            new SparseScheme(34, [27, 30, 33, 36, 39, 42, 45, 48], [1, 1, 1, 1, 1, 1, 1, 1]), momentum: false, inPlaceDepthwise: true, memoryOptions: true)),
        // A streamed input: the first stage reads the frame band by band (a graph stage for mcunet, a chain for proxyless), and
        // patch stages further in (PatchMidStages) read whole tensors of the step.
        ["mcunet-5fps@96 148kb, streamed input"] = new(() => Compile(ModelZoo.Build("mcunet-5fps", 96, 10, seed: 7), Digits,
            new SparseScheme(23, [21, 24, 27, 30, 36, 39], [1, 1, 1, 1, 1, 0.5]), momentum: false, inPlaceDepthwise: true, memoryOptions: true, streamInput: true,
            midStages: true)),
        ["proxyless-w0.3@64 largest, streamed input, chain"] = new(() => Compile(ModelZoo.Build("proxyless-w0.3", 64, 10, seed: 7), Digits,
            new SparseScheme(45, [36, 39, 42, 45, 48, 51, 54, 57], [1, 1, 1, 1, 1, 1, 1, 1]), momentum: false, inPlaceDepthwise: true, memoryOptions: true,
            residuals: false, streamInput: true, midStages: true)),
        // The first stage staging its output over the input it consumes (PatchStage args 6-7), with stages further in.
        ["mcunet-5fps@96 148kb, output staged over input"] = new(() => Compile(ModelZoo.Build("mcunet-5fps", 96, 10, seed: 7), Digits,
            new SparseScheme(23, [21, 24, 27, 30, 36, 39], [1, 1, 1, 1, 1, 0.5]), momentum: false, inPlaceDepthwise: true, memoryOptions: true,
            midStages: true, stageOverInput: true)),
    };

    /// <summary>Puts sample <paramref name="index"/> for plan <paramref name="name"/> into <paramref name="input"/>; returns its label.</summary>
    public static int Sample(string name, PlanImage plan, int index, byte[] input)
    {
        if (name.StartsWith("every-op", StringComparison.Ordinal))
        {
            var random = new Random(index);
            random.NextBytes(input);
            return random.Next(plan.NumClasses);
        }
        Dataset data = name.StartsWith("cnn-s", StringComparison.Ordinal) ? Fashion : Digits;
        InputQuantizer.For(plan).Fill(data, index, input, 0);
        return data.Labels[index];
    }

    /// <summary>
    /// The compiler tests' tiny net (Planning/TrainingPlans.cs), whose full training plan holds every training op kind:
    ///   x (3,8,8) -> conv 3x3 (8,8,8) relu6 -> depthwise 3x3 s2 (8,4,4) relu -> pointwise (8,4,4)
    ///   -> add(pw, dw) -> average pool 2 s2 (8,2,2) -> global average pool (8,1,1) -> fully connected (10,1,1)
    /// </summary>
    private static Graph EveryOpGraph()
    {
        var b = new GraphBuilder("every-op", seed: 5);
        Node x = b.Input(new Shape(3, 8, 8));
        Node c1 = b.Relu6(b.BatchNorm(b.Conv(x, 8, kernel: 3, name: "c1"), "c1.bn"), "c1.relu6");
        Node dw = b.Relu(b.BatchNorm(b.DepthwiseConv(c1, kernel: 3, stride: 2, name: "dw"), "dw.bn"), "dw.relu");
        Node pw = b.BatchNorm(b.Conv(dw, 8, kernel: 1, name: "pw"), "pw.bn");
        Node sum = b.Add(pw, dw, "add");
        Node pool = b.AvgPool(sum, kernel: 2, stride: 2, name: "pool");
        Node gap = b.GlobalAvgPool(pool, "gap");
        b.Linear(b.Flatten(gap, "flatten"), 10, bias: true, name: "fc");
        return b.Build();
    }

    /// <summary>A fresh copy of the plan image named <paramref name="name"/>.</summary>
    public static byte[] Image(string name)
    {
        Lazy<byte[]> lazy;
        lock (Cache) lazy = Cache[name];
        return (byte[])lazy.Value.Clone();
    }

    private static byte[] Compile(Graph graph, Dataset? calibration, object update, bool momentum, bool inPlaceDepthwise = false, bool memoryOptions = false, bool residuals = true,
        bool streamInput = false, bool midStages = false, bool stageOverInput = false)
    {
        var options = new CompileOptions { Training = new TrainingOptions { Momentum = momentum }, InPlaceDepthwise = inPlaceDepthwise };
        // Auto without its recompute limit, so that mbv2 at 128 px takes the residual stage (op 63).
        if (memoryOptions) options = options with { Patch = "auto", PatchResiduals = residuals, PatchRecomputeLimit = double.PositiveInfinity,
            ChannelBackward = true, InPlacePointwise = true, TrainedSlices = true, StreamInput = streamInput, PatchMidStages = midStages,
            StageOverInput = stageOverInput };
        options = update is SparseScheme scheme
            ? options with { Trainable = m => TrainableSet.FromScheme(scheme, m) }
            : options with { Update = (string)update };
        lock (graph)
        {
            CalibrationSet samples = calibration is null
                ? CalibrationSet.Random(graph.InputShape, 4, 1)
                : CalibrationSet.FromData(calibration, graph.InputShape, 64);
            return PlanCompiler.Compile(graph, samples, options).Image;
        }
    }
}
