using TinyTrain.Compiler.Quantization;
using TinyTrain.Runtime.Execution;
using TinyTrain.Runtime.Ood;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

namespace TinyTrain.Nano.Tests;

/// <summary>
/// The nanoFramework build (reference kernels linked from src/Runtime, compiled against nanoFramework's mscorlib,
/// run here on the desktop CLR) against src/Runtime's Executor with its fast kernels, on real training plans:
/// every byte of the arena after each forward pass and training step, the trained parameters, the optimizer
/// state, the loss and the OOD scores must be identical.
/// </summary>
public class NanoExecutorTests
{
    private const int Steps = 6;

    [Theory]
    [InlineData("cnn-s sparse")]
    [InlineData("cnn-s bias:2+momentum")]
    [InlineData("mbv2-w0.35 sparse+momentum")]
    [InlineData("mbv2-w0.35 bias:6")]
    public void Forward_passes_training_steps_and_scores_are_bit_identical_to_the_runtime(string name)
    {
        byte[] image = NanoPlans.Image(name);
        PlanImage plan = PlanImage.Load(image, name);
        // Paint 0: both arenas start zeroed, so that the whole arena can be compared, not only the tensors.
        var desktop = new Executor(plan, paint: 0) { LearningRate = 0.05f, Momentum = 0.9f };
        dynamic nano = NanoAssembly.Executor(NanoPlans.Image(name));
        nano.LearningRate = 0.05f;
        nano.Momentum = 0.9f;
        desktop.Seed(11);
        nano.Seed(11u);
        Assert.Equal(desktop.Params, (byte[])nano.Params);
        byte[] initial = (byte[])desktop.Params.Clone();

        var energy = new EnergyScorer(plan);
        var msp = new MaxSoftmaxScorer(plan);
        var quantizer = InputQuantizer.For(plan);
        byte[] input = new byte[quantizer.Length];
        var data = NanoPlans.DataFor(name);
        for (int step = 0; step < Steps; step++)
        {
            quantizer.Fill(data, step, input, 0);
            desktop.SetInput(input, 0);
            nano.SetInput(input, 0);
            desktop.Invoke();
            nano.Invoke();
            Assert.Equal(desktop.Arena, (byte[])nano.Arena);
            Assert.Equal(desktop.ArgMax(), (int)nano.ArgMax());
            Assert.Equal(Bits(energy.Score(desktop)), Bits((float)nano.EnergyScore(1f)));
            Assert.Equal(Bits(msp.Score(desktop)), Bits((float)nano.MaxSoftmaxScore()));

            desktop.SetInput(input, 0);
            nano.SetInput(input, 0);
            int label = data.Labels[step];
            float loss = desktop.TrainStep(label);
            Assert.Equal(Bits(loss), Bits((float)nano.TrainStep(label)));
            Assert.Equal(desktop.LastPrediction, (int)nano.LastPrediction);
            Assert.Equal(desktop.Arena, (byte[])nano.Arena);
            Assert.Equal(desktop.Params, (byte[])nano.Params);
            Assert.Equal(desktop.State, (byte[])nano.State);
        }
        // The comparison means something only if the steps changed parameters (and, with momentum, kept state).
        Assert.NotEqual(initial, desktop.Params);
        if (plan.StateBytes > 0) Assert.Contains(desktop.State, b => b != 0);

        // After learning, the updated parameters give the same forward pass.
        quantizer.Fill(data, Steps, input, 0);
        desktop.SetInput(input, 0);
        nano.SetInput(input, 0);
        desktop.Invoke();
        nano.Invoke();
        Assert.Equal(desktop.Arena, (byte[])nano.Arena);

        // Reset restores the plan's parameters in both.
        desktop.Reset();
        nano.Reset();
        Assert.Equal(initial, (byte[])nano.Params);
        Assert.Equal(desktop.State, (byte[])nano.State);
    }

    [Fact]
    public void Float_inputs_quantize_the_same_and_non_finite_ones_are_refused()
    {
        byte[] image = NanoPlans.Image("cnn-s inference");
        var desktop = new Executor(PlanImage.Load(image, "cnn-s"), paint: 0);
        dynamic nano = NanoAssembly.Executor(NanoPlans.Image("cnn-s inference"));
        var random = new Random(3);
        float[] values = new float[desktop.InputLength];
        for (int i = 0; i < values.Length; i++) values[i] = (float)(random.NextDouble() * 4 - 1.5);
        Assert.True(desktop.TrySetInput(values, 0));
        Assert.True((bool)nano.TrySetInput(values, 0));
        desktop.Invoke();
        nano.Invoke();
        Assert.Equal(desktop.Arena, (byte[])nano.Arena);

        byte[] before = (byte[])((byte[])nano.Arena).Clone();
        values[7] = float.NaN;
        Assert.False((bool)nano.TrySetInput(values, 0));
        values[7] = float.PositiveInfinity;
        Assert.False((bool)nano.TrySetInput(values, 0));
        Assert.Equal(before, (byte[])nano.Arena);
    }

    private static int Bits(float value) => BitConverter.SingleToInt32Bits(value);
}
