using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Learning;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Compiler.Training;
using TinyTrain.Compiler.Zoo;
using TinyTrain.Runtime.Adaptation;
using TinyTrain.Runtime.Execution;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

namespace TinyTrain.Compiler.Tests.Learning;

/// <summary>cnn-s trained briefly on mnist-mini, compiled as a source plan and as tta:norm / tta:tent plans.</summary>
public sealed class TtaFixture
{
    public TtaFixture()
    {
        Train = DataCatalog.Load("mnist-mini", Split.Train);
        Test = DataCatalog.Load("mnist-mini", Split.Test);
        Graph = ModelZoo.Build("cnn-s", seed: 0);
        Trainer.Train(Graph, Train, Test, new TrainOptions { Epochs = 3, BatchSize = 32, Seed = 0 });
        Calibration = CalibrationSet.FromData(Train, Graph.InputShape, 256);
        Source = Compile("none");
        Norm = Compile("tta:norm");
        Tent = Compile("tta:tent");
        Shifted = Corrupt(Test, v => 0.55f + 0.45f * v);
    }

    public Dataset Train { get; }
    public Dataset Test { get; }
    /// <summary>The test images with lowered contrast and raised brightness: a shift that norm statistics can undo.</summary>
    public Dataset Shifted { get; }
    public Graphs.Graph Graph { get; }
    public CalibrationSet Calibration { get; }
    public PlanImage Source { get; }
    public PlanImage Norm { get; }
    public PlanImage Tent { get; }

    public PlanImage Compile(string update) =>
        PlanImage.Load(PlanCompiler.Compile(Graph, Calibration, new CompileOptions { Update = update }).Image, $"cnn-s-{update}.ttplan");

    public static Dataset Corrupt(Dataset data, Func<float, float> pixel)
    {
        var images = new byte[data.Images.Length];
        for (int i = 0; i < images.Length; i++)
            images[i] = (byte)Math.Clamp(MathF.Round(255f * pixel(data.Images[i] / 255f)), 0, 255);
        return new Dataset(data.Name + "-shifted", data.Split, images, data.Labels, data.ClassNames, data.Rows, data.Cols);
    }
}

public class TestTimeAdaptationTests : IClassFixture<TtaFixture>
{
    private readonly TtaFixture _f;

    public TestTimeAdaptationTests(TtaFixture fixture) => _f = fixture;

    // Online accuracy of a stream through an adapter: each sample is predicted, then learned from.
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

    private static float[] Logits(Executor executor)
    {
        var z = new float[executor.OutputLength];
        var t = executor.Plan.Tensor(executor.Plan.OutputTensor);
        for (int i = 0; i < z.Length; i++) z[i] = (executor.Output(i) - t.ZeroPoint) * t.Scale;
        return z;
    }

    private static float[] Run(Executor executor, Dataset data, int index)
    {
        var values = new float[data.PixelsPerImage];
        data.CopyImage(index, values);
        Assert.True(executor.TrySetInput(values, 0));
        executor.Invoke();
        return Logits(executor);
    }

    [Fact]
    public void A_fresh_adaptation_plan_predicts_like_the_source_plan()
    {
        // The scale/shift starts at 1 and 0: only one more int8 rounding separates the plans.
        var source = new Executor(_f.Source);
        foreach (PlanImage plan in new[] { _f.Norm, _f.Tent })
        {
            var executor = new Executor(plan);
            int agree = 0, n = 300;
            for (int i = 0; i < n; i++)
            {
                Run(source, _f.Test, i);
                int expected = source.ArgMax();
                Run(executor, _f.Test, i);
                if (executor.ArgMax() == expected) agree++;
            }
            Assert.True(agree >= n * 0.98, $"{plan.Source}: {agree}/{n} predictions agree with the source plan");
        }
    }

    [Fact]
    public void Norm_statistics_recover_accuracy_on_a_shifted_stream()
    {
        float source = PlanEvaluator.Evaluate(_f.Source, _f.Shifted).Accuracy;
        float clean = PlanEvaluator.Evaluate(_f.Source, _f.Test).Accuracy;
        float adapted = Stream(new TestTimeAdapter(new Executor(_f.Norm), 0f), _f.Shifted);
        Assert.True(clean - source > 0.05f, $"the shift costs too little to test: clean {clean:P1}, shifted {source:P1}");
        Assert.True(adapted - source >= 0.5f * (clean - source), $"source {source:P1}, tta:norm {adapted:P1}, clean {clean:P1}");
    }

    [Fact]
    public void Norm_statistics_move_the_logits_of_shifted_images_towards_the_clean_ones()
    {
        var fresh = new Executor(_f.Norm);
        var adapted = new Executor(_f.Norm);
        var adapter = new TestTimeAdapter(adapted, 0f);
        Stream(adapter, _f.Shifted, 300);
        Assert.Equal(300, adapter.Adapted);
        double before = 0, after = 0;
        for (int i = 300; i < 400; i++)
        {
            float[] clean = Run(fresh, _f.Test, i);
            float[] shiftedBefore = Run(fresh, _f.Shifted, i);
            float[] shiftedAfter = Run(adapted, _f.Shifted, i);
            for (int k = 0; k < clean.Length; k++)
            {
                before += Math.Abs(shiftedBefore[k] - clean[k]);
                after += Math.Abs(shiftedAfter[k] - clean[k]);
            }
        }
        Assert.True(after < 0.7 * before, $"mean logit distance to the clean image: {before / 1000:F3} before, {after / 1000:F3} after adapting");
    }

    [Fact]
    public void Tent_improves_accuracy_over_the_source_on_a_shifted_stream_and_learns_from_confident_samples()
    {
        float source = PlanEvaluator.Evaluate(_f.Source, _f.Shifted).Accuracy;
        var executor = new Executor(_f.Tent) { LearningRate = 0.005f };
        int learned = 0;
        executor.GradientProbe = (_, _, _) => learned++;
        var adapter = new TestTimeAdapter(executor, 0f);
        float adapted = Stream(adapter, _f.Shifted);
        Assert.True(adapted > source + 0.05f, $"source {source:P1}, tta:tent {adapted:P1}");
        Assert.True(learned > 0, "no sample passed the entropy filter");
    }

    [Fact]
    public void Tent_changes_the_scale_and_shift_and_reset_restores_the_source_model()
    {
        var executor = new Executor(_f.Tent) { LearningRate = 0.01f };
        byte[] initial = (byte[])executor.Params.Clone();
        float[] before = Run(executor, _f.Shifted, 0);
        Stream(new TestTimeAdapter(executor, 0f), _f.Shifted, 200);
        Assert.NotEqual(initial, executor.Params);
        executor.Reset();
        Assert.Equal(initial, executor.Params);
        Assert.Equal(before, Run(executor, _f.Shifted, 0));
    }

    [Fact]
    public void An_adaptation_step_allocates_nothing_and_touches_exactly_the_planned_arena()
    {
        var executor = new Executor(_f.Tent);
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

        var quantizer = InputQuantizer.For(_f.Tent);
        byte[] input = new byte[quantizer.Length];
        for (int i = 0; i < 100; i++)
        {
            quantizer.Fill(_f.Test, i, input, 0);
            int high = ArenaProbe.MeasureAdaptStep(_f.Tent, input, 0, out bool learned);
            if (!learned) continue;
            Assert.Equal(_f.Tent.ArenaBytes, high);
            return;
        }
        Assert.Fail("no test image passed the entropy filter");
    }

    [Fact]
    public void Label_and_label_free_steps_are_not_mixed_up()
    {
        var tent = new Executor(_f.Tent);
        var e = Assert.Throws<TinyTrainException>(() => tent.TrainStep(3));
        Assert.Contains("AdaptStep", e.Message);
        var sparse = new Executor(_f.Compile("bias:1"));
        e = Assert.Throws<TinyTrainException>(() => sparse.AdaptStep());
        Assert.Contains("TrainStep", e.Message);
        e = Assert.Throws<TinyTrainException>(() => new TestTimeAdapter(new Executor(_f.Source), 0.5f));
        Assert.Contains("tta:", e.Message);
    }

    [Theory]
    [InlineData("tta:tent:0", "K must be a whole number from 1 to 3")]
    [InlineData("tta:tent:4", "K must be a whole number from 1 to 3")]
    [InlineData("tta:tent:x", "K must be a whole number from 1 to 3")]
    [InlineData("tta:bogus", "not a test-time adaptation")]
    public void Bad_adaptation_specs_are_refused_with_what_to_use(string spec, string message)
    {
        var e = Assert.Throws<TinyTrainException>(() => _f.Compile(spec));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void The_scale_shift_trains_with_labels_too_as_a_channel_wise_adapter()
    {
        // The same NormAffine op under the cross-entropy objective: what a channel-wise reprogramming adapter trains.
        CompileResult result = PlanCompiler.Compile(_f.Graph, _f.Calibration, new CompileOptions
        {
            NormAffine = true,
            Trainable = model =>
            {
                var perOp = new OpTraining[model.Ops.Count];
                for (int i = 0; i < perOp.Length; i++)
                    if (model.Ops[i].Kind == QOpKind.NormAffine) perOp[i] = new OpTraining(0, false, Affine: true);
                return TrainableSet.Of("affine", model, perOp);
            },
        });
        var plan = PlanImage.Load(result.Image, "affine.ttplan");
        var executor = new Executor(plan) { LearningRate = 0.01f };
        var quantizer = InputQuantizer.For(plan);
        byte[] input = new byte[quantizer.Length];
        Dataset shifted = TtaFixture.Corrupt(_f.Train, v => 0.55f + 0.45f * v);
        float before = DeviceTraining.EvaluateTrained(executor, _f.Shifted);
        for (int step = 0; step < 1000; step++)
        {
            quantizer.Fill(shifted, step, input, 0);
            executor.SetInput(input, 0);
            executor.TrainStep(shifted.Labels[step]);
        }
        float after = DeviceTraining.EvaluateTrained(executor, _f.Shifted);
        Assert.True(after > before + 0.05f, $"shifted test accuracy {before:P1} before, {after:P1} after 1,000 labelled steps on the scale/shift alone");
    }

    [Fact]
    public void A_trainable_set_that_puts_a_scale_shift_on_a_conv_is_refused()
    {
        CompileResult result = PlanCompiler.Compile(_f.Graph, _f.Calibration, new CompileOptions { Update = "tta:norm" });
        var perOp = new OpTraining[result.Model.Ops.Count];
        perOp[0] = new OpTraining(0, false, Affine: true);
        var e = Assert.Throws<TinyTrainException>(() => TrainableSet.Of("bad", result.Model, perOp));
        Assert.Contains("not a NormAffine op", e.Message);
    }

    // ---- Guards: streams that must not make adaptation run away.

    private float Threshold(PlanImage plan) =>
        TinyTrain.Compiler.Ood.OodCalibration.Calibrate(plan, new TinyTrain.Runtime.Ood.MaxSoftmaxScorer(plan), _f.Train, _f.Train.Count - 500, 500).Value;

    private static Dataset Synthetic(Dataset like, int count, Func<int, int, float> pixel)
    {
        int pixels = like.PixelsPerImage;
        var images = new byte[count * pixels];
        for (int i = 0; i < count; i++)
            for (int p = 0; p < pixels; p++) images[i * pixels + p] = (byte)Math.Clamp(MathF.Round(255f * pixel(i, p)), 0, 255);
        return new Dataset("synthetic", Split.Test, images, new byte[count], like.ClassNames, like.Rows, like.Cols);
    }

    [Fact]
    public void A_stream_of_NaN_is_refused_and_changes_nothing()
    {
        var executor = new Executor(_f.Tent) { LearningRate = 0.05f };
        byte[] initial = (byte[])executor.Params.Clone();
        var adapter = new TestTimeAdapter(executor, Threshold(_f.Tent));
        var values = new float[_f.Test.PixelsPerImage];
        for (int i = 0; i < 300; i++)
        {
            _f.Test.CopyImage(i, values);
            values[i % values.Length] = float.NaN;
            Assert.Equal(-1, adapter.Step(values, 0));
        }
        Assert.Equal(300, adapter.Refused);
        Assert.Equal(0, adapter.Adapted);
        Assert.Equal(initial, executor.Params);
    }

    [Fact]
    public void A_stream_of_constant_images_is_not_learned_from()
    {
        var executor = new Executor(_f.Tent) { LearningRate = 0.05f };
        byte[] initial = (byte[])executor.Params.Clone();
        var adapter = new TestTimeAdapter(executor, 0f);
        Stream(adapter, Synthetic(_f.Test, 300, (i, _) => (i % 5) / 4f));
        Assert.Equal(0, adapter.Adapted);
        Assert.Equal(initial, executor.Params);
    }

    [Theory]
    [InlineData("tta:norm")]
    [InlineData("tta:tent")]
    public void A_long_stream_of_noise_then_clean_images_keeps_the_source_accuracy(string update)
    {
        PlanImage plan = update == "tta:norm" ? _f.Norm : _f.Tent;
        float source = PlanEvaluator.Evaluate(_f.Source, _f.Test).Accuracy;
        var random = new Random(5);
        Dataset noise = Synthetic(_f.Test, 2000, (_, _) => (float)random.NextDouble());
        var adapter = new TestTimeAdapter(new Executor(plan) { LearningRate = 0.05f }, Threshold(plan));
        Stream(adapter, noise);
        float clean = Stream(adapter, _f.Test);
        Assert.True(clean >= source - 0.01f, $"{update}: clean after noise {clean:P1}, source {source:P1}; " +
            $"noise OOD {adapter.OutOfDistribution}/{adapter.Samples}, adapted {adapter.Adapted}, resets {adapter.Resets}");
    }

    [Fact]
    public void A_high_OOD_rate_resets_the_parameters_to_the_source_model()
    {
        var executor = new Executor(_f.Tent) { LearningRate = 0.05f };
        byte[] initial = (byte[])executor.Params.Clone();
        var adapter = new TestTimeAdapter(executor, Threshold(_f.Tent), window: 50, resetRate: 0.5f);
        Stream(adapter, _f.Test, 200);
        Assert.NotEqual(initial, executor.Params);
        Assert.Equal(0, adapter.Resets);
        // Every sample OOD (NaN): the rate climbs past 0.5 and the learned state goes back to the source.
        var values = new float[_f.Test.PixelsPerImage];
        values[0] = float.NaN;
        for (int i = 0; i < 100; i++) adapter.Step(values, 0);
        Assert.True(adapter.Resets >= 1, $"OOD rate {adapter.OodRate}");
        Assert.Equal(initial, executor.Params);
    }
}
