using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Learning;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Compiler.Zoo;
using TinyTrain.Runtime.Plans;

namespace TinyTrain.Compiler.Tests.Learning;

/// <summary>The derived step program: what is computed, what is kept, where backprop stops.</summary>
public class AutodiffTests
{
    private static CompileResult Compile(string model, int resolution, string update, TrainingOptions? training = null)
    {
        var graph = ModelZoo.Build(model, resolution, 10, seed: 1);
        return PlanCompiler.Compile(graph, CalibrationSet.Random(graph.InputShape, 4, 2), new CompileOptions { Update = update, Training = training ?? new() });
    }

    [Fact]
    public void An_inference_plan_has_no_backward_ops_and_no_masks()
    {
        PlanProgram p = Compile("cnn-s", 28, "none").Program;
        Assert.All(p.Ops, o => Assert.Equal(OpPhase.Forward, o.Phase));
    }

    [Fact]
    public void Classifier_only_training_keeps_no_masks_and_computes_no_input_gradients()
    {
        PlanProgram p = Compile("cnn-s", 28, "bias:0").Program;
        // Only the classifier is trained: backprop stops there.
        Assert.DoesNotContain(p.Ops, o => o.Scratch >= 0 || o.Kind is OpKind.FullyConnectedBackwardInput or OpKind.Conv2DBackwardInput);
        Assert.Single(p.Ops, o => o.Kind == OpKind.FullyConnectedUpdate);
        Assert.Single(p.Ops, o => o.Kind == OpKind.LossGradient);
    }

    [Fact]
    public void Backprop_stops_at_the_earliest_trained_layer()
    {
        // bias:1 trains conv3's bias and the classifier: gradients flow into conv3's output, not below.
        PlanProgram p = Compile("cnn-s", 28, "bias:1").Program;
        POp masked = Assert.Single(p.Ops, o => o.Scratch >= 0);                   // conv3's ReLU mask, fused into its forward op
        Assert.Equal("conv3", masked.Name);
        Assert.Single(p.Ops, o => o.Kind == OpKind.FullyConnectedBackwardInput);  // into conv3's output
        Assert.DoesNotContain(p.Ops, o => o.Kind == OpKind.Conv2DBackwardInput);   // nothing below conv3 is trained
        POp update = Assert.Single(p.Ops, o => o.Kind == OpKind.BiasUpdate);       // bias only: keeps no input alive
        Assert.Null(update.Weights);
        Assert.NotNull(update.Bias);
        Assert.True(update.Bias!.IsParam);
        Assert.Equal(ElementType.Float32, p.Tensors[update.Input0].Type);           // it reads dy, not the forward input
    }

    [Fact]
    public void Each_update_follows_its_layers_input_gradient_so_backprop_uses_the_weights_of_the_forward_pass()
    {
        PlanProgram p = Compile("mbv2-w0.35", 32, "full").Program;
        for (int j = 0; j < p.Ops.Count; j++)
        {
            POp op = p.Ops[j];
            if (op.Phase != OpPhase.Update) continue;
            int gradInput = p.Ops.FindIndex(o => o.Phase == OpPhase.Backward && o.Layer == op.Layer && o.Kind.ToString().EndsWith("BackwardInput"));
            if (gradInput >= 0) Assert.True(gradInput < j, $"{op.Name} runs before its layer's input gradient");
        }
    }

    [Fact]
    public void Residual_gradients_are_summed_once_per_extra_reader()
    {
        PlanProgram p = Compile("mbv2-w0.35", 32, "full").Program;
        int residualAdds = p.Ops.Count(o => o.Kind == OpKind.Add);
        Assert.True(residualAdds > 0);
        Assert.Equal(residualAdds, p.Ops.Count(o => o.Kind == OpKind.GradientAdd));
    }

    [Fact]
    public void Full_update_trains_every_conv_and_the_classifier()
    {
        CompileResult r = Compile("mbv2-w0.35", 32, "full");
        int convs = r.Model.Ops.Count(o => o.WeightQ is not null);
        Assert.Equal(convs, r.Program.Ops.Count(o => o.Phase == OpPhase.Update));
        // The first conv's input is the image: no input gradient is ever computed for it.
        Assert.DoesNotContain(r.Program.Ops, o => o.Output >= 0 && o.Output < r.Program.Tensors.Count && r.Program.Tensors[o.Output].Name.StartsWith("input.grad"));
    }

    [Fact]
    public void Momentum_state_is_counted_per_trained_value()
    {
        CompileResult plain = Compile("cnn-s", 28, "bias:1");
        CompileResult momentum = Compile("cnn-s", 28, "bias:1", new TrainingOptions { Momentum = true });
        Assert.Equal(0, plain.Plan.StateBytes);
        // conv3: 64 biases; classifier: 10 x 3136 weights + 10 biases.
        Assert.Equal(4 * (64 + 10 * 3136 + 10), momentum.Plan.StateBytes);
    }

    [Fact]
    public void Sparse_scheme_in_the_published_keys_trains_the_first_channels_it_names()
    {
        CompileResult r = PlanCompiler.Compile(ModelZoo.Build("mbv2-w0.35", 32, 10, seed: 1), CalibrationSet.Random(new Graphs.Shape(3, 32, 32), 4, 2),
            new CompileOptions { Trainable = m => TrainableSet.FromScheme(new SparseScheme(4, [48, 45], [0.25, 1.0]), m) });
        var convs = TrainableSet.ConvOps(r.Model);
        OpTraining conv48 = r.Program.Trainable.PerOp[convs[48]];
        Assert.Equal(TrainableSet.InputChannels(r.Model.Ops[convs[48]], r.Model) / 4, conv48.WeightChannels);
        Assert.True(conv48.Bias);                                                 // among the last 4 convs
        Assert.Equal(TrainableSet.InputChannels(r.Model.Ops[convs[45]], r.Model), r.Program.Trainable.PerOp[convs[45]].WeightChannels);
        Assert.False(r.Program.Trainable.PerOp[convs[45]].Bias);                  // not among the last 4
    }

    [Theory]
    [InlineData("bias:99", "0 to")]
    [InlineData("bias:x", "whole number")]
    [InlineData("everything", "not a trainable set")]
    public void Bad_update_specs_are_refused(string spec, string expected)
    {
        var e = Assert.Throws<TinyTrainException>(() => Compile("cnn-s", 28, spec));
        Assert.Contains(expected, e.Message);
    }

    [Theory]
    [InlineData(1, new[] { 7 }, new[] { 0.5 }, "names no conv")]
    [InlineData(1, new[] { 1 }, new[] { 1.5 }, "outside [0, 1]")]
    [InlineData(1, new[] { 1 }, new[] { -0.1 }, "outside [0, 1]")]
    [InlineData(9, new int[0], new double[0], "n_bias_update 9")]
    public void Bad_sparse_schemes_are_refused_naming_the_problem(int nBias, int[] idx, double[] ratio, string expected)
    {
        var graph = ModelZoo.Build("cnn-s", seed: 1);
        var e = Assert.Throws<TinyTrainException>(() => PlanCompiler.Compile(graph, CalibrationSet.Random(graph.InputShape, 2, 2),
            new CompileOptions { Trainable = m => TrainableSet.FromScheme(new SparseScheme(nBias, idx, ratio), m, "bad.json") }));
        Assert.Contains(expected, e.Message);
        Assert.Contains("bad.json", e.Message);
    }

    [Fact]
    public void Sparse_scheme_file_that_is_not_json_is_refused()
    {
        string path = Path.Combine(Path.GetTempPath(), $"tinytrain-bad-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, "{ n_bias_update: ");
        var e = Assert.Throws<TinyTrainException>(() => Compile("cnn-s", 28, $"sparse:{path}"));
        Assert.Contains("not valid JSON", e.Message);
    }
}
