using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Learning;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Compiler.Tests.Compilation;
using TinyTrain.Compiler.Zoo;
using TinyTrain.Runtime.Execution;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

namespace TinyTrain.Compiler.Tests.Learning;

/// <summary>The runtime's training step: memory as planned, no allocation, learning on real data, refusals that change nothing.</summary>
public class TrainingStepTests : IClassFixture<TrainedCnnFixture>
{
    private readonly TrainedCnnFixture _cnn;

    public TrainingStepTests(TrainedCnnFixture cnn) => _cnn = cnn;

    private PlanImage Compile(string update, bool momentum = false)
    {
        CompileResult r = PlanCompiler.Compile(_cnn.Graph, CalibrationSet.FromData(_cnn.Train, _cnn.Graph.InputShape, 256),
            new CompileOptions { Update = update, Training = new TrainingOptions { Momentum = momentum } });
        return PlanImage.Load(r.Image, update);
    }

    [Theory]
    [InlineData("cnn-s", 28, "bias:1")]
    [InlineData("cnn-s", 28, "full")]
    [InlineData("mbv2-w0.35", 32, "bias:8")]
    [InlineData("mcunet-5fps", 48, "full")]
    public void Measured_high_water_of_a_training_step_equals_the_planned_arena(string model, int resolution, string update)
    {
        var graph = ModelZoo.Build(model, resolution, 10, seed: 1);
        CompileResult r = PlanCompiler.Compile(graph, CalibrationSet.Random(graph.InputShape, 4, 2), new CompileOptions { Update = update });
        var plan = PlanImage.Load(r.Image, model);
        byte[] input = new byte[graph.InputShape.Size];
        new Random(4).NextBytes(input);
        Assert.Equal(plan.ArenaBytes, ArenaProbe.MeasureTrainStep(plan, input, 0, 3));
    }

    [Fact]
    public void A_training_step_allocates_nothing()
    {
        var executor = new Executor(Compile("bias:2", momentum: true)) { LearningRate = 0.01f };
        var quantizer = InputQuantizer.For(executor.Plan);
        byte[] input = new byte[quantizer.Length];
        quantizer.Fill(_cnn.Train, 0, input, 0);
        executor.SetInput(input, 0);
        executor.TrainStep(_cnn.Train.Labels[0]);    // warm up
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 50; i++)
        {
            executor.SetInput(input, 0);
            executor.TrainStep(_cnn.Train.Labels[0]);
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void On_device_training_learns_a_new_task_from_real_images()
    {
        // Pretrained on clothes, adapted at batch 1 to digits: a new task the model has never seen.
        PlanImage plan = Compile("bias:2");
        DeviceTrainingResult r = DeviceTraining.Run(plan, TinyTrain.Compiler.Data.DataCatalog.Load("mnist-mini", TinyTrain.Compiler.Data.Split.Train), TinyTrain.Compiler.Data.DataCatalog.Load("mnist-mini", TinyTrain.Compiler.Data.Split.Test),
            new DeviceTrainingOptions { Steps = 600, LearningRate = 0.01f, Seed = 1, EvalSamples = 500 });
        Assert.True(r.AccuracyBefore < 0.3f, $"before {r.AccuracyBefore}");
        Assert.True(r.AccuracyAfter > 0.7f, $"after {r.AccuracyAfter}");
        Assert.Equal(plan.ArenaBytes, r.HighWaterBytes);
    }

    [Fact]
    public void Reset_restores_the_flash_parameters()
    {
        var executor = new Executor(Compile("bias:1")) { LearningRate = 0.05f };
        byte[] initial = (byte[])executor.Params.Clone();
        var quantizer = InputQuantizer.For(executor.Plan);
        byte[] input = new byte[quantizer.Length];
        for (int i = 0; i < 20; i++)
        {
            quantizer.Fill(_cnn.Train, i, input, 0);
            executor.SetInput(input, 0);
            executor.TrainStep(_cnn.Train.Labels[i]);
        }
        Assert.NotEqual(initial, executor.Params);
        executor.Reset();
        Assert.Equal(initial, executor.Params);
    }

    [Fact]
    public void A_label_outside_the_classes_is_refused_and_changes_nothing()
    {
        var executor = new Executor(Compile("bias:1"));
        byte[] before = (byte[])executor.Params.Clone();
        var quantizer = InputQuantizer.For(executor.Plan);
        byte[] input = new byte[quantizer.Length];
        quantizer.Fill(_cnn.Train, 0, input, 0);
        executor.SetInput(input, 0);
        var e = Assert.Throws<TinyTrainException>(() => executor.TrainStep(10));
        Assert.Contains("label 10", e.Message);
        Assert.Contains("nothing was changed", e.Message);
        Assert.Equal(before, executor.Params);
    }

    [Fact]
    public void A_sample_with_nan_or_infinity_never_reaches_the_arena()
    {
        var executor = new Executor(Compile("bias:1"));
        float[] sample = new float[28 * 28];
        sample[5] = 0.5f;
        Assert.True(executor.TrySetInput(sample, 0));
        byte[] arena = (byte[])executor.Arena.Clone();
        sample[100] = float.NaN;
        Assert.False(executor.TrySetInput(sample, 0));
        sample[100] = float.PositiveInfinity;
        Assert.False(executor.TrySetInput(sample, 0));
        Assert.Equal(arena, executor.Arena);
    }

    [Fact]
    public void Momentum_on_a_plan_without_optimizer_state_is_refused()
    {
        PlanImage plan = Compile("bias:1");
        var e = Assert.Throws<TinyTrainException>(() => DeviceTraining.Run(plan, _cnn.Train, _cnn.Test,
            new DeviceTrainingOptions { Steps = 1, Momentum = 0.9f, EvalSamples = 10 }));
        Assert.Contains("compile it with --momentum", e.Message);
    }

    [Fact]
    public void An_inference_plan_refuses_to_train()
    {
        var executor = new Executor(Compile("none"));
        var e = Assert.Throws<TinyTrainException>(() => executor.TrainStep(0));
        Assert.Contains("no trainable set", e.Message);
    }
}
