using Onnx;

namespace TinyTrain.Compiler.Onnx;

using TinyTrain.Compiler.Graphs;

/// <summary>
/// Walks one ONNX graph in order and builds the float graph: checks the graph's input and output,
/// tracks which ONNX value each of our nodes computes, and reports problems by file and node.
/// The op conversions are in OnnxGraphReader.Ops.cs.
/// </summary>
internal sealed partial class OnnxGraphReader
{
    // Per-sample sizes above this are refused: they only come from damaged or foreign files.
    private const long MaxSize = 1L << 28;
    private const int MaxDim = 1 << 16;

    private readonly string _source;
    private readonly GraphProto _g;
    private readonly Dictionary<string, TensorProto> _initializers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, OnnxConstant> _constants = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Value> _values = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _producer = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _uses = new(StringComparer.Ordinal);
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private readonly List<Node> _nodes = new();
    // Linear nodes made from a MatMul, whose bias may still come from the Add that follows.
    private readonly HashSet<int> _awaitingBias = new();
    private bool _batchIsOne;

    // The ONNX node being converted, for messages.
    private NodeProto _node = new();
    private string _name = "";

    public OnnxGraphReader(string source, GraphProto graph)
    {
        _source = source;
        _g = graph;
    }

    /// <summary>An ONNX value computed by the graph: which of our nodes holds it, and its rank (4 = N,C,H,W; 2 = N,F).</summary>
    private readonly record struct Value(int Node, int Rank);

    public Graph Read(string graphName)
    {
        if (_g.SparseInitializer.Count > 0)
            throw Fail($"the graph has sparse initializers ('{_g.SparseInitializer[0].Values?.Name}'); TinyTrain reads dense float32 weights only");
        foreach (TensorProto t in _g.Initializer)
        {
            if (t.Name.Length == 0)
                throw Fail("the graph has an initializer without a name; the file is damaged");
            if (!_initializers.TryAdd(t.Name, t))
                throw Fail($"the graph has two initializers named '{t.Name}'; the file is damaged");
        }
        ReadInput();
        IndexValues();
        for (int i = 0; i < _g.Node.Count; i++)
        {
            _node = _g.Node[i];
            _name = UniqueName(_node, i);
            CheckInputsDefined(i);
            Convert();
        }
        _name = "";
        CheckOutput();
        return new Graph(graphName, _nodes);
    }

    private void ReadInput()
    {
        var inputs = new List<ValueInfoProto>();
        foreach (ValueInfoProto vi in _g.Input)
            if (!_initializers.ContainsKey(vi.Name))
                inputs.Add(vi);
        if (inputs.Count != 1)
            throw Fail($"the graph has {inputs.Count} inputs ({string.Join(", ", inputs.Select(i => $"'{i.Name}'"))}); a TinyTrain model takes exactly one image input (N, C, H, W)");
        ValueInfoProto input = inputs[0];
        if (input.Name.Length == 0)
            throw Fail("the graph input has no name; the file is damaged");
        TypeProto.Types.Tensor tensor = TensorType(input, "input");
        TensorShapeProto? shape = tensor.Shape;
        if (shape is null || shape.Dim.Count != 4)
            throw Fail($"input '{input.Name}' has {(shape is null ? "no shape" : $"rank {shape.Dim.Count}")}; TinyTrain needs a 4-D float input (N, C, H, W)");
        TensorShapeProto.Types.Dimension batch = shape.Dim[0];
        if (batch.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue)
        {
            if (batch.DimValue != 1)
                throw Fail($"input '{input.Name}' has a fixed batch size of {batch.DimValue}; export the model with a dynamic batch dimension or with batch 1");
            _batchIsOne = true;
        }
        var dims = new int[3];
        for (int i = 0; i < 3; i++)
        {
            TensorShapeProto.Types.Dimension d = shape.Dim[i + 1];
            if (d.ValueCase != TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue || d.DimValue < 1 || d.DimValue > MaxDim)
                throw Fail($"input '{input.Name}' has dimension {i + 1} = {DimText(d)}; TinyTrain needs fixed C, H and W (only the batch may be symbolic)");
            dims[i] = (int)d.DimValue;
        }
        if ((long)dims[0] * dims[1] * dims[2] > MaxSize)
            throw Fail($"input '{input.Name}' of shape {dims[0]}x{dims[1]}x{dims[2]} per sample is too large for TinyTrain");
        _values[input.Name] = Emit(new Node
        {
            Id = 0,
            Name = input.Name,
            Kind = OpKind.Input,
            Inputs = Array.Empty<int>(),
            Shape = new Shape(dims[0], dims[1], dims[2]),
        }, 4);
    }

    private void IndexValues()
    {
        for (int i = 0; i < _g.Node.Count; i++)
        {
            NodeProto n = _g.Node[i];
            foreach (string output in n.Output)
            {
                if (output.Length == 0) continue;
                if (_initializers.ContainsKey(output) || _values.ContainsKey(output) || !_producer.TryAdd(output, i))
                    throw Fail($"value '{output}' is produced more than once (again by node '{DisplayName(n, i)}'); the file is not valid ONNX");
            }
            foreach (string input in n.Input)
                if (input.Length > 0)
                    _uses[input] = _uses.GetValueOrDefault(input) + 1;
        }
        foreach (ValueInfoProto output in _g.Output)
            _uses[output.Name] = _uses.GetValueOrDefault(output.Name) + 1;
    }

    private void CheckInputsDefined(int index)
    {
        foreach (string input in _node.Input)
        {
            if (input.Length == 0 || _values.ContainsKey(input) || _constants.ContainsKey(input) || _initializers.ContainsKey(input))
                continue;
            if (_producer.TryGetValue(input, out int producer))
                throw NodeFail($"reads '{input}', which node '{DisplayName(_g.Node[producer], producer)}' computes later; the graph is not in topological order (re-export it, or sort it with onnx's tools)");
            throw NodeFail($"reads '{input}', which is neither an initializer nor the output of an earlier node; the file is missing that tensor");
        }
        if (_node.Output.Count == 0 || _node.Output[0].Length == 0)
            throw NodeFail("has no output; the file is damaged");
    }

    private void CheckOutput()
    {
        if (_g.Output.Count != 1)
            throw Fail($"the graph has {_g.Output.Count} outputs ({string.Join(", ", _g.Output.Select(o => $"'{o.Name}'"))}); a TinyTrain model has exactly one output, the logits (N, classes)");
        ValueInfoProto output = _g.Output[0];
        if (output.Type is not null && output.Type.ValueCase != TypeProto.ValueOneofCase.None)
            TensorType(output, "output");
        if (!_values.TryGetValue(output.Name, out Value v))
            throw Fail(_constants.ContainsKey(output.Name) || _initializers.ContainsKey(output.Name)
                ? $"output '{output.Name}' is a constant, not computed from the input"
                : $"output '{output.Name}' is not computed by any node; the file is damaged");
        if (v.Node != _nodes.Count - 1)
            throw Fail($"output '{output.Name}' is computed by node '{_nodes[v.Node].Name}', but nodes after it ('{_nodes[^1].Name}', ...) do not feed the output; remove them before importing");
        Shape s = _nodes[v.Node].Shape;
        if (v.Node == 0 || s.H != 1 || s.W != 1)
            throw Fail($"output '{output.Name}' has per-sample shape {s.C}x{s.H}x{s.W}; TinyTrain needs logits of shape (N, classes)");
    }

    private TypeProto.Types.Tensor TensorType(ValueInfoProto vi, string what)
    {
        TypeProto.Types.Tensor? tensor = vi.Type?.TensorType;
        if (tensor is null)
            throw Fail($"{what} '{vi.Name}' is not a tensor; TinyTrain needs float32 tensors");
        if (tensor.ElemType != OnnxFormat.Float)
            throw Fail($"{what} '{vi.Name}' has element type {OnnxFormat.TypeName(tensor.ElemType)}; TinyTrain needs float32: export the model in float32");
        return tensor;
    }

    // Binds the current ONNX node's first output to an existing value: a skipped op.
    private void Alias(Value v) => _values[_node.Output[0]] = v;

    private void Bind(Node node, int rank) => _values[_node.Output[0]] = Emit(node, rank);

    private Value Emit(Node node, int rank)
    {
        long size = (long)node.Shape.C * node.Shape.H * node.Shape.W;
        if (node.Shape.C < 1 || node.Shape.H < 1 || node.Shape.W < 1 || size > MaxSize)
            throw NodeFail($"would produce a tensor of shape {node.Shape.C}x{node.Shape.H}x{node.Shape.W} per sample, which TinyTrain cannot hold; check the model's shapes");
        _nodes.Add(node);
        _names.Add(node.Name);
        return new Value(node.Id, rank);
    }

    private Node NodeOf(Value v) => _nodes[v.Node];

    // Reserved only when a node is emitted, so that skipped ONNX nodes take no names from ours.
    private string UniqueName(NodeProto n, int index)
    {
        string wanted = DisplayName(n, index);
        if (!_names.Contains(wanted)) return wanted;
        for (int k = 1; ; k++)
            if (!_names.Contains($"{wanted}_{k}")) return $"{wanted}_{k}";
    }

    private static string DisplayName(NodeProto n, int index)
    {
        if (n.Name.Length > 0) return n.Name;
        if (n.Output.Count > 0 && n.Output[0].Length > 0) return n.Output[0];
        return $"{n.OpType}_{index}";
    }

    private static string DimText(TensorShapeProto.Types.Dimension d) => d.ValueCase switch
    {
        TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue => d.DimValue.ToString(),
        TensorShapeProto.Types.Dimension.ValueOneofCase.DimParam => $"'{d.DimParam}'",
        _ => "unknown",
    };

    private TinyTrainException Fail(string message) => new(OnnxFormat.OneLine($"{_source}: {message}"));

    private TinyTrainException NodeFail(string message) => Fail($"node '{_name}' ({_node.OpType}) {message}");
}
