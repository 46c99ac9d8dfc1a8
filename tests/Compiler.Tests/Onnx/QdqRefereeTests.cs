using Onnx;
using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Onnx;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Compiler.Training;
using TinyTrain.Compiler.Zoo;
using Xunit.Abstractions;
using TinyTrain.Runtime.Plans;
using PlanImage = TinyTrain.Runtime.Plans.Plan;
using PlanSurgery = TinyTrain.Compiler.Tests.Planning.PlanImage;
using PlanOpKind = TinyTrain.Runtime.Plans.OpKind;

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
    public void Mbv2_every_op_is_within_one_lsb_given_the_same_inputs()
    {
        // Depthwise convs, residual Adds, ReLU6 and a 2x2 global average pool. Random weights make a deep
        // net with a large gain, so end to end one-step rounding differences grow layer by layer (logged
        // below); op by op, fed the runtime's own inputs, ORT must agree within one step everywhere.
        Dataset train = DataCatalog.Load("mnist-mini", Split.Train), test = DataCatalog.Load("mnist-mini", Split.Test);
        var graph = OnnxTestSupport.Randomize(ModelZoo.Build("mbv2-w0.35", resolution: 64, classes: 10, seed: 3), seed: 3);
        CompileResult result = PlanCompiler.Compile(graph, CalibrationSet.FromData(train, graph.InputShape, 256), new CompileOptions());
        var plan = PlanImage.Load(result.Image, "mbv2.ttplan");
        var kinds = new HashSet<PlanOpKind>();
        for (int i = 0; i < plan.ForwardOpCount; i++) kinds.Add(plan.Op(i).Kind);
        Assert.Superset(new HashSet<PlanOpKind> { PlanOpKind.Conv2D, PlanOpKind.DepthwiseConv2D, PlanOpKind.Add, PlanOpKind.GlobalAvgPool, PlanOpKind.FullyConnected }, kinds);
        byte[] model = QdqTestSupport.Export(plan);
        var quantizer = InputQuantizer.For(plan);

        List<OpAgreement> ops = QdqTestSupport.CompareOpByOp(plan, model, (i, input) => quantizer.Fill(test, i, input, 0), 200);
        Agreement endToEnd = QdqTestSupport.Compare(plan, model, test, 200);
        LogOps("mbv2-w0.35 @64, random weights, mnist-mini test", ops);
        _log.WriteLine($"end to end (not asserted): {endToEnd}");
        AssertWithinOneLsb(ops);
    }

    [Fact]
    public void A_plan_with_a_streamed_input_and_stages_further_in_exports_the_same_model_and_ort_agrees_end_to_end()
    {
        // Patch stages and a streamed input change how the runtime schedules the ops, not what they compute: the export
        // is byte for byte the plain plan's, and ORT's logits agree with the streamed plan's as with the plain one's.
        Dataset train = DataCatalog.Load("mnist-mini", Split.Train), test = DataCatalog.Load("mnist-mini", Split.Test);
        var graph = OnnxTestSupport.Randomize(ModelZoo.Build("mbv2-w0.35", resolution: 64, classes: 10, seed: 3), seed: 3);
        CalibrationSet calibration = CalibrationSet.FromData(train, graph.InputShape, 256);
        var plain = PlanImage.Load(PlanCompiler.Compile(graph, calibration, new CompileOptions { Patch = "off" }).Image, "plain.ttplan");
        var streamed = PlanImage.Load(PlanCompiler.Compile(graph, calibration,
            new CompileOptions { Patch = "auto", StreamInput = true, PatchMidStages = true, InPlaceDepthwise = true, InPlacePointwise = true }).Image, "streamed.ttplan");
        Assert.True(streamed.Tensor(streamed.InputTensor).Streamed);
        byte[] model = QdqTestSupport.Export(plain);
        Assert.Equal(model, QdqTestSupport.Export(streamed));
        Agreement a = QdqTestSupport.Compare(plain, model, test, 50), b = QdqTestSupport.Compare(streamed, model, test, 50);
        Assert.Equal(a.ToString(), b.ToString());   // every field, the histogram included
    }

    [Fact]
    public void Average_pool_relu6_and_tight_clamps_are_within_one_lsb_given_the_same_inputs()
    {
        // The test graph with every op kind (AvgPool is in no zoo model), calibrated on random inputs; then
        // the same plan with clamps tighter than int8 saturation, which the export must write as Relu/Clip.
        Graphs.Graph graph = OnnxTestSupport.AllOps();
        CompileResult result = PlanCompiler.Compile(graph, CalibrationSet.Random(graph.InputShape, 64, seed: 7), new CompileOptions());
        var plan = PlanImage.Load(result.Image, "all-ops.ttplan");
        Action<int, byte[]> fill = (i, input) => new Random(i).NextBytes(input);
        List<OpAgreement> ops = QdqTestSupport.CompareOpByOp(plan, QdqTestSupport.Export(plan), fill, 100);
        LogOps("all-ops", ops);
        AssertWithinOneLsb(ops);
        Assert.Contains(ops, o => o.Kind == PlanOpKind.AvgPool);

        var clamped = PlanImage.Load(TightenClamps(plan), "all-ops-clamped.ttplan");
        byte[] model = QdqTestSupport.Export(clamped);
        var opTypes = ModelProto.Parser.ParseFrom(model).Graph.Node.Select(n => n.OpType).ToList();
        Assert.Contains("Relu", opTypes);
        Assert.Contains("Clip", opTypes);
        ops = QdqTestSupport.CompareOpByOp(clamped, model, fill, 100);
        LogOps("all-ops, tight clamps", ops);
        AssertWithinOneLsb(ops);
    }

    // The plan with ReLU at the zero point on every conv, an upper clip on every depthwise conv and a floor
    // above the zero point on every Add: clamps the quantizer does not make, but the format allows.
    private static byte[] TightenClamps(PlanImage plan)
    {
        byte[] image = (byte[])plan.Image.Clone();
        for (int i = 0; i < plan.ForwardOpCount; i++)
        {
            OpInfo op = plan.Op(i);
            int zeroPoint = plan.Tensor(op.Output).ZeroPoint;
            (int min, int max, int newMin, int newMax) = op.Kind switch
            {
                PlanOpKind.Conv2D => (4, 5, Math.Max(op.Arg(4), zeroPoint), op.Arg(5)),
                PlanOpKind.DepthwiseConv2D => (3, 4, op.Arg(3), Math.Min(op.Arg(4), 60)),
                PlanOpKind.Add => (7, 8, Math.Min(zeroPoint + 3, 100), op.Arg(8)),
                _ => (-1, -1, 0, 0),
            };
            if (min < 0) continue;
            PlanSurgery.Put32(image, PlanSurgery.OpArg(image, i, min), newMin);
            PlanSurgery.Put32(image, PlanSurgery.OpArg(image, i, max), newMax);
        }
        PlanSurgery.Seal(image);
        return image;
    }

    [Fact]
    public void Ort_runs_the_export_with_int8_kernels()
    {
        // ORT fuses each DQ -> op -> Q group into an int8 kernel; a float Conv or Gemm left over would
        // mean that ORT ran part of our model in float and refereed nothing there.
        List<string> ops = OptimizedOps(_cnn.Model, _cnn.Plan);
        _log.WriteLine("ORT's optimized graph: " + string.Join(", ", ops));
        Assert.Equal(3, ops.Count(op => op == "QLinearConv"));
        Assert.Contains("QGemm", ops);
        Assert.DoesNotContain(ops, op => op is "Conv" or "Gemm");
    }

    [Fact]
    public void Ort_runs_mobile_net_ops_with_int8_kernels()
    {
        var graph = ModelZoo.Build("mbv2-w0.35", resolution: 32, classes: 10, seed: 3);
        CompileResult result = PlanCompiler.Compile(graph, CalibrationSet.Random(graph.InputShape, 8, seed: 1), new CompileOptions());
        var plan = PlanImage.Load(result.Image, "mbv2.ttplan");
        List<string> ops = OptimizedOps(QdqTestSupport.Export(plan), plan);
        _log.WriteLine("ORT's optimized graph: " + string.Join(", ", ops.Distinct()));
        Assert.Contains("QLinearAdd", ops);
        Assert.Contains("QLinearGlobalAveragePool", ops);
        Assert.DoesNotContain(ops, op => op is "Conv" or "Gemm" or "Add" or "GlobalAveragePool" or "Clip" or "Relu");
        Assert.Equal(2, ops.Count(op => op == "QuantizeLinear"));     // only int8 -> uint8 in and uint8 -> int8 out
    }

    [Fact]
    public void Weight_scales_recovered_from_the_plan_equal_the_quantizer_s()
    {
        var quantized = _cnn.Result.Model.Ops.Where(o => o.WeightScale is not null).ToDictionary(o => o.Name);
        int checkedOps = 0;
        for (int i = 0; i < _cnn.Plan.ForwardOpCount; i++)
        {
            OpInfo op = _cnn.Plan.Op(i);
            if (op.Multiplier == PlanFormat.NoConstant) continue;
            float[] expected = quantized[_cnn.Plan.Tensor(op.Output).Name()].WeightScale!;
            double[] actual = QdqExporter.WeightScales(_cnn.Plan, op);
            Assert.Equal(expected.Length, actual.Length);
            for (int c = 0; c < expected.Length; c++)
                Assert.True(Math.Abs(actual[c] - expected[c]) <= 1e-6 * expected[c], $"op {i} channel {c}: {actual[c]} vs {expected[c]}");
            checkedOps++;
        }
        Assert.Equal(4, checkedOps);
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

    private void LogOps(string what, List<OpAgreement> ops)
    {
        long differing = ops.Sum(o => o.Differing), elements = ops.Sum(o => o.Elements);
        _log.WriteLine($"{what}: op by op, max {ops.Max(o => o.MaxDiff)} LSB, {differing}/{elements} values differ ({(double)differing / elements:P3})");
        foreach (OpAgreement o in ops) _log.WriteLine(o.ToString());
    }

    private static void AssertWithinOneLsb(List<OpAgreement> ops)
    {
        foreach (OpAgreement o in ops)
            Assert.True(o.MaxDiff <= 1, $"op {o}: ORT and the runtime differ by more than one step on the same inputs");
    }

    // The op types of the graph ORT actually runs (graph optimizations on, as in the referee tests).
    private static List<string> OptimizedOps(byte[] model, PlanImage plan)
    {
        string optimized = Path.Combine(Path.GetTempPath(), $"tinytrain-qdq-{Guid.NewGuid():N}.onnx");
        try
        {
            using (new OrtInt8Session(model, InputQuantizer.For(plan).Length, plan.NumClasses, optimized)) { }
            return ModelProto.Parser.ParseFrom(File.ReadAllBytes(optimized)).Graph.Node.Select(n => n.OpType).ToList();
        }
        finally
        {
            File.Delete(optimized);
        }
    }
}
