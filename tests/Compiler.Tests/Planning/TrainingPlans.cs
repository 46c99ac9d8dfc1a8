namespace TinyTrain.Compiler.Tests.Planning;

using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Graphs;
using TinyTrain.Compiler.Learning;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Compiler.Zoo;
using TinyTrain.Runtime.Plans;
using OpKind = TinyTrain.Runtime.Plans.OpKind;

/// <summary>
/// Training plans as the compiler writes them, compiled once per test run: mbv2-w0.35 at 32x32 with each
/// kind of trainable set, and a tiny net whose full training plan holds every training op kind:
///   x (3,8,8) -> conv 3x3 (8,8,8) relu6 -> depthwise 3x3 s2 (8,4,4) relu -> pointwise (8,4,4)
///   -> add(pw, dw) -> average pool 2 s2 (8,2,2) -> global average pool (8,1,1) -> fully connected (10,1,1)
/// </summary>
internal static class TrainingPlans
{
    public static readonly string[] Mbv2Configs = ["bias:6", "full", "sparse", "bias:6+momentum", "full+momentum", "sparse+momentum"];

    private static readonly Dictionary<string, Lazy<byte[]>> Cache = new();
    private static readonly Lazy<byte[]> TinyFull = new(() => Compile(TinyGraph(), "full+momentum"));
    private static readonly Lazy<byte[]> TinyBias = new(() => Compile(TinyGraph(), "bias:1"));

    /// <summary>A fresh copy of mbv2-w0.35's training plan for one of <see cref="Mbv2Configs"/>.</summary>
    public static byte[] Mbv2(string config)
    {
        Lazy<byte[]> lazy;
        lock (Cache)
        {
            if (!Cache.TryGetValue(config, out lazy!))
                Cache[config] = lazy = new Lazy<byte[]>(() => Compile(ModelZoo.Build("mbv2-w0.35", 32, 10, seed: 1), config));
        }
        return (byte[])lazy.Value.Clone();
    }

    /// <summary>A fresh copy of the tiny net trained in full, with momentum.</summary>
    public static byte[] Tiny() => (byte[])TinyFull.Value.Clone();

    /// <summary>A fresh copy of the tiny net with only the biases of its last conv and the classifier trained.</summary>
    public static byte[] TinyBiasOnly() => (byte[])TinyBias.Value.Clone();

    public static Graph TinyGraph()
    {
        var b = new GraphBuilder("tiny-train", seed: 5);
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

    private static byte[] Compile(Graph graph, string config)
    {
        bool momentum = config.EndsWith("+momentum", StringComparison.Ordinal);
        string update = momentum ? config[..^"+momentum".Length] : config;
        var options = new CompileOptions { Training = new TrainingOptions { Momentum = momentum } };
        options = update == "sparse"
            ? options with { Trainable = m => TrainableSet.FromScheme(new SparseScheme(4, new[] { 10, 12 }, new[] { 0.5, 1.0 }), m) }
            : options with { Update = update };
        return PlanCompiler.Compile(graph, CalibrationSet.Random(graph.InputShape, 4, 1), options).Image;
    }

    /// <summary>The index of the first op of <paramref name="kind"/> (after <paramref name="after"/>) in a plan image.</summary>
    public static int FindOp(byte[] image, OpKind kind, int after = -1)
    {
        int ops = PlanImage.Section(image, SectionKind.Ops, out int length);
        for (int j = after + 1; j < length / PlanFormat.OpRecordSize; j++)
            if (PlanImage.U32(image, ops + j * PlanFormat.OpRecordSize) % 0x10000 == (uint)kind) return j;
        throw new InvalidOperationException($"the plan has no {kind} op after op {after}");
    }
}
