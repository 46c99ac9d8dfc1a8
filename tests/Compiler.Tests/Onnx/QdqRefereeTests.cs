using Onnx;
using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Onnx;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Compiler.Training;
using TinyTrain.Compiler.Zoo;
using Xunit.Abstractions;
using PlanImage = TinyTrain.Runtime.Plan.Plan;
using PlanOpKind = TinyTrain.Runtime.Plan.OpKind;

namespace TinyTrain.Compiler.Tests.Onnx;

/// <summary>cnn-s trained briefly on the bundled Fashion-MNIST subset and compiled with calibration on its train split.</summary>
public sealed class QdqCnnFixture
{
    public QdqCnnFixture()
    {
        Train = DataCatalog.Load("fashion-mnist-mini", Split.Train);
        Test = DataCatalog.Load("fashion-mnist-mini", Split.Test);
        var graph = ModelZoo.Build("cnn-s", seed: 0);
        Trainer.Train(graph, Train, Test, new TrainOptions { Epochs = 2, BatchSize = 32, Seed = 0 });
        Result = PlanCompiler.Compile(graph, CalibrationSet.FromData(Train, graph.InputShape, 512), new CompileOptions());
        Plan = PlanImage.Load(Result.Image, "cnn-s.ttplan");
        Model = QdqTestSupport.Export(Plan);
    }

    public Dataset Train { get; }
    public Dataset Test { get; }
    public CompileResult Result { get; }
    public PlanImage Plan { get; }
    public byte[] Model { get; }
}

// ONNX Runtime runs the QDQ export of a plan with its own int8 kernels; the runtime runs the plan.
// Our kernels requantize in fixed point (TFLite), ORT's in float, so a logit may differ by one step
// where the exact value lies near a rounding tie, and never by more.
public class QdqRefereeTests : IClassFixture<QdqCnnFixture>
{
    private readonly QdqCnnFixture _cnn;
    private readonly ITestOutputHelper _log;

    public QdqRefereeTests(QdqCnnFixture cnn, ITestOutputHelper log)
    {
        _cnn = cnn;
        _log = log;
    }

    [Fact]
    public void Trained_cnn_s_ort_int8_logits_are_within_one_lsb_on_every_test_image()
    {
        Agreement a = QdqTestSupport.Compare(_cnn.Plan, _cnn.Model, _cnn.Test, _cnn.Test.Count);
        _log.WriteLine($"cnn-s, fashion-mnist-mini test: {a}");
        Assert.Equal(1000, a.Images);
        Assert.True(a.MaxDiff <= 1, $"cnn-s: {a}");
        Assert.True(a.Top1Agreement >= 0.999, $"cnn-s: {a}");
    }

    [Fact]
    public void Mbv2_with_depthwise_convs_residual_adds_and_global_pooling_is_within_one_lsb()
    {
        Dataset train = DataCatalog.Load("mnist-mini", Split.Train), test = DataCatalog.Load("mnist-mini", Split.Test);
        var graph = OnnxTestSupport.Randomize(ModelZoo.Build("mbv2-w0.35", resolution: 32, classes: 10, seed: 3), seed: 3);
        CompileResult result = PlanCompiler.Compile(graph, CalibrationSet.FromData(train, graph.InputShape, 256), new CompileOptions());
        var plan = PlanImage.Load(result.Image, "mbv2.ttplan");
        var kinds = new HashSet<PlanOpKind>();
        for (int i = 0; i < plan.ForwardOpCount; i++) kinds.Add(plan.Op(i).Kind);
        Assert.Superset(new HashSet<PlanOpKind> { PlanOpKind.Conv2D, PlanOpKind.DepthwiseConv2D, PlanOpKind.Add, PlanOpKind.GlobalAvgPool, PlanOpKind.FullyConnected }, kinds);

        Agreement a = QdqTestSupport.Compare(plan, QdqTestSupport.Export(plan), test, 200);
        _log.WriteLine($"mbv2-w0.35 @32, random weights, mnist-mini test: {a}");
        Assert.True(a.MaxDiff <= 1, $"mbv2-w0.35: {a}");
    }

    [Fact]
    public void Ort_runs_the_export_with_int8_kernels()
    {
        // ORT fuses each DQ -> op -> Q group into an int8 kernel; a float Conv or Gemm left over would
        // mean that ORT ran our model in float and refereed nothing.
        string optimized = Path.Combine(Path.GetTempPath(), $"tinytrain-qdq-{Guid.NewGuid():N}.onnx");
        try
        {
            using (new OrtInt8Session(_cnn.Model, InputQuantizer.For(_cnn.Plan).Length, _cnn.Plan.NumClasses, optimized)) { }
            ModelProto model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(optimized));
            var ops = model.Graph.Node.Select(n => n.OpType).ToList();
            _log.WriteLine("ORT's optimized graph: " + string.Join(", ", ops));
            Assert.Contains("QLinearConv", ops);
            Assert.DoesNotContain("Conv", ops);
            Assert.DoesNotContain("Gemm", ops);
        }
        finally
        {
            File.Delete(optimized);
        }
    }

    [Fact]
    public void Weight_scales_recovered_from_the_plan_equal_the_quantizer_s()
    {
        QuantizedModel model = _cnn.Result.Model;
        for (int i = 0; i < _cnn.Plan.ForwardOpCount; i++)
        {
            float[]? expected = model.Ops[i].WeightScale;
            if (expected is null) continue;
            double[] actual = QdqExporter.WeightScales(_cnn.Plan, _cnn.Plan.Op(i));
            Assert.Equal(expected.Length, actual.Length);
            for (int c = 0; c < expected.Length; c++)
                Assert.True(Math.Abs(actual[c] - expected[c]) <= 1e-6 * expected[c], $"op {model.Ops[i].Name} channel {c}: {actual[c]} vs {expected[c]}");
        }
    }

    [Fact]
    public void Export_has_an_int8_input_int8_and_float_logits_and_the_plan_s_names()
    {
        ModelProto model = ModelProto.Parser.ParseFrom(_cnn.Model);
        Assert.Equal(8, model.IrVersion);
        Assert.Equal(13, model.OpsetImport.Single().Version);
        ValueInfoProto input = model.Graph.Input.Single();
        Assert.Equal("input", input.Name);
        Assert.Equal((int)TensorProto.Types.DataType.Int8, input.Type.TensorType.ElemType);
        Assert.Equal(new long[] { 1, 1, 28, 28 }, input.Type.TensorType.Shape.Dim.Select(d => d.DimValue));
        Assert.Equal(new[] { "logits_int8", "logits" }, model.Graph.Output.Select(o => o.Name));
        Assert.Equal((int)TensorProto.Types.DataType.Int8, model.Graph.Output[0].Type.TensorType.ElemType);
        Assert.Equal((int)TensorProto.Types.DataType.Float, model.Graph.Output[1].Type.TensorType.ElemType);
        Assert.Equal(new long[] { 1, 10 }, model.Graph.Output[1].Type.TensorType.Shape.Dim.Select(d => d.DimValue));

        var nodes = model.Graph.Node.Select(n => n.Name).ToHashSet();
        for (int i = 0; i < _cnn.Plan.ForwardOpCount; i++)
            Assert.Contains(_cnn.Plan.Tensor(_cnn.Plan.Op(i).Output).Name(), nodes);
        TensorProto weight = model.Graph.Initializer.First(t => t.Name.EndsWith(".weight", StringComparison.Ordinal));
        Assert.Equal((int)TensorProto.Types.DataType.Int8, weight.DataType);
        TensorProto bias = model.Graph.Initializer.First(t => t.Name.EndsWith(".bias", StringComparison.Ordinal));
        Assert.Equal((int)TensorProto.Types.DataType.Int32, bias.DataType);
    }
}
