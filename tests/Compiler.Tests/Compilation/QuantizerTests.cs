using TinyTrain.Compiler.Graphs;
using TinyTrain.Compiler.Passes;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Compiler.Training;

namespace TinyTrain.Compiler.Tests.Compilation;

public class QuantizerTests
{
    [Theory]
    [InlineData(0.5, 1 << 30, 0)]          // 0.5 = 2^30 * 2^(0-31)
    [InlineData(0.25, 1 << 30, -1)]
    [InlineData(1.0, 1 << 30, 1)]
    [InlineData(0.75, 1610612736, 0)]      // 0.75 * 2^31
    public void QuantizeMultiplier_matches_tflite(double real, int multiplier, int shift)
    {
        Assert.Equal((multiplier, shift), QuantMath.QuantizeMultiplier(real));
    }

    [Fact]
    public void QuantizeMultiplier_round_trips_within_one_part_in_two_billion()
    {
        var random = new Random(1);
        for (int i = 0; i < 1000; i++)
        {
            double real = Math.Exp(random.NextDouble() * 20 - 15);
            (int m, int s) = QuantMath.QuantizeMultiplier(real);
            Assert.InRange(m, 1 << 30, int.MaxValue);
            double back = m * Math.Pow(2, s - 31);
            Assert.True(Math.Abs(back - real) <= real * 1e-9, $"{real} -> {back}");
        }
    }

    [Fact]
    public void Activation_parameters_make_zero_exact_and_cover_the_range()
    {
        (float scale, int zp) = QuantMath.ActivationParameters(0f, 6f);
        Assert.Equal(6f / 255f, scale, 6);
        Assert.Equal(-128, zp);
        (scale, zp) = QuantMath.ActivationParameters(-1f, 3f);
        Assert.Equal(4f / 255f, scale, 6);
        Assert.Equal(-1f, (-128 - zp) * scale, 1);          // min is representable to within a step
        Assert.Equal(0f, (zp - zp) * scale);
        (scale, zp) = QuantMath.ActivationParameters(0f, 0f); // a dead tensor still gets usable parameters
        Assert.True(scale > 0);
    }

    [Fact]
    public void Folding_batch_norm_keeps_the_model_outputs()
    {
        var b = new GraphBuilder("fold", seed: 4);
        Node x = b.Input(new Shape(2, 6, 6));
        Node c = b.Relu6(b.BatchNorm(b.Conv(x, 4, 3)));
        Node d = b.BatchNorm(b.DepthwiseConv(c, 3, stride: 2));
        Node g = b.GlobalAvgPool(b.Relu(d));
        b.BatchNorm(b.Linear(g, 3));
        Graphs.Graph graph = b.Build();
        var random = new Random(2);
        foreach (Node n in graph.Nodes.Where(n => n.Kind == OpKind.BatchNorm))
            for (int i = 0; i < n.Shape.C; i++)
            {
                n.Weight!.Data[i] = (float)(0.5 + random.NextDouble());
                n.Bias!.Data[i] = (float)(random.NextDouble() - 0.5);
                n.RunningMean!.Data[i] = (float)(random.NextDouble() - 0.5);
                n.RunningVar!.Data[i] = (float)(0.5 + random.NextDouble());
            }
        FoldBatchNorm.Folded folded = FoldBatchNorm.Run(graph);
        Assert.DoesNotContain(folded.Graph.Nodes, n => n.Kind == OpKind.BatchNorm);
        Assert.Equal(3, folded.NormParameters.Count);

        var original = new FloatNetwork(graph, 2);
        var foldedNet = new FloatNetwork(folded.Graph, 2);
        for (int i = 0; i < original.InputBuffer.Length; i++)
            original.InputBuffer[i] = foldedNet.InputBuffer[i] = (float)random.NextDouble();
        float[] y0 = original.Forward(2, training: false), y1 = foldedNet.Forward(2, training: false);
        for (int i = 0; i < 6; i++) Assert.Equal(y0[i], y1[i], 4);
    }

    [Fact]
    public void Lowering_fuses_activations_and_drops_flatten()
    {
        var graph = TinyTrain.Compiler.Zoo.ModelZoo.Build("cnn-s");
        QuantizedModel model = Lowering.Run(FoldBatchNorm.Run(graph).Graph);
        Assert.Equal(new[] { QOpKind.Conv, QOpKind.Conv, QOpKind.Conv, QOpKind.FullyConnected }, model.Ops.Select(o => o.Kind));
        Assert.All(model.Ops.Take(3), o => Assert.Equal(Activation.Relu, o.Activation));
        Assert.Equal(Activation.None, model.Ops[3].Activation);
    }

    [Fact]
    public void Weights_are_symmetric_per_channel_in_minus_127_to_127()
    {
        var graph = TinyTrain.Compiler.Zoo.ModelZoo.Build("mbv2-w0.35", 32, 10, seed: 3);
        var result = TinyTrain.Compiler.Compilation.PlanCompiler.Compile(graph, CalibrationSet.Random(graph.InputShape, 4, 1), new TinyTrain.Compiler.Compilation.CompileOptions());
        foreach (QOp op in result.Model.Ops.Where(o => o.WeightQ is not null))
        {
            Assert.All(op.WeightQ!, w => Assert.InRange(w, -127, 127));
            int per = op.WeightQ!.Length / op.OutChannels;
            for (int c = 0; c < op.OutChannels; c++)
            {
                int maxAbs = 0;
                for (int i = 0; i < per; i++) maxAbs = Math.Max(maxAbs, Math.Abs((int)op.WeightQ[c * per + i]));
                Assert.True(maxAbs == 127 || maxAbs == 0, $"{op.Name} channel {c}: max |w| {maxAbs}");
            }
        }
    }
}
