using Onnx;

namespace TinyTrain.Compiler.Tests.Onnx;

using TinyTrain.Compiler.Graphs;
using static OnnxModelBuilder;
using static OnnxTestSupport;

// Files laid out the way PyTorch's exporter writes them (hand-built here, since the tests cannot
// run PyTorch): they must import, and the imported graph must compute what ONNX Runtime computes.
public class OnnxPyTorchStyleTests
{
    // Opset 13: Clip(min, max) as inputs, x.view(x.size(0), -1) as Shape/Gather/Unsqueeze/Concat/Reshape,
    // nn.Linear as MatMul + Add, weights partly as float_data.
    [Fact]
    public void Opset13_MatMulAdd_ShapeArithmeticReshape_ImportsAndMatchesOrt()
    {
        var random = new Random(21);
        var b = new OnnxModelBuilder(opset: 13, irVersion: 7).Input("x.1", 3, 12, 12).Output("out", 7);
        b.RandomFloats("conv.weight", new long[] { 8, 3, 3, 3 }, random, raw: false).RandomFloats("conv.bias", new long[] { 8 }, random);
        b.RandomFloats("bn.weight", new long[] { 8 }, random).RandomFloats("bn.bias", new long[] { 8 }, random);
        b.RandomFloats("bn.running_mean", new long[] { 8 }, random).Floats("bn.running_var", new long[] { 8 }, Enumerable.Repeat(1.5f, 8).ToArray());
        b.RandomFloats("dw.weight", new long[] { 8, 1, 3, 3 }, random);
        b.RandomFloats("fc.weight_t", new long[] { 8, 7 }, random).RandomFloats("fc.bias", new long[] { 7 }, random, raw: false);
        b.Int64s("minus_one", -1).Int64s("zero_axis", 0);
        b.Floats("clip.min", Array.Empty<long>(), new[] { 0f }).Floats("clip.max", Array.Empty<long>(), new[] { 6f });

        NodeProto conv = b.Node("Conv", "/conv/Conv", new[] { "x.1", "conv.weight", "conv.bias" }, "/conv/Conv_output_0");
        conv.Attribute.Add(new[] { Ints("dilations", 1, 1), Int("group", 1), Ints("kernel_shape", 3, 3), Ints("pads", 1, 1, 1, 1), Ints("strides", 2, 2) });
        b.Node("BatchNormalization", "/bn/BatchNormalization", new[] { "/conv/Conv_output_0", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var" }, "/bn/out")
            .Attribute.Add(new[] { Float("epsilon", 1e-3f), Float("momentum", 0.9f) });
        b.Node("Clip", "/act/Clip", new[] { "/bn/out", "clip.min", "clip.max" }, "/act/Clip_output_0");
        b.Node("Identity", "/id", new[] { "/act/Clip_output_0" }, "/id/out");
        NodeProto dw = b.Node("Conv", "/dw/Conv", new[] { "/id/out", "dw.weight" }, "/dw/out");
        dw.Attribute.Add(new[] { Int("group", 8), Ints("kernel_shape", 3, 3), Ints("pads", 1, 1, 1, 1) });
        b.Node("Clip", "/relu/Clip", new[] { "/dw/out", "clip.min", "" }, "/relu/out");
        b.Node("GlobalAveragePool", "/pool/GlobalAveragePool", new[] { "/relu/out" }, "/pool/out");
        b.Node("Shape", "/Shape", new[] { "/pool/out" }, "/Shape_output_0");
        b.Node("Constant", "/Constant", Array.Empty<string>(), "/Constant_output_0").Attribute.Add(new AttributeProto
        {
            Name = "value",
            Type = AttributeProto.Types.AttributeType.Tensor,
            T = new TensorProto { DataType = (int)TensorProto.Types.DataType.Int64, Int64Data = { 0 } },
        });
        b.Node("Gather", "/Gather", new[] { "/Shape_output_0", "/Constant_output_0" }, "/Gather_output_0").Attribute.Add(Int("axis", 0));
        b.Node("Unsqueeze", "/Unsqueeze", new[] { "/Gather_output_0", "zero_axis" }, "/Unsqueeze_output_0");
        b.Node("Concat", "/Concat", new[] { "/Unsqueeze_output_0", "minus_one" }, "/Concat_output_0").Attribute.Add(Int("axis", 0));
        b.Node("Reshape", "/Reshape", new[] { "/pool/out", "/Concat_output_0" }, "/Reshape_output_0");
        b.Node("MatMul", "/fc/MatMul", new[] { "/Reshape_output_0", "fc.weight_t" }, "/fc/MatMul_output_0");
        b.Node("Add", "/fc/Add", new[] { "fc.bias", "/fc/MatMul_output_0" }, "/fc/out");
        b.Node("Dropout", "/drop", new[] { "/fc/out" }, "out");
        byte[] model = b.Build();

        Graph graph = Import(model, "torch13.onnx");

        Assert.Equal("torch13", graph.Name);
        Assert.Equal(
            new[] { OpKind.Input, OpKind.Conv2d, OpKind.BatchNorm, OpKind.Relu6, OpKind.Conv2d, OpKind.Relu, OpKind.GlobalAvgPool, OpKind.Flatten, OpKind.Linear },
            graph.Nodes.Select(n => n.Kind));
        Node fc = graph.Output;
        Assert.Equal(new[] { 7, 8 }, fc.Weight!.Dims);
        Assert.NotNull(fc.Bias);
        Assert.Equal(0.1f, graph.Nodes[2].Momentum);
        Assert.Equal(8, graph.Nodes[4].Groups);
        AssertMatchesOrt(graph, model, batch: 4);
    }

    // Opset 9: Clip's bounds as attributes, Gemm with transB = 0, Flatten, Dropout with its mask
    // output, Reshape by an int64 initializer, ReLU6 as Clip(0, 6), a fixed batch of 1.
    [Fact]
    public void Opset9_GemmFlattenAttributeClip_ImportsAndMatchesOrt()
    {
        var random = new Random(22);
        var b = new OnnxModelBuilder(opset: 9, irVersion: 4).Input("input.1", 2, 8, 8, symbolicBatch: false).Output("logits", 5);
        b.RandomFloats("1", new long[] { 6, 2, 3, 3 }, random);
        b.RandomFloats("2", new long[] { 24, 10 }, random);       // (In, Out): transB = 0
        b.RandomFloats("3", new long[] { 10 }, random);
        b.RandomFloats("4", new long[] { 5, 10 }, random);        // (Out, In): transB = 1
        b.RandomFloats("5", new long[] { 5 }, random);
        b.Int64s("shape", 1, -1);

        NodeProto conv = b.Node("Conv", "Conv_0", new[] { "input.1", "1" }, "7");
        conv.Attribute.Add(new[] { Ints("kernel_shape", 3, 3), Ints("pads", 0, 0, 0, 0), Ints("strides", 1, 1) });
        NodeProto clip = b.Node("Clip", "Clip_1", new[] { "7" }, "8");
        clip.Attribute.Add(new[] { Float("min", 0f), Float("max", 6f) });
        NodeProto pool = b.Node("AveragePool", "AveragePool_2", new[] { "8" }, "9");
        pool.Attribute.Add(new[] { Ints("kernel_shape", 3, 3), Ints("strides", 3, 3), Ints("pads", 0, 0, 0, 0) });
        b.Node("Flatten", "Flatten_3", new[] { "9" }, "10").Attribute.Add(Int("axis", 1));
        b.Node("Dropout", "Dropout_4", new[] { "10" }, "11", "12");
        NodeProto gemm1 = b.Node("Gemm", "Gemm_5", new[] { "11", "2", "3" }, "13");
        gemm1.Attribute.Add(new[] { Float("alpha", 1f), Float("beta", 1f), Int("transB", 0) });
        NodeProto relu = b.Node("Clip", "Clip_6", new[] { "13" }, "14");
        relu.Attribute.Add(Float("min", 0f));
        b.Node("Reshape", "Reshape_7", new[] { "14", "shape" }, "15");
        NodeProto gemm2 = b.Node("Gemm", "Gemm_8", new[] { "15", "4", "5" }, "logits");
        gemm2.Attribute.Add(new[] { Float("alpha", 1f), Float("beta", 1f), Int("transB", 1) });
        byte[] model = b.Build();

        Graph graph = Import(model, "torch9.onnx");

        Assert.Equal(
            new[] { OpKind.Input, OpKind.Conv2d, OpKind.Relu6, OpKind.AvgPool, OpKind.Flatten, OpKind.Linear, OpKind.Relu, OpKind.Linear },
            graph.Nodes.Select(n => n.Kind));
        Assert.Equal(new[] { 10, 24 }, graph.Nodes[5].Weight!.Dims);
        AssertMatchesOrt(graph, model, batch: 1);
    }

    private static void AssertMatchesOrt(Graph graph, byte[] model, int batch)
    {
        float[] x = RandomInput(graph.InputShape, batch, seed: 31);
        AssertClose(RunOrt(model, x, batch, graph.InputShape, graph.NumClasses), RunFloat(graph, x, batch));
    }
}
