using TinyTrain.Adapters.Kinds;
using TinyTrain.Adapters.Packs;
using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Compiler.Graphs;
using TinyTrain.Runtime.Execution;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

namespace TinyTrain.Adapters.Tests.Kinds;

public class AdapterKindTests : IClassFixture<MiniModel>
{
    private readonly MiniModel _mini;

    public AdapterKindTests(MiniModel mini) => _mini = mini;

    private PlanImage Compile(string kind) => PlanImage.Load(AdapterCompiler.Compile(_mini.Graph, _mini.Calibration, AdapterSpec.Parse(kind)).Image, kind);

    private static sbyte[][] Logits(PlanImage plan, Dataset data, int count)
    {
        var executor = new Executor(plan);
        var quantizer = InputQuantizer.For(plan);
        byte[] input = new byte[quantizer.Length];
        var logits = new sbyte[count][];
        for (int i = 0; i < count; i++)
        {
            quantizer.Fill(data, i, input, 0);
            executor.SetInput(input, 0);
            executor.Invoke();
            logits[i] = new sbyte[executor.OutputLength];
            for (int k = 0; k < logits[i].Length; k++) logits[i][k] = executor.Output(k);
        }
        return logits;
    }

    [Theory]
    [InlineData("adapter:bias", 0)]
    [InlineData("adapter:clr", 0)]
    [InlineData("adapter:residual", 0)]
    [InlineData("adapter:lora:4", 1)]
    public void A_fresh_adapter_computes_what_the_base_model_computes(string kind, int lsb)
    {
        // The base compiled as a training plan too (classifier only), so that the logits have the same range.
        var basePlan = PlanImage.Load(_mini.Compile("bias:0").Image);
        sbyte[][] expected = Logits(basePlan, _mini.Test, 300), actual = Logits(Compile(kind), _mini.Test, 300);
        int worst = 0, same = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            for (int k = 0; k < expected[i].Length; k++) worst = Math.Max(worst, Math.Abs(expected[i][k] - actual[i][k]));
            if (Array.IndexOf(expected[i], expected[i].Max()) == Array.IndexOf(actual[i], actual[i].Max())) same++;
        }
        Console.WriteLine($"{kind}: worst {worst} LSB, same top-1 {same}/300");
        Assert.True(worst <= lsb, $"{kind}: a logit differs by {worst} LSB from the base model's (allowed {lsb})");
        Assert.True(same >= 297, $"{kind}: top-1 agrees on {same} of 300");
    }

    [Theory]
    [InlineData("adapter:bias", 16 + 32 + 64 + 10 * 3136 + 10)]
    [InlineData("adapter:clr", (16 + 32 + 64) * 9 + (16 + 32 + 64) + 10 * 3136 + 10)]
    [InlineData("adapter:residual", (1 * 16 + 16) + (16 * 32 + 32) + (32 * 64 + 64) + 10 * 3136 + 10)]
    [InlineData("adapter:lora:4", (4 * 3136 + 4) + (10 * 4 + 10) + 10)]
    public void Parameters_per_task_are_the_adapter_and_nothing_else(string kind, int expected)
    {
        CompileResult result = AdapterCompiler.Compile(_mini.Graph, _mini.Calibration, AdapterSpec.Parse(kind));
        AdapterCost cost = AdapterCompiler.Cost(result);
        Assert.Equal(expected, cost.ParamsPerTask);
        Assert.Equal(AdapterSpec.Parse(kind).Name, cost.Kind);
        Assert.True(cost.SramBytes > cost.ArenaBytes);
    }

    [Theory]
    [InlineData("adapter:bias", 0.01f)]
    [InlineData("adapter:clr", 0.01f)]
    [InlineData("adapter:residual", 0.01f)]
    [InlineData("adapter:lora:4", 0.05f)]
    public void Training_an_adapter_learns_a_new_task_and_leaves_the_base_model_byte_identical(string kind, float lr)
    {
        // A new task the digits model never saw: T-shirt (0) vs trouser (1) of Fashion-MNIST.
        int[] train = Enumerable.Range(0, _mini.FashionTrain.Count).Where(i => _mini.FashionTrain.Labels[i] <= 1).ToArray();
        int[] test = Enumerable.Range(0, _mini.FashionTest.Count).Where(i => _mini.FashionTest.Labels[i] <= 1).ToArray();
        PlanImage plan = Compile(kind);
        byte[] image = (byte[])plan.Image.Clone();
        AdapterLayout layout = AdapterLayout.Of(plan);
        var executor = new Executor(plan) { LearningRate = lr };
        executor.Seed(7);
        var quantizer = InputQuantizer.For(plan);
        byte[] input = new byte[quantizer.Length];
        float Accuracy()
        {
            int correct = 0;
            foreach (int i in test)
            {
                quantizer.Fill(_mini.FashionTest, i, input, 0);
                executor.SetInput(input, 0);
                executor.Invoke();
                // Task-incremental: the answer is the larger of the task's two logits.
                int p = executor.Output(1) > executor.Output(0) ? 1 : 0;
                if (p == _mini.FashionTest.Labels[i]) correct++;
            }
            return (float)correct / test.Length;
        }
        float before = Accuracy();
        for (int s = 0; s < 300; s++)
        {
            int i = train[s % train.Length];
            quantizer.Fill(_mini.FashionTrain, i, input, 0);
            executor.SetInput(input, 0);
            executor.TrainStep(_mini.FashionTrain.Labels[i]);
        }
        float after = Accuracy();
        Console.WriteLine($"{kind}: {before:P1} -> {after:P1}");
        Assert.True(after >= 0.8f && after >= before + 0.1f, $"{kind}: accuracy {before:P1} -> {after:P1}");
        Assert.Equal(image, plan.Image);
        Assert.Equal(layout.Identity, AdapterLayout.Of(PlanImage.Load(image)).Identity);
        // What was learned lives in the params region, and a fresh executor on the same plan gets it back from a pack.
        AdapterPack pack = layout.Capture(executor, "fashion-0-1", 300);
        var fresh = new Executor(plan);
        layout.Apply(fresh, AdapterPack.Deserialize(pack.Serialize()));
        Assert.Equal(executor.Params, fresh.Params);
    }

    [Fact]
    public void Bad_adapter_specs_are_refused_with_what_to_write()
    {
        Assert.Contains("use adapter:clr, adapter:bias", Assert.Throws<TinyTrainException>(() => AdapterSpec.Parse("adapter:foo")).Message);
        Assert.Contains("rank must be a whole number from 1 to 64", Assert.Throws<TinyTrainException>(() => AdapterSpec.Parse("adapter:lora:0")).Message);
        Assert.Equal(new AdapterSpec(AdapterKind.Lora, 8), AdapterSpec.Parse("adapter:lora:8"));
        Graph rewritten = AdapterRewrite.Apply(_mini.Graph, AdapterSpec.Parse("adapter:clr"));
        Assert.Contains("already has an adapter", Assert.Throws<TinyTrainException>(() => AdapterRewrite.Apply(rewritten, AdapterSpec.Parse("adapter:clr"))).Message);
    }
}
