using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Compiler.Training;
using TinyTrain.Compiler.Zoo;
using TinyTrain.Runtime.Execution;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

namespace TinyTrain.Compiler.Tests.Compilation;

/// <summary>Shares one trained cnn-s and its compiled plan across the tests that need real weights.</summary>
public sealed class TrainedCnnFixture
{
    public TrainedCnnFixture()
    {
        Train = DataCatalog.Load("fashion-mnist-mini", Split.Train);
        Test = DataCatalog.Load("fashion-mnist-mini", Split.Test);
        Graph = ModelZoo.Build("cnn-s", seed: 0);
        Trainer.Train(Graph, Train, Test, new TrainOptions { Epochs = 3, BatchSize = 32, Seed = 0 });
        FloatAccuracy = Trainer.Evaluate(Graph, Test);
        Result = PlanCompiler.Compile(Graph, CalibrationSet.FromData(Train, Graph.InputShape, 512), new CompileOptions());
        Plan = PlanImage.Load(Result.Image, "cnn-s.ttplan");
    }

    public Dataset Train { get; }
    public Dataset Test { get; }
    public Graphs.Graph Graph { get; }
    public float FloatAccuracy { get; }
    public CompileResult Result { get; }
    public PlanImage Plan { get; }
}

[Collection(KernelModeCollection.Name)]
public class Int8PlanTests : IClassFixture<TrainedCnnFixture>
{
    private readonly TrainedCnnFixture _cnn;

    public Int8PlanTests(TrainedCnnFixture cnn) => _cnn = cnn;

    [Fact]
    public void Int8_plan_loses_at_most_one_point_of_accuracy_against_float()
    {
        EvalResult int8 = PlanEvaluator.Evaluate(_cnn.Plan, _cnn.Test);
        Assert.Equal(1000, int8.Samples);
        Assert.True(_cnn.FloatAccuracy > 0.75f, $"float accuracy {_cnn.FloatAccuracy}");
        Assert.True(int8.Accuracy >= _cnn.FloatAccuracy - 0.01f, $"int8 {int8.Accuracy:P2} vs float {_cnn.FloatAccuracy:P2}");
    }

    [Fact]
    public void Int8_logits_track_the_float_logits()
    {
        // Dequantized int8 logits against the float model's on real images: the quantizer's scales are right.
        var executor = new Executor(_cnn.Plan);
        var quantizer = InputQuantizer.For(_cnn.Plan);
        byte[] input = new byte[quantizer.Length];
        var net = new FloatNetwork(_cnn.Graph, 1);
        var output = _cnn.Plan.Tensor(_cnn.Plan.OutputTensor);
        double err = 0, norm = 0;
        for (int i = 0; i < 100; i++)
        {
            quantizer.Fill(_cnn.Test, i, input, 0);
            executor.SetInput(input, 0);
            executor.Invoke();
            InputLayout.Fill(_cnn.Test, i, _cnn.Graph.InputShape, net.InputBuffer, 0);
            float[] logits = net.Forward(1, training: false);
            for (int k = 0; k < 10; k++)
            {
                double q = (executor.Output(k) - output.ZeroPoint) * output.Scale;
                err += (q - logits[k]) * (q - logits[k]);
                norm += logits[k] * logits[k];
            }
        }
        Assert.True(Math.Sqrt(err / norm) < 0.1, $"relative logit error {Math.Sqrt(err / norm):F3}");
    }

    [Fact]
    public void Inference_allocates_nothing()
    {
        var executor = new Executor(_cnn.Plan);
        var quantizer = InputQuantizer.For(_cnn.Plan);
        byte[] input = new byte[quantizer.Length];
        quantizer.Fill(_cnn.Test, 0, input, 0);
        executor.SetInput(input, 0);
        executor.Invoke();   // warm up: JIT, static tables
        long before = GC.GetAllocatedBytesForCurrentThread();
        int sum = 0;
        for (int i = 0; i < 200; i++)
        {
            executor.SetInput(input, 0);
            executor.Invoke();
            sum += executor.ArgMax();
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
        Assert.True(sum >= 0);
    }

    [Fact]
    public void Fast_and_reference_kernels_give_identical_plan_outputs()
    {
        var quantizer = InputQuantizer.For(_cnn.Plan);
        byte[] input = new byte[quantizer.Length];
        var fast = new Executor(_cnn.Plan);
        var reference = new Executor(_cnn.Plan);
        bool saved = Runtime.Kernels.KernelMode.UseFast;
        try
        {
            for (int i = 0; i < 50; i++)
            {
                quantizer.Fill(_cnn.Test, i, input, 0);
                Runtime.Kernels.KernelMode.UseFast = true;
                fast.SetInput(input, 0);
                fast.Invoke();
                Runtime.Kernels.KernelMode.UseFast = false;
                reference.SetInput(input, 0);
                reference.Invoke();
                for (int k = 0; k < fast.OutputLength; k++) Assert.Equal(reference.Output(k), fast.Output(k));
            }
        }
        finally
        {
            Runtime.Kernels.KernelMode.UseFast = saved;
        }
    }
}
