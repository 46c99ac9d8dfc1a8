namespace TinyTrain.Compiler.Graphs;

/// <summary>
/// Builds a graph op by op, inferring shapes and initialising parameters from a seed
/// (He-normal for convs, uniform +-1/sqrt(fan_in) for linear layers, BatchNorm at identity).
/// </summary>
public sealed class GraphBuilder
{
    private readonly string _name;
    private readonly List<Node> _nodes = new();
    private readonly Random _random;
    private readonly Dictionary<string, int> _nameCounts = new();

    public GraphBuilder(string name, int seed = 0)
    {
        _name = name;
        _random = new Random(seed);
    }

    public Node Input(Shape shape) => Add(OpKind.Input, "input", Array.Empty<int>(), shape);

    /// <param name="padding">-1 means "same" padding for odd kernels: (kernel - 1) / 2.</param>
    public Node Conv(Node x, int outChannels, int kernel, int stride = 1, int padding = -1, int groups = 1, bool bias = false, string? name = null)
    {
        int inChannels = x.Shape.C;
        if (padding < 0) padding = (kernel - 1) / 2;
        if (inChannels % groups != 0 || outChannels % groups != 0)
            throw new TinyTrainException($"conv '{name}': channels {inChannels}->{outChannels} are not divisible by groups {groups}");
        int h = ConvOut(x.Shape.H, kernel, stride, padding);
        int w = ConvOut(x.Shape.W, kernel, stride, padding);
        if (h <= 0 || w <= 0)
            throw new TinyTrainException($"conv '{name}': input {x.Shape} is too small for kernel {kernel} stride {stride}");
        var weight = new Tensor(outChannels, inChannels / groups, kernel, kernel);
        int fanIn = inChannels / groups * kernel * kernel;
        FillNormal(weight.Data, MathF.Sqrt(2f / fanIn));
        Node node = Add(OpKind.Conv2d, name ?? "conv", new[] { x.Id }, new Shape(outChannels, h, w),
            kernel, stride, padding, groups);
        node.Weight = weight;
        if (bias) node.Bias = new Tensor(outChannels);
        return node;
    }

    public Node DepthwiseConv(Node x, int kernel, int stride = 1, string? name = null)
        => Conv(x, x.Shape.C, kernel, stride, -1, x.Shape.C, false, name ?? "dwconv");

    public Node BatchNorm(Node x, string? name = null)
    {
        int c = x.Shape.C;
        Node node = Add(OpKind.BatchNorm, name ?? "bn", new[] { x.Id }, x.Shape);
        node.Weight = new Tensor(c);
        Array.Fill(node.Weight.Data, 1f);
        node.Bias = new Tensor(c);
        node.RunningMean = new Tensor(c);
        node.RunningVar = new Tensor(c);
        Array.Fill(node.RunningVar.Data, 1f);
        return node;
    }

    public Node Relu(Node x, string? name = null) => Add(OpKind.Relu, name ?? "relu", new[] { x.Id }, x.Shape);

    public Node Relu6(Node x, string? name = null) => Add(OpKind.Relu6, name ?? "relu6", new[] { x.Id }, x.Shape);

    public Node Add(Node a, Node b, string? name = null)
    {
        if (a.Shape != b.Shape)
            throw new TinyTrainException($"add '{name}': shapes {a.Shape} and {b.Shape} differ");
        return Add(OpKind.Add, name ?? "add", new[] { a.Id, b.Id }, a.Shape);
    }

    public Node AvgPool(Node x, int kernel, int stride, string? name = null)
    {
        int h = ConvOut(x.Shape.H, kernel, stride, 0), w = ConvOut(x.Shape.W, kernel, stride, 0);
        if (h <= 0 || w <= 0)
            throw new TinyTrainException($"avgpool '{name}': input {x.Shape} is too small for kernel {kernel}");
        return Add(OpKind.AvgPool, name ?? "avgpool", new[] { x.Id }, new Shape(x.Shape.C, h, w), kernel, stride);
    }

    public Node GlobalAvgPool(Node x, string? name = null)
        => Add(OpKind.GlobalAvgPool, name ?? "gap", new[] { x.Id }, new Shape(x.Shape.C, 1, 1));

    public Node Flatten(Node x, string? name = null)
        => Add(OpKind.Flatten, name ?? "flatten", new[] { x.Id }, new Shape(x.Shape.Size, 1, 1));

    public Node Linear(Node x, int outFeatures, bool bias = true, string? name = null)
    {
        int inFeatures = x.Shape.Size;
        if (x.Shape.H != 1 || x.Shape.W != 1)
            throw new TinyTrainException($"linear '{name}': input {x.Shape} must be flat; add a Flatten or GlobalAvgPool first");
        Node node = Add(OpKind.Linear, name ?? "fc", new[] { x.Id }, new Shape(outFeatures, 1, 1));
        node.Weight = new Tensor(outFeatures, inFeatures);
        float bound = 1f / MathF.Sqrt(inFeatures);
        for (int i = 0; i < node.Weight.Length; i++) node.Weight.Data[i] = (float)((_random.NextDouble() * 2 - 1) * bound);
        if (bias)
        {
            node.Bias = new Tensor(outFeatures);
            for (int i = 0; i < outFeatures; i++) node.Bias.Data[i] = (float)((_random.NextDouble() * 2 - 1) * bound);
        }
        return node;
    }

    public Graph Build() => new(_name, _nodes);

    public static int ConvOut(int size, int kernel, int stride, int padding) => (size + 2 * padding - kernel) / stride + 1;

    private Node Add(OpKind kind, string name, int[] inputs, Shape shape, int kernel = 0, int stride = 1, int padding = 0, int groups = 1)
    {
        var node = new Node
        {
            Id = _nodes.Count, Name = UniqueName(name), Kind = kind, Inputs = inputs, Shape = shape,
            Kernel = kernel, Stride = stride, Padding = padding, Groups = groups,
        };
        _nodes.Add(node);
        return node;
    }

    private string UniqueName(string name)
    {
        if (!_nameCounts.TryGetValue(name, out int count))
        {
            _nameCounts[name] = 1;
            return name;
        }
        _nameCounts[name] = count + 1;
        return $"{name}_{count}";
    }

    private void FillNormal(float[] data, float std)
    {
        for (int i = 0; i < data.Length; i++)
        {
            // Box-Muller; 1 - u keeps the log argument in (0, 1].
            double u1 = 1.0 - _random.NextDouble(), u2 = _random.NextDouble();
            data[i] = (float)(std * Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
    }
}
