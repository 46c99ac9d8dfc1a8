namespace TinyTrain.Adapters.Kinds;

using TinyTrain.Compiler.Graphs;

/// <summary>
/// Copies a graph node by node and inserts adapter nodes after a block (a conv or linear layer with its
/// BatchNorm and activation): readers of the block's end read the adapter's output instead.
/// </summary>
internal sealed class GraphEditor
{
    private readonly Graph _source;
    private readonly string _name;
    private readonly Random _random;
    private readonly List<Node> _nodes = new();
    private readonly int[] _newId;
    private readonly int[] _readers;

    public GraphEditor(Graph source, string name, int seed)
    {
        _source = source;
        _name = name;
        _random = new Random(seed);
        _newId = new int[source.Nodes.Count];
        _readers = new int[source.Nodes.Count];
        foreach (Node n in source.Nodes)
            foreach (int i in n.Inputs) _readers[i]++;
    }

    public void Copy(Node node)
    {
        _newId[node.Id] = _nodes.Count;
        _nodes.Add(new Node
        {
            Id = _nodes.Count, Name = node.Name, Kind = node.Kind, Shape = node.Shape, Inputs = Array.ConvertAll(node.Inputs, i => _newId[i]),
            Kernel = node.Kernel, Stride = node.Stride, Padding = node.Padding, Groups = node.Groups, Epsilon = node.Epsilon, Momentum = node.Momentum,
            WeightScaleFloor = node.WeightScaleFloor, RangeLike = node.RangeLike, RangeFraction = node.RangeFraction,
            Weight = node.Weight?.Clone(), Bias = node.Bias?.Clone(), RunningMean = node.RunningMean?.Clone(), RunningVar = node.RunningVar?.Clone(),
        });
    }

    /// <summary>
    /// True when <paramref name="node"/> is the last node of a layer's block: the layer (conv or linear),
    /// then BatchNorm and ReLU/ReLU6 each read only by the next; <paramref name="layer"/> is the layer.
    /// </summary>
    public bool EndsBlock(Node node, out Node layer)
    {
        layer = node;
        while (layer.Kind is OpKind.BatchNorm or OpKind.Relu or OpKind.Relu6)
        {
            Node producer = _source.Nodes[layer.Inputs[0]];
            if (_readers[producer.Id] != 1) return false;
            layer = producer;
        }
        if (layer.Kind is not (OpKind.Conv2d or OpKind.Linear)) return false;
        // The block ends where the chain stops: the next node is not its BatchNorm or activation.
        for (int next = node.Id + 1; next < _source.Nodes.Count; next++)
        {
            Node n = _source.Nodes[next];
            if (Array.IndexOf(n.Inputs, node.Id) < 0) continue;
            if (n.Kind is OpKind.BatchNorm or OpKind.Relu or OpKind.Relu6 && _readers[node.Id] == 1) return false;
        }
        return true;
    }

    // The block's end is read through the adapter from here on.
    private void Redirect(Node blockEnd, Node adapterOutput) => _newId[blockEnd.Id] = adapterOutput.Id;

    private Node Current(Node original) => _nodes[_newId[original.Id]];

    private string LayerName(Node layer) => layer.Name;

    /// <summary>CLR: depthwise 3x3 at the identity (center tap 1, bias 0) on the block's output.</summary>
    public void InsertClr(Node blockEnd, Node layer)
    {
        Node x = Current(blockEnd);
        int c = x.Shape.C;
        var weight = new Tensor(c, 1, 3, 3);
        for (int ch = 0; ch < c; ch++) weight.Data[ch * 9 + 4] = 1f;
        Node dw = Add(new Node
        {
            Id = _nodes.Count, Name = LayerName(layer) + AdapterRewrite.ClrSuffix, Kind = OpKind.Conv2d, Inputs = [x.Id], Shape = x.Shape,
            Kernel = 3, Stride = 1, Padding = 1, Groups = c, WeightScaleFloor = AdapterRewrite.ClrWeightScale,
            Weight = weight, Bias = new Tensor(c),
        });
        Redirect(blockEnd, dw);
    }

    /// <summary>Lite residual: avgpool(stride) of the layer's input, 1x1 conv started at zero, added to the block's output.</summary>
    public bool InsertResidual(Node blockEnd, Node layer)
    {
        Node input = _nodes[_newId[layer.Inputs[0]]], main = Current(blockEnd);
        Node side = input;
        if (layer.Stride > 1)
        {
            int h = GraphBuilder.ConvOut(input.Shape.H, layer.Stride, layer.Stride, 0), w = GraphBuilder.ConvOut(input.Shape.W, layer.Stride, layer.Stride, 0);
            if (h != main.Shape.H || w != main.Shape.W) return false;
            side = Add(new Node
            {
                Id = _nodes.Count, Name = LayerName(layer) + AdapterRewrite.ResidualPoolSuffix, Kind = OpKind.AvgPool, Inputs = [input.Id],
                Shape = new Shape(input.Shape.C, h, w), Kernel = layer.Stride, Stride = layer.Stride,
            });
        }
        if (side.Shape.H != main.Shape.H || side.Shape.W != main.Shape.W) return false;
        Node conv = Add(new Node
        {
            Id = _nodes.Count, Name = LayerName(layer) + AdapterRewrite.ResidualSuffix, Kind = OpKind.Conv2d, Inputs = [side.Id], Shape = main.Shape,
            Kernel = 1, Stride = 1, Padding = 0, Groups = 1, WeightScaleFloor = AdapterRewrite.ZeroStartWeightScale,
            RangeLike = layer.Name, RangeFraction = AdapterRewrite.BranchRange,
            Weight = new Tensor(main.Shape.C, side.Shape.C, 1, 1), Bias = new Tensor(main.Shape.C),
        });
        Node sum = Add(new Node { Id = _nodes.Count, Name = LayerName(layer) + AdapterRewrite.ResidualAddSuffix, Kind = OpKind.Add, Inputs = [main.Id, conv.Id], Shape = main.Shape });
        Redirect(blockEnd, sum);
        return true;
    }

    /// <summary>LoRA: A (rank x in, uniform +-1/sqrt(in)) then B (out x rank, zero) on the layer's input, added to the block's output.</summary>
    public void InsertLora(Node blockEnd, Node layer, int rank)
    {
        Node input = _nodes[_newId[layer.Inputs[0]]], main = Current(blockEnd);
        bool linear = layer.Kind == OpKind.Linear;
        int inFeatures = linear ? input.Shape.Size : input.Shape.C;
        var a = linear ? new Tensor(rank, inFeatures) : new Tensor(rank, inFeatures, 1, 1);
        float bound = 1f / MathF.Sqrt(inFeatures);
        for (int i = 0; i < a.Length; i++) a.Data[i] = (float)((_random.NextDouble() * 2 - 1) * bound);
        Shape mid = linear ? new Shape(rank, 1, 1) : new Shape(rank, main.Shape.H, main.Shape.W);
        Node nodeA = Add(new Node
        {
            Id = _nodes.Count, Name = LayerName(layer) + AdapterRewrite.LoraASuffix, Kind = linear ? OpKind.Linear : OpKind.Conv2d, Inputs = [input.Id], Shape = mid,
            Kernel = linear ? 0 : 1, Weight = a, Bias = new Tensor(rank),
            // A starts small; its weights and output get room to grow (int8 steps fixed at compile time).
            WeightScaleFloor = AdapterRewrite.LoraAGrowth * bound / 127f, RangeLike = LayerName(layer) + AdapterRewrite.LoraASuffix, RangeFraction = AdapterRewrite.LoraAGrowth,
        });
        Node nodeB = Add(new Node
        {
            Id = _nodes.Count, Name = LayerName(layer) + AdapterRewrite.LoraBSuffix, Kind = linear ? OpKind.Linear : OpKind.Conv2d, Inputs = [nodeA.Id], Shape = main.Shape,
            Kernel = linear ? 0 : 1, WeightScaleFloor = AdapterRewrite.ZeroStartWeightScale, RangeLike = layer.Name, RangeFraction = AdapterRewrite.BranchRange,
            Weight = linear ? new Tensor(main.Shape.C, rank) : new Tensor(main.Shape.C, rank, 1, 1), Bias = new Tensor(main.Shape.C),
        });
        Node sum = Add(new Node { Id = _nodes.Count, Name = LayerName(layer) + AdapterRewrite.LoraAddSuffix, Kind = OpKind.Add, Inputs = [main.Id, nodeB.Id], Shape = main.Shape });
        Redirect(blockEnd, sum);
    }

    private Node Add(Node node)
    {
        _nodes.Add(node);
        return node;
    }

    public Graph Build() => new(_name, _nodes);
}
