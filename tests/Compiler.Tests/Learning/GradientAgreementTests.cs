using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Graphs;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Compiler.Tests.Compilation;
using TinyTrain.Compiler.Training;
using TinyTrain.Runtime.Execution;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

namespace TinyTrain.Compiler.Tests.Learning;

/// <summary>
/// The int8 plan's backward pass against the float graph's: for real images, the weight and bias
/// gradients the runtime is about to apply point the same way as the float model's (cosine >= 0.99).
/// </summary>
public class GradientAgreementTests : IClassFixture<TrainedCnnFixture>
{
    private readonly TrainedCnnFixture _cnn;

    public GradientAgreementTests(TrainedCnnFixture cnn) => _cnn = cnn;

    [Theory]
    [InlineData("full")]
    [InlineData("bias:2")]
    public void Int8_gradients_agree_with_the_float_graphs(string update)
    {
        CompileResult compiled = PlanCompiler.Compile(_cnn.Graph, CalibrationSet.FromData(_cnn.Train, _cnn.Graph.InputShape, 512), new CompileOptions { Update = update });
        var plan = PlanImage.Load(compiled.Image, update);
        var names = compiled.Plan.Ops.ToDictionary(o => o.Index, o => o.Name);
        var executor = new Executor(plan) { LearningRate = 0f };   // a zero step: gradients are observed, nothing changes
        var int8 = new Dictionary<string, List<float>>();
        executor.GradientProbe = (index, dw, db) =>
        {
            string layer = names[index][..^".update".Length];
            Append(int8, layer + ".weight", dw);
            Append(int8, layer + ".bias", db);
        };
        Graphs.Graph folded = compiled.Folded;

        var net = new FloatNetwork(folded, 1);
        var reference = new Dictionary<string, List<float>>();
        var quantizer = InputQuantizer.For(plan);
        byte[] input = new byte[quantizer.Length];
        float[] dLogits = new float[10];
        for (int i = 0; i < 40; i++)
        {
            quantizer.Fill(_cnn.Test, i, input, 0);
            executor.SetInput(input, 0);
            executor.TrainStep(_cnn.Test.Labels[i]);

            InputLayout.Fill(_cnn.Test, i, folded.InputShape, net.InputBuffer, 0);
            float[] logits = net.Forward(1, training: true);
            SoftmaxCrossEntropy.Compute(logits, _cnn.Test.Labels.AsSpan(i, 1), 1, 10, dLogits, out _);
            net.Backward(dLogits, 1);
            foreach (Node node in folded.Nodes)
            {
                if (node.Weight is null) continue;
                OpTrainingFor(compiled, node.Name, out int channels, out bool bias);
                if (channels > 0) Append(reference, node.Name + ".weight", net.Gradients[node.Weight]);
                if (bias) Append(reference, node.Name + ".bias", net.Gradients[node.Bias!]);
            }
        }
        Assert.NotEmpty(reference);
        foreach ((string tensor, List<float> expected) in reference)
        {
            Assert.True(int8.ContainsKey(tensor), $"the int8 plan computes no gradient for {tensor}");
            List<float> actual = int8[tensor];
            Assert.Equal(expected.Count, actual.Count);
            double dot = 0, na = 0, nb = 0;
            for (int k = 0; k < expected.Count; k++)
            {
                dot += (double)expected[k] * actual[k];
                na += (double)expected[k] * expected[k];
                nb += (double)actual[k] * actual[k];
            }
            double cosine = dot / Math.Sqrt(na * nb);
            Assert.True(cosine >= 0.99, $"{update}: {tensor}: cosine {cosine:F4} between int8 and float gradients");
        }
    }

    private static void OpTrainingFor(CompileResult compiled, string name, out int channels, out bool bias)
    {
        int i = compiled.Model.Ops.FindIndex(o => o.Name == name);
        channels = compiled.Program.Trainable.PerOp[i].WeightChannels;
        bias = compiled.Program.Trainable.PerOp[i].Bias;
    }

    private static void Append(Dictionary<string, List<float>> into, string key, float[] values)
    {
        if (!into.TryGetValue(key, out List<float>? list)) into[key] = list = new List<float>();
        list.AddRange(values);
    }
}
