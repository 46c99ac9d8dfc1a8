using Google.Protobuf;
using Onnx;

namespace TinyTrain.Compiler.Tests.Onnx;

using TinyTrain.Compiler.Onnx;
using static OnnxModelBuilder;
using static OnnxTestSupport;

// Every refusal is a TinyTrainException whose one line names the file, the node or tensor, and what to do.
public class OnnxImportErrorTests
{
    [Fact]
    public void MaxPool_NamesNodeAndOpType()
    {
        var random = new Random(1);
        var b = new OnnxModelBuilder().Input("input", 1, 8, 8).Output("logits", 4);
        b.RandomFloats("w", new long[] { 4, 1, 3, 3 }, random);
        b.Node("Conv", "conv", new[] { "input", "w" }, "c").Attribute.Add(Ints("pads", 1, 1, 1, 1));
        NodeProto pool = b.Node("MaxPool", "pool1", new[] { "c" }, "p");
        pool.Attribute.Add(new[] { Ints("kernel_shape", 2, 2), Ints("strides", 2, 2) });
        b.Node("GlobalAveragePool", "gap", new[] { "p" }, "g");
        b.Node("Flatten", "flat", new[] { "g" }, "logits");

        string dir = Directory.CreateTempSubdirectory("tinytrain-onnx").FullName;
        try
        {
            string path = Path.Combine(dir, "model.onnx");
            File.WriteAllBytes(path, b.Build());
            var ex = Assert.Throws<TinyTrainException>(() => OnnxImporter.Import(path));
            Assert.StartsWith($"{path}: node 'pool1' has op type 'MaxPool', which TinyTrain does not support (supported: Conv, ", ex.Message);
            AssertOneLine(ex);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void TruncatedFile_SaysDamaged()
    {
        byte[] model = Export(AllOps());
        var ex = ImportFails(model[..(model.Length / 2)], "half.onnx");
        Assert.StartsWith("half.onnx: the file is damaged", ex.Message);
        Assert.Contains("not an ONNX model", ex.Message);
        AssertOneLine(ex);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void RandomBytes_SayNotAnOnnxModel(int seed)
    {
        var bytes = new byte[1000 * seed];
        new Random(seed).NextBytes(bytes);
        var ex = ImportFails(bytes, "noise.bin");
        Assert.StartsWith("noise.bin: the file is damaged", ex.Message);
        Assert.Contains("not an ONNX model", ex.Message);
        AssertOneLine(ex);
    }

    [Fact]
    public void EmptyFile_SaysNotAnOnnxModel()
    {
        var ex = ImportFails(Array.Empty<byte>(), "empty.onnx");
        Assert.Contains("not an ONNX model", ex.Message);
    }

    [Fact]
    public void MissingFile_SaysNotFound()
    {
        var ex = Assert.Throws<TinyTrainException>(() => OnnxImporter.Import("/nonexistent/dir/model.onnx"));
        Assert.Equal("/nonexistent/dir/model.onnx: file not found", ex.Message);
    }

    // Damaged files that still parse as protobuf: whatever happens, only our exception type, one line.
    [Fact]
    public void CorruptedBytes_NeverThrowAnythingElse()
    {
        byte[] original = Export(Heads());
        var random = new Random(99);
        int refused = 0;
        for (int trial = 0; trial < 300; trial++)
        {
            var bytes = (byte[])original.Clone();
            int flips = 1 + random.Next(4);
            for (int f = 0; f < flips; f++) bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
            try
            {
                Import(bytes);
            }
            catch (TinyTrainException ex)
            {
                refused++;
                AssertOneLine(ex);
            }
        }
        Assert.True(refused > 0);
    }

    [Fact]
    public void MissingInitializer_NamesNodeAndTensor()
    {
        ModelProto model = Parse(Export(AllOps()));
        model.Graph.Initializer.Remove(model.Graph.Initializer.Single(t => t.Name == "dw.weight"));
        var ex = ImportFails(model.ToByteArray());
        Assert.Equal("model.onnx: node 'dw' (Conv) reads 'dw.weight', which is neither an initializer nor the output of an earlier node; the file is missing that tensor", ex.Message);
    }

    [Fact]
    public void WrongWeightShape_NamesNodeAndTensor()
    {
        ModelProto model = Parse(Export(AllOps()));
        TensorProto w = model.Graph.Initializer.Single(t => t.Name == "pw.weight");   // [8, 8, 1, 1]
        w.Dims.Clear();
        w.Dims.Add(new long[] { 16, 4, 1, 1 });
        var ex = ImportFails(model.ToByteArray());
        Assert.Equal("model.onnx: node 'pw' (Conv) has weight 'pw.weight' of shape [16, 4, 1, 1]; for an input of 8 channels and group 1 it must be [16, 8, 1, 1]", ex.Message);
    }

    [Fact]
    public void WeightDataOfWrongLength_SaysDamaged()
    {
        ModelProto model = Parse(Export(AllOps()));
        TensorProto w = model.Graph.Initializer.Single(t => t.Name == "fc.weight");
        w.RawData = ByteString.CopyFrom(w.RawData.Span[..^4]);
        var ex = ImportFails(model.ToByteArray());
        Assert.StartsWith("model.onnx: initializer 'fc.weight' of shape [10, 16] should hold 640 bytes of data but holds 636", ex.Message);
    }

    [Fact]
    public void TwoInputs_Refused()
    {
        ModelProto model = Parse(Export(AllOps()));
        model.Graph.Input.Add(ValueInfo("mask", TensorProto.Types.DataType.Float, null, 3, 16, 16));
        var ex = ImportFails(model.ToByteArray());
        Assert.StartsWith("model.onnx: the graph has 2 inputs ('input', 'mask'); a TinyTrain model takes exactly one image input", ex.Message);
    }

    [Fact]
    public void TwoOutputs_Refused()
    {
        ModelProto model = Parse(Export(AllOps()));
        model.Graph.Output.Add(ValueInfo("gap", TensorProto.Types.DataType.Float, null, 16, 1, 1));
        var ex = ImportFails(model.ToByteArray());
        Assert.StartsWith("model.onnx: the graph has 2 outputs ('logits', 'gap'); a TinyTrain model has exactly one output", ex.Message);
    }

    [Fact]
    public void NodesOutOfOrder_SaysNotTopological()
    {
        ModelProto model = Parse(Export(AllOps()));
        NodeProto first = model.Graph.Node[0];
        model.Graph.Node.RemoveAt(0);
        model.Graph.Node.Add(first);
        var ex = ImportFails(model.ToByteArray());
        Assert.Equal("model.onnx: node 'conv1.bn' (BatchNormalization) reads 'conv1', which node 'conv1' computes later; the graph is not in topological order (re-export it, or sort it with onnx's tools)", ex.Message);
    }

    [Fact]
    public void HalfPrecisionInput_Refused()
    {
        ModelProto model = Parse(Export(AllOps()));
        model.Graph.Input[0].Type.TensorType.ElemType = (int)TensorProto.Types.DataType.Float16;
        var ex = ImportFails(model.ToByteArray());
        Assert.Equal("model.onnx: input 'input' has element type FLOAT16; TinyTrain needs float32: export the model in float32", ex.Message);
    }

    [Fact]
    public void HalfPrecisionWeight_NamesTensor()
    {
        ModelProto model = Parse(Export(AllOps()));
        TensorProto w = model.Graph.Initializer.Single(t => t.Name == "conv1.weight");
        w.DataType = (int)TensorProto.Types.DataType.Float16;
        var ex = ImportFails(model.ToByteArray());
        Assert.StartsWith("model.onnx: initializer 'conv1.weight' has element type FLOAT16; TinyTrain reads float32 weights", ex.Message);
    }

    [Fact]
    public void ThreeDimensionalInput_Refused()
    {
        ModelProto model = Parse(Export(AllOps()));
        model.Graph.Input[0].Type.TensorType.Shape.Dim.RemoveAt(3);
        var ex = ImportFails(model.ToByteArray());
        Assert.Equal("model.onnx: input 'input' has rank 3; TinyTrain needs a 4-D float input (N, C, H, W)", ex.Message);
    }

    [Fact]
    public void AsymmetricPads_Refused()
    {
        ModelProto model = Parse(Export(AllOps()));
        AttributeProto pads = model.Graph.Node.Single(n => n.Name == "conv1").Attribute.Single(a => a.Name == "pads");
        pads.Ints.Clear();
        pads.Ints.Add(new long[] { 0, 0, 1, 1 });
        var ex = ImportFails(model.ToByteArray());
        Assert.StartsWith("model.onnx: node 'conv1' (Conv) has asymmetric pads [0, 0, 1, 1] (top, left, bottom, right); TinyTrain pads both sides equally", ex.Message);
    }

    [Fact]
    public void ClipToOtherRange_Refused()
    {
        ModelProto model = Parse(Export(AllOps()));
        model.Graph.Initializer.Single(t => t.Name == "relu6.max").RawData = ByteString.CopyFrom(BitConverter.GetBytes(3f));
        var ex = ImportFails(model.ToByteArray());
        Assert.Equal("model.onnx: node 'dw.relu6' (Clip) clips to [0, 3]; TinyTrain supports Clip only as ReLU [0, inf) or ReLU6 [0, 6]", ex.Message);
    }

    [Fact]
    public void OtherDomain_Refused()
    {
        ModelProto model = Parse(Export(AllOps()));
        model.Graph.Node.Single(n => n.Name == "conv1.relu").Domain = "com.microsoft";
        var ex = ImportFails(model.ToByteArray());
        Assert.StartsWith("model.onnx: node 'conv1.relu' has op type 'com.microsoft.Relu', which TinyTrain does not support", ex.Message);
    }

    [Fact]
    public void BroadcastAdd_Refused()
    {
        var random = new Random(2);
        var b = new OnnxModelBuilder().Input("input", 2, 4, 4).Output("logits", 2);
        b.RandomFloats("w", new long[] { 2, 2, 1, 1 }, random).RandomFloats("k", new long[] { 2, 1, 1 }, random);
        b.Node("Conv", "conv", new[] { "input", "w" }, "c");
        b.Node("Add", "shift", new[] { "c", "k" }, "s");
        b.Node("GlobalAveragePool", "gap", new[] { "s" }, "g");
        b.Node("Flatten", "flat", new[] { "g" }, "logits");
        var ex = ImportFails(b.Build());
        Assert.Equal("model.onnx: node 'shift' (Add) adds the constant 'k'; TinyTrain supports adding a constant only as the bias right after a MatMul", ex.Message);
    }

    [Fact]
    public void NoGraph_SaysNotAnOnnxModel()
    {
        var model = new ModelProto { IrVersion = 8, ProducerName = "x" };
        var ex = ImportFails(model.ToByteArray(), "weights.pb");
        Assert.Equal("weights.pb: the file is damaged or is not an ONNX model: it holds no graph; export the model again", ex.Message);
    }

    private static void AssertOneLine(Exception ex)
    {
        Assert.DoesNotContain('\n', ex.Message);
        Assert.False(string.IsNullOrWhiteSpace(ex.Message));
    }
}
