using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Onnx;

namespace TinyTrain.Compiler.Tests.Onnx;

using TinyTrain.Compiler.Graphs;
using TinyTrain.Compiler.Onnx;
using TinyTrain.Compiler.Training;

/// <summary>Test graphs, runners (FloatNetwork and ONNX Runtime) and a small builder for hand-made ONNX files.</summary>
internal static class OnnxTestSupport
{
    /// <summary>Every op kind: conv with bias, depthwise conv, BN, ReLU, ReLU6, residual Add, AvgPool, GAP, Flatten, Linear.</summary>
    public static Graph AllOps(int seed = 1)
    {
        var b = new GraphBuilder("all-ops", seed);
        Node x = b.Input(new Shape(3, 16, 16));
        x = b.Conv(x, 8, kernel: 3, bias: true, name: "conv1");
        x = b.BatchNorm(x, "conv1.bn");
        x = b.Relu(x, "conv1.relu");
        x = b.DepthwiseConv(x, kernel: 3, stride: 2, name: "dw");
        x = b.BatchNorm(x, "dw.bn");
        Node skip = b.Relu6(x, "dw.relu6");
        x = b.Conv(skip, 8, kernel: 1, name: "pw");
        x = b.BatchNorm(x, "pw.bn");
        x = b.Add(x, skip, "residual");
        x = b.AvgPool(x, kernel: 2, stride: 2, name: "pool");
        x = b.Conv(x, 16, kernel: 3, stride: 1, padding: 0, name: "conv2");
        x = b.Relu6(x, "conv2.relu6");
        x = b.GlobalAvgPool(x, "gap");
        x = b.Flatten(x, "flatten");
        b.Linear(x, 10, name: "fc");
        return Randomize(b.Build(), seed);
    }

    /// <summary>Rank changes the exporter must bridge: Linear right after GAP, ops on (N, F), and GAP as the output.</summary>
    public static Graph Heads(int seed = 2)
    {
        var b = new GraphBuilder("heads", seed);
        Node x = b.Input(new Shape(4, 6, 6));
        x = b.Conv(x, 6, kernel: 3, stride: 2, name: "conv");
        Node pooled = b.GlobalAvgPool(x, "gap");
        Node fc1 = b.Linear(pooled, 6, name: "fc1");
        x = b.Add(fc1, pooled, "mixed");          // (N, F) + (N, C, 1, 1)
        x = b.BatchNorm(x, "fc.bn");
        x = b.Relu6(x, "fc.relu6");
        x = b.Conv(x, 5, kernel: 1, bias: true, name: "conv_on_flat");
        return Randomize(b.Build(), seed);
    }

    /// <summary>Gives BatchNorm statistics and biases values other than their identity initialisation.</summary>
    public static Graph Randomize(Graph graph, int seed)
    {
        var random = new Random(seed);
        float Next(float lo, float hi) => lo + (float)random.NextDouble() * (hi - lo);
        foreach (Node n in graph.Nodes)
        {
            if (n.Kind == OpKind.BatchNorm)
            {
                for (int c = 0; c < n.Shape.C; c++)
                {
                    n.Weight!.Data[c] = Next(0.5f, 1.5f);
                    n.Bias!.Data[c] = Next(-0.5f, 0.5f);
                    n.RunningMean!.Data[c] = Next(-0.5f, 0.5f);
                    n.RunningVar!.Data[c] = Next(0.5f, 2f);
                }
            }
            else if (n.Bias is not null)
            {
                for (int i = 0; i < n.Bias.Length; i++) n.Bias.Data[i] = Next(-0.5f, 0.5f);
            }
        }
        return graph;
    }

    public static float[] RandomInput(Shape shape, int batch, int seed)
    {
        var random = new Random(seed);
        var x = new float[batch * shape.Size];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(random.NextDouble() * 4 - 2);
        return x;
    }

    public static float[] RunFloat(Graph graph, float[] input, int batch)
    {
        var net = new FloatNetwork(graph, batch);
        input.CopyTo(net.InputBuffer, 0);
        return net.Forward(batch, training: false)[..(batch * graph.NumClasses)];
    }

    public static float[] RunOrt(byte[] model, float[] input, int batch, Shape shape, int classes)
    {
        using var session = new InferenceSession(model);
        var x = new DenseTensor<float>(input, new[] { batch, shape.C, shape.H, shape.W });
        using IDisposableReadOnlyCollection<DisposableNamedOnnxValue> results =
            session.Run(new[] { NamedOnnxValue.CreateFromTensor(session.InputMetadata.Keys.Single(), x) });
        Tensor<float> y = results.Single().AsTensor<float>();
        Assert.Equal(new[] { batch, classes }, y.Dimensions.ToArray());
        return y.ToArray();
    }

    public static byte[] Export(Graph graph)
    {
        using var stream = new MemoryStream();
        OnnxExporter.Export(graph, stream);
        return stream.ToArray();
    }

    public static Graph Import(byte[] model, string sourceName = "model.onnx") => OnnxImporter.Import(new MemoryStream(model), sourceName);

    /// <summary>Max |a - b| must stay within 1e-4 of the outputs' scale.</summary>
    public static void AssertClose(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        float scale = 1f, diff = 0f;
        for (int i = 0; i < expected.Length; i++)
        {
            scale = Math.Max(scale, Math.Abs(expected[i]));
            diff = Math.Max(diff, Math.Abs(expected[i] - actual[i]));
        }
        Assert.True(diff <= 1e-4f * scale, $"max abs diff {diff} exceeds 1e-4 x scale {scale}");
    }

    public static TinyTrainException ImportFails(byte[] model, string sourceName = "model.onnx")
        => Assert.Throws<TinyTrainException>(() => Import(model, sourceName));

    public static ModelProto Parse(byte[] model) => ModelProto.Parser.ParseFrom(model);
}

/// <summary>Writes ONNX files by hand, the way other exporters lay them out.</summary>
internal sealed class OnnxModelBuilder
{
    private readonly GraphProto _g = new() { Name = "hand-made" };
    private readonly long _opset;
    private readonly long _irVersion;

    public OnnxModelBuilder(long opset = 13, long irVersion = 8)
    {
        _opset = opset;
        _irVersion = irVersion;
    }

    public OnnxModelBuilder Input(string name, int c, int h, int w, bool symbolicBatch = true)
    {
        _g.Input.Add(ValueInfo(name, TensorProto.Types.DataType.Float, symbolicBatch ? null : 1, c, h, w));
        return this;
    }

    public OnnxModelBuilder Output(string name, int classes)
    {
        _g.Output.Add(ValueInfo(name, TensorProto.Types.DataType.Float, null, classes));
        return this;
    }

    /// <summary>A float initializer, as raw_data (little-endian bytes) or as float_data.</summary>
    public OnnxModelBuilder Floats(string name, long[] dims, float[] data, bool raw = true)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        t.Dims.Add(dims);
        if (raw)
        {
            var bytes = new byte[data.Length * 4];
            Buffer.BlockCopy(data, 0, bytes, 0, bytes.Length);
            t.RawData = ByteString.CopyFrom(bytes);
        }
        else
        {
            t.FloatData.Add(data);
        }
        _g.Initializer.Add(t);
        return this;
    }

    public OnnxModelBuilder RandomFloats(string name, long[] dims, Random random, float scale = 0.5f, bool raw = true)
    {
        long n = 1;
        foreach (long d in dims) n *= d;
        var data = new float[n];
        for (int i = 0; i < n; i++) data[i] = (float)(random.NextDouble() * 2 - 1) * scale;
        return Floats(name, dims, data, raw);
    }

    public OnnxModelBuilder Int64s(string name, params long[] data)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        t.Dims.Add(data.Length);
        t.Int64Data.Add(data);
        _g.Initializer.Add(t);
        return this;
    }

    public NodeProto Node(string opType, string name, string[] inputs, params string[] outputs)
    {
        var n = new NodeProto { OpType = opType, Name = name };
        n.Input.Add(inputs);
        n.Output.Add(outputs);
        _g.Node.Add(n);
        return n;
    }

    public GraphProto Graph => _g;

    public byte[] Build()
    {
        var model = new ModelProto { IrVersion = _irVersion, ProducerName = "hand", Graph = _g };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = _opset });
        return model.ToByteArray();
    }

    public static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    public static AttributeProto Float(string name, float value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    public static AttributeProto Ints(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.Add(values);
        return a;
    }

    public static ValueInfoProto ValueInfo(string name, TensorProto.Types.DataType type, int? batch, params int[] dims)
    {
        var shape = new TensorShapeProto();
        shape.Dim.Add(batch is null ? new TensorShapeProto.Types.Dimension { DimParam = "N" } : new TensorShapeProto.Types.Dimension { DimValue = batch.Value });
        foreach (int d in dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }
}
