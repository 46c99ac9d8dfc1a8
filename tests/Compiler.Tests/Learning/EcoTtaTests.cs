using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Graphs;
using TinyTrain.Compiler.Learning;
using TinyTrain.Compiler.Passes;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Runtime.Adaptation;
using TinyTrain.Runtime.Execution;
using TinyTrain.Runtime.Kernels;
using TinyTrain.Runtime.Plans;
using OpKind = TinyTrain.Compiler.Graphs.OpKind;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

namespace TinyTrain.Compiler.Tests.Learning;

/// <summary>tta:eco (EcoTTA meta networks + L1 self-distillation) on cnn-s trained briefly on mnist-mini.</summary>
public class EcoTtaTests : IClassFixture<TtaFixture>
{
    private readonly TtaFixture _f;
    private readonly Lazy<PlanImage> _eco;

    public EcoTtaTests(TtaFixture fixture)
    {
        _f = fixture;
        _eco = new Lazy<PlanImage>(() => fixture.Compile("tta:eco"));
    }

    private PlanImage Eco => _eco.Value;

    private static float Stream(TestTimeAdapter adapter, Dataset data, int count = 0)
    {
        count = count > 0 ? Math.Min(count, data.Count) : data.Count;
        var values = new float[data.PixelsPerImage];
        int correct = 0;
        for (int i = 0; i < count; i++)
        {
            data.CopyImage(i, values);
            if (adapter.Step(values, 0) == data.Labels[i]) correct++;
        }
        return (float)correct / count;
    }

    private static byte[] Logits(Executor executor, Dataset data, int index)
    {
        var values = new float[data.PixelsPerImage];
        data.CopyImage(index, values);
        Assert.True(executor.TrySetInput(values, 0));
        executor.Invoke();
        var z = new byte[executor.OutputLength];
        for (int i = 0; i < z.Length; i++) z[i] = (byte)executor.Output(i);
        return z;
    }

    [Fact]
    public void The_rewrite_puts_a_meta_network_at_the_end_of_each_part()
    {
        // cnn-s: three conv blocks at 28, 14 and 7 pixels, none crossed by a skip connection.
        Assert.Equal(["conv1.relu", "conv2.relu", "conv3.relu"], MetaNetworks.Places(_f.Graph).ConvertAll(n => n.Name));
        Assert.Equal(["conv1.relu", "conv2.relu", "conv3.relu"], MetaNetworks.PartEnds(_f.Graph, "tta:eco:3").ConvertAll(n => n.Name));
        Assert.Equal(["conv3.relu"], MetaNetworks.PartEnds(_f.Graph, "tta:eco").ConvertAll(n => n.Name));
        Assert.Equal(["conv2.relu", "conv3.relu"], MetaNetworks.PartEnds(_f.Graph, "tta:eco:2").ConvertAll(n => n.Name));
        Assert.Equal(["conv3.relu"], MetaNetworks.PartEnds(_f.Graph, "tta:eco:1").ConvertAll(n => n.Name));
        Graph rewritten = MetaNetworks.Apply(_f.Graph, "tta:eco:2");
        Node meta = rewritten.Nodes.Single(n => n.Name == "conv3" + MetaNetworks.ConvSuffix);
        Assert.Equal((1, 64), (meta.Kernel, meta.Shape.C));
        Assert.All(meta.Weight!.Data, w => Assert.Equal(0f, w));
        Node join = rewritten.Nodes.Single(n => n.Name == "conv3" + MetaNetworks.JoinSuffix);
        Assert.Equal(OpKind.Add, join.Kind);
        Assert.Contains(rewritten.Nodes, n => n.Kind == OpKind.Flatten && n.Inputs[0] == join.Id);
        Node dw = MetaNetworks.Apply(_f.Graph, "tta:eco:dw").Nodes.Single(n => n.Name == "conv3" + MetaNetworks.ConvSuffix);
        Assert.True(dw.IsDepthwise);
        Assert.Equal(3, dw.Kernel);
    }

    [Fact]
    public void The_trainable_set_is_the_meta_networks_and_the_scale_shift_after_the_first_and_backward_stops_there()
    {
        CompileResult result = PlanCompiler.Compile(_f.Graph, _f.Calibration, new CompileOptions { Update = "tta:eco:2" });
        var trained = new List<string>();
        for (int i = 0; i < result.Model.Ops.Count; i++)
            if (result.Program.Trainable.PerOp[i].Any) trained.Add(result.Model.Ops[i].Name);
        Assert.Equal(["conv2.eco", "conv3.norm", "conv3.eco"], trained);
        Assert.Equal(2, result.Program.Trainable.Distilled.Count);
        // Nothing is propagated into conv2 or conv1: the last backward op is the first meta network's update.
        POp last = result.Program.Ops[^1];
        Assert.Equal("conv2.eco.update", last.Name);
        Assert.DoesNotContain(result.Program.Ops, o => o.Name.StartsWith("conv2.grad", StringComparison.Ordinal) || o.Name.StartsWith("conv1", StringComparison.Ordinal) && o.Phase != OpPhase.Forward && o.Phase != OpPhase.Save);
        Assert.Equal(2, result.Program.Ops.Count(o => o.Kind == TinyTrain.Runtime.Plans.OpKind.DistillGradient));
    }

    [Fact]
    public void A_fresh_eco_plan_gives_exactly_the_logits_of_the_plan_without_meta_networks()
    {
        // The meta convs start at zero: each join adds exactly nothing, so the logits match bit for bit.
        var tent = new Executor(_f.Tent);
        foreach (string spec in new[] { "tta:eco", "tta:eco:3", "tta:eco:2:dw" })
        {
            var eco = new Executor(spec == "tta:eco" ? Eco : _f.Compile(spec));
            for (int i = 0; i < 100; i++) Assert.Equal(Logits(tent, _f.Test, i), Logits(eco, _f.Test, i));
        }
    }

    [Fact]
    public void Adapting_on_a_shifted_stream_improves_accuracy_over_the_source()
    {
        float source = PlanEvaluator.Evaluate(_f.Source, _f.Shifted).Accuracy;
        var executor = new Executor(Eco) { LearningRate = 0.05f };
        byte[] initial = (byte[])executor.Params.Clone();
        var adapter = new TestTimeAdapter(executor, 0f);
        float adapted = Stream(adapter, _f.Shifted);
        Assert.True(adapted > source + 0.05f, $"source {source:P1}, tta:eco {adapted:P1}");
        Assert.True(adapter.Adapted > 0);
        Assert.NotEqual(initial, executor.Params);
    }

    [Fact]
    public void A_long_stream_of_noise_then_clean_images_keeps_the_source_accuracy()
    {
        float source = PlanEvaluator.Evaluate(_f.Source, _f.Test).Accuracy;
        var random = new Random(5);
        int pixels = _f.Test.PixelsPerImage;
        var images = new byte[2000 * pixels];
        for (int i = 0; i < images.Length; i++) images[i] = (byte)random.Next(256);
        var noise = new Dataset("noise", Split.Test, images, new byte[2000], _f.Test.ClassNames, _f.Test.Rows, _f.Test.Cols);
        float threshold = TinyTrain.Compiler.Ood.OodCalibration.Calibrate(Eco, new Runtime.Ood.MaxSoftmaxScorer(Eco), _f.Train, _f.Train.Count - 500, 500).Value;
        var adapter = new TestTimeAdapter(new Executor(Eco) { LearningRate = 0.05f }, threshold);
        Stream(adapter, noise);
        float clean = Stream(adapter, _f.Test);
        Assert.True(clean >= source - 0.01f, $"clean after noise {clean:P1}, source {source:P1}; adapted {adapter.Adapted}, resets {adapter.Resets}");
    }

    [Fact]
    public void The_self_distillation_keeps_the_meta_networks_outputs_near_the_frozen_parts()
    {
        // The same shifted stream with lambda 0 and with a large lambda: the L1 pull keeps |x~ - x| = |m| smaller.
        double Distance(float lambda)
        {
            CompileResult result = PlanCompiler.Compile(_f.Graph, _f.Calibration,
                new CompileOptions { Update = "tta:eco", Training = new TrainingOptions { DistillWeight = lambda } });
            var plan = PlanImage.Load(result.Image, "eco.ttplan");
            var executor = new Executor(plan) { LearningRate = 0.05f };
            Stream(new TestTimeAdapter(executor, 0f), _f.Shifted, 300);
            int m = Enumerable.Range(0, plan.TensorCount).Single(t => plan.Tensor(t).Name() == "conv3.eco");
            TensorInfo info = plan.Tensor(m);
            double sum = 0;
            var values = new float[_f.Shifted.PixelsPerImage];
            for (int i = 300; i < 350; i++)
            {
                _f.Shifted.CopyImage(i, values);
                executor.TrySetInput(values, 0);
                executor.Invoke();
                for (int k = 0; k < info.ElementCount; k++) sum += Math.Abs((sbyte)executor.Arena[info.ArenaOffset + k] - info.ZeroPoint) * info.Scale;
            }
            return sum / (50.0 * info.ElementCount);
        }
        double free = Distance(0f), pulled = Distance(20f);
        Assert.True(free > 0, "the meta network did not move at all");
        Assert.True(pulled < 0.7 * free, $"mean |m| of the last meta network: {free:F4} with lambda 0, {pulled:F4} with lambda 20");
    }

    [Fact]
    public void An_adaptation_step_allocates_nothing_and_touches_exactly_the_planned_arena()
    {
        var executor = new Executor(Eco);
        var values = new float[_f.Test.PixelsPerImage];
        for (int i = 0; i < 20; i++)
        {
            _f.Test.CopyImage(i, values);
            executor.TrySetInput(values, 0);
            executor.AdaptStep();
        }
        long start = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 50; i++)
        {
            _f.Test.CopyImage(i, values);
            executor.TrySetInput(values, 0);
            executor.AdaptStep();
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - start);

        var quantizer = InputQuantizer.For(Eco);
        byte[] input = new byte[quantizer.Length];
        for (int i = 0; i < 100; i++)
        {
            quantizer.Fill(_f.Test, i, input, 0);
            int high = ArenaProbe.MeasureAdaptStep(Eco, input, 0, out bool learned);
            if (!learned) continue;
            Assert.Equal(Eco.ArenaBytes, high);
            return;
        }
        Assert.Fail("no test image passed the entropy filter");
    }

    [Theory]
    [InlineData("tta:eco:0", "K must be a whole number from 1 to 3")]
    [InlineData("tta:eco:4", "K must be a whole number from 1 to 3")]
    [InlineData("tta:eco:x", "K must be a whole number from 1 to 3")]
    [InlineData("tta:eco:dw:2", "write tta:eco[:K][:dw]")]
    [InlineData("tta:eco:", "K must be a whole number from 1 to 3")]
    [InlineData("tta:eco2", "not a test-time adaptation")]
    public void Bad_eco_specs_are_refused_with_what_to_use(string spec, string message)
    {
        var e = Assert.Throws<TinyTrainException>(() => _f.Compile(spec));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void A_model_with_no_place_for_a_meta_network_is_refused()
    {
        // A model without a spatial block end (a linear classifier on the pixels) has nowhere to put one.
        var mlp = new GraphBuilder("mlp", 0);
        Node input = mlp.Input(new Shape(1, 4, 4));
        mlp.Linear(mlp.Flatten(input, "flat"), 3, bias: true, name: "fc");
        Graph flat = mlp.Build();
        var e = Assert.Throws<TinyTrainException>(() => PlanCompiler.Compile(flat, CalibrationSet.Random(flat.InputShape, 4, 0), new CompileOptions { Update = "tta:eco" }));
        Assert.Contains("has no place for a meta network", e.Message);
        Assert.Contains("tta:norm or tta:tent", e.Message);
    }

    [Fact]
    public void The_distillation_gradient_adds_the_sign_of_the_meta_output()
    {
        // m = [-3, 0, 5] around zero point 2 (q = -1, 2, 7); dy = [0.5, -1, 2]; weight 0.25.
        byte[] m = [unchecked((byte)(sbyte)-1), 2, 7];
        byte[] dy = new byte[12], dm = new byte[12];
        float[] g = [0.5f, -1f, 2f];
        for (int i = 0; i < 3; i++) FloatBits.Write(dy, 4 * i, g[i]);
        Distill.Gradient(m, 0, 2, dy, 0, 3, 0.25f, dm, 0);
        Assert.Equal([0.25f, -1f, 2.25f], [FloatBits.Read(dm, 0), FloatBits.Read(dm, 4), FloatBits.Read(dm, 8)]);
        Distill.Gradient(m, 0, 2, dy, 0, 3, 0.25f, dy, 0);   // in place over dy
        Assert.Equal(0.25f, FloatBits.Read(dy, 0));
    }
}
