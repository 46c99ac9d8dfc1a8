using System.Buffers.Binary;
using Google.Protobuf;
using Onnx;

namespace TinyTrain.Compiler.Onnx;

// Inside the namespace so that `Graph` means the class, not the sibling namespace TinyTrain.Compiler.Graphs.
using TinyTrain.Compiler.Graphs;

/// <summary>
/// Writes a float graph as an ONNX model (opset 13): input "input" (batch, C, H, W), output
/// "logits" (batch, classes), float32, parameters as initializers named after their node.
/// </summary>
public static class OnnxExporter
{
    public static void Export(Graph graph, string path)
    {
        ModelProto model = ToModel(graph);
        try
        {
            using FileStream file = File.Create(path);
            model.WriteTo(file);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new TinyTrainException($"{path}: cannot write the ONNX model: {ex.Message}", ex);
        }
    }

    public static void Export(Graph graph, Stream stream) => ToModel(graph).WriteTo(stream);

    internal static ModelProto ToModel(Graph graph)
    {
        var writer = new Writer(graph);
        GraphProto g = writer.Write();
        Shape input = graph.InputShape;
        var model = new ModelProto
        {
            IrVersion = OnnxFormat.IrVersion,
            ProducerName = "TinyTrain",
            ProducerVersion = typeof(OnnxExporter).Assembly.GetName().Version?.ToString() ?? "0",
            DocString = $"TinyTrain float model '{graph.Name}': input (N, {input.C}, {input.H}, {input.W}), {graph.NumClasses} logits",
            Graph = g,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = OnnxFormat.Opset });
        model.MetadataProps.Add(new StringStringEntryProto { Key = OnnxFormat.ModelNameKey, Value = graph.Name });
        return model;
    }

    private sealed class Writer
    {
        private readonly Graph _graph;
        private readonly GraphProto _g;
        private readonly HashSet<string> _names = new(StringComparer.Ordinal) { OnnxFormat.InputName, OnnxFormat.OutputName };
        private readonly string[] _value;   // per node: the ONNX value holding its output
        private readonly int[] _rank;       // per node: 4 for (N,C,H,W), 2 for (N,F)
        private readonly Dictionary<int, string> _reshaped = new();   // node id -> its output at the other rank
        private string? _clipMin, _clipMax;

        public Writer(Graph graph)
        {
            _graph = graph;
            _g = new GraphProto { Name = graph.Name };
            _value = new string[graph.Nodes.Count];
            _rank = new int[graph.Nodes.Count];
        }

        public GraphProto Write()
        {
            Shape s = _graph.InputShape;
            _g.Input.Add(ValueInfo(OnnxFormat.InputName, s.C, s.H, s.W));
            _value[0] = OnnxFormat.InputName;
            _rank[0] = 4;
            IReadOnlyList<Node> nodes = _graph.Nodes;
            for (int i = 1; i < nodes.Count; i++)
            {
                Node node = nodes[i];
                _rank[i] = OutputRank(node);
                bool last = i == nodes.Count - 1;
                _value[i] = last && _rank[i] == 2 ? OnnxFormat.OutputName : Unique(node.Name);
                WriteNode(node);
            }
            Node output = _graph.Output;
            if (_rank[output.Id] != 2)
                Reshape(output, _value[output.Id], OnnxFormat.OutputName, 2);
            _g.Output.Add(ValueInfo(OnnxFormat.OutputName, _graph.NumClasses));
            return _g;
        }

        private int OutputRank(Node node) => node.Kind switch
        {
            OpKind.Conv2d or OpKind.AvgPool or OpKind.GlobalAvgPool => 4,
            OpKind.Linear or OpKind.Flatten => 2,
            OpKind.Add when _rank[node.Inputs[0]] != _rank[node.Inputs[1]] => 2,
            _ => _rank[node.Inputs[0]],
        };

        private void WriteNode(Node node)
        {
            string y = _value[node.Id];
            int rank = _rank[node.Id];
            switch (node.Kind)
            {
                case OpKind.Conv2d:
                    WriteConv(node, y);
                    break;
                case OpKind.BatchNorm:
                    WriteBatchNorm(node, y, rank);
                    break;
                case OpKind.Relu:
                    Add("Relu", node.Name, new[] { In(node, 0, rank) }, y);
                    break;
                case OpKind.Relu6:
                    _clipMin ??= Initializer("relu6.min", Array.Empty<int>(), new[] { 0f });
                    _clipMax ??= Initializer("relu6.max", Array.Empty<int>(), new[] { 6f });
                    Add("Clip", node.Name, new[] { In(node, 0, rank), _clipMin, _clipMax }, y);
                    break;
                case OpKind.Add:
                    Add("Add", node.Name, new[] { In(node, 0, rank), In(node, 1, rank) }, y);
                    break;
                case OpKind.AvgPool:
                    NodeProto pool = Add("AveragePool", node.Name, new[] { In(node, 0, 4) }, y);
                    pool.Attribute.Add(Ints("kernel_shape", node.Kernel, node.Kernel));
                    pool.Attribute.Add(Ints("strides", node.Stride, node.Stride));
                    pool.Attribute.Add(Ints("pads", 0, 0, 0, 0));
                    break;
                case OpKind.GlobalAvgPool:
                    Add("GlobalAveragePool", node.Name, new[] { In(node, 0, 4) }, y);
                    break;
                case OpKind.Flatten:
                    Add("Flatten", node.Name, new[] { _value[node.Inputs[0]] }, y).Attribute.Add(Int("axis", 1));
                    break;
                case OpKind.Linear:
                    WriteLinear(node, y);
                    break;
                default:
                    throw new TinyTrainException($"graph '{_graph.Name}': node '{node.Name}' has op {node.Kind}, which the ONNX exporter does not know");
            }
        }

        private void WriteConv(Node node, string y)
        {
            Tensor w = Param(node, node.Weight, "weight");
            var inputs = new List<string> { In(node, 0, 4), Initializer(node.Name + ".weight", w) };
            if (node.Bias is not null) inputs.Add(Initializer(node.Name + ".bias", node.Bias));
            NodeProto n = Add("Conv", node.Name, inputs, y);
            n.Attribute.Add(Ints("kernel_shape", node.Kernel, node.Kernel));
            n.Attribute.Add(Ints("strides", node.Stride, node.Stride));
            n.Attribute.Add(Ints("pads", node.Padding, node.Padding, node.Padding, node.Padding));
            n.Attribute.Add(Ints("dilations", 1, 1));
            n.Attribute.Add(Int("group", node.Groups));
        }

        private void WriteBatchNorm(Node node, string y, int rank)
        {
            string x = In(node, 0, rank);
            string scale = Initializer(node.Name + ".weight", Param(node, node.Weight, "gamma"));
            string b = Initializer(node.Name + ".bias", Param(node, node.Bias, "beta"));
            string mean = Initializer(node.Name + ".running_mean", Param(node, node.RunningMean, "running mean"));
            string var = Initializer(node.Name + ".running_var", Param(node, node.RunningVar, "running variance"));
            NodeProto n = Add("BatchNormalization", node.Name, new[] { x, scale, b, mean, var }, y);
            n.Attribute.Add(Float("epsilon", node.Epsilon));
            // ONNX weighs the old running value by momentum; PyTorch (and we) weigh the new batch.
            n.Attribute.Add(Float("momentum", 1f - node.Momentum));
        }

        // y = x W^T + b: Gemm with transB = 1 takes our (Out, In) weight as it is.
        private void WriteLinear(Node node, string y)
        {
            Tensor w = Param(node, node.Weight, "weight");
            var inputs = new List<string> { In(node, 0, 2), Initializer(node.Name + ".weight", w) };
            if (node.Bias is not null) inputs.Add(Initializer(node.Name + ".bias", node.Bias));
            NodeProto n = Add("Gemm", node.Name, inputs, y);
            n.Attribute.Add(Float("alpha", 1f));
            n.Attribute.Add(Float("beta", 1f));
            n.Attribute.Add(Int("transB", 1));
        }

        // The value of the node's i-th input, reshaped to the rank the op needs.
        private string In(Node node, int i, int rank)
        {
            Node x = _graph.Nodes[node.Inputs[i]];
            if (_rank[x.Id] == rank) return _value[x.Id];
            if (!_reshaped.TryGetValue(x.Id, out string? reshaped))
            {
                reshaped = Reshape(x, _value[x.Id], Unique($"{_value[x.Id]}.{(rank == 2 ? "flat" : "4d")}"), rank);
                _reshaped[x.Id] = reshaped;
            }
            return reshaped;
        }

        private string Reshape(Node x, string from, string to, int rank)
        {
            NodeProto n;
            if (rank == 2)
            {
                n = Add("Flatten", to, new[] { from }, to);
                n.Attribute.Add(Int("axis", 1));
            }
            else
            {
                string shape = Unique(to + ".shape");
                var dims = new long[] { 0, x.Shape.C, x.Shape.H, x.Shape.W };   // 0 keeps the batch size
                _g.Initializer.Add(new TensorProto { Name = shape, DataType = OnnxFormat.Int64, Dims = { 4 }, Int64Data = { dims } });
                n = Add("Reshape", to, new[] { from, shape }, to);
            }
            n.DocString = OnnxFormat.ImplicitReshape;
            return to;
        }

        private Tensor Param(Node node, Tensor? t, string what)
            => t ?? throw new TinyTrainException($"graph '{_graph.Name}': node '{node.Name}' ({node.Kind}) has no {what}; the graph is incomplete");

        private NodeProto Add(string opType, string name, IEnumerable<string> inputs, string output)
        {
            var n = new NodeProto { OpType = opType, Name = name };
            n.Input.Add(inputs);
            n.Output.Add(output);
            _g.Node.Add(n);
            return n;
        }

        private string Initializer(string name, Tensor t) => Initializer(name, t.Dims, t.Data);

        private string Initializer(string name, int[] dims, float[] data)
        {
            name = Unique(name);
            var bytes = new byte[data.Length * 4];
            for (int i = 0; i < data.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), data[i]);
            var t = new TensorProto { Name = name, DataType = OnnxFormat.Float, RawData = ByteString.CopyFrom(bytes) };
            foreach (int d in dims) t.Dims.Add(d);
            _g.Initializer.Add(t);
            return name;
        }

        private string Unique(string wanted)
        {
            if (_names.Add(wanted)) return wanted;
            for (int k = 1; ; k++)
                if (_names.Add($"{wanted}_{k}")) return $"{wanted}_{k}";
        }

        // A float tensor (batch, dims...) with a symbolic batch size.
        private static ValueInfoProto ValueInfo(string name, params int[] dims)
        {
            var shape = new TensorShapeProto();
            shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = OnnxFormat.BatchDim });
            foreach (int d in dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
            return new ValueInfoProto
            {
                Name = name,
                Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = OnnxFormat.Float, Shape = shape } },
            };
        }

        private static AttributeProto Int(string name, long value)
            => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

        private static AttributeProto Float(string name, float value)
            => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

        private static AttributeProto Ints(string name, params long[] values)
        {
            var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
            a.Ints.Add(values);
            return a;
        }
    }
}
