namespace TinyTrain.Runtime.Tests.Adaptation;

using TinyTrain.Runtime.Kernels;

public class NormAffineTests
{
    private static byte[] Floats(params float[] values)
    {
        var b = new byte[4 * values.Length];
        for (int i = 0; i < values.Length; i++) FloatBits.Write(b, 4 * i, values[i]);
        return b;
    }

    private static float F(byte[] b, int i) => FloatBits.Read(b, 4 * i);

    private static byte[] Int8(params int[] values) => Array.ConvertAll(values, v => (byte)(sbyte)v);

    [Fact]
    public void Identity_scale_shift_with_relu_requantizes_the_conv_output_and_writes_the_mask()
    {
        // u = (x - 0) * 0.1; y = round(relu(u) / 0.05) - 128.
        var p = new NormAffineParams { C = 1, H = 1, W = 3, InputScale = 0.1f, InputZeroPoint = 0, OutputScale = 0.05f, OutputZeroPoint = -128, ActMin = -128, ActMax = 127 };
        byte[] x = Int8(10, -5, 100), y = new byte[3], mask = new byte[1];
        NormAffine.Forward(p, x, 0, Floats(1f, 0f), 0, null, -1, y, 0, mask, 0, 1);
        Assert.Equal(new[] { -108, -128, 72 }, Array.ConvertAll(y, b => (int)(sbyte)b));
        Assert.Equal(0b101, mask[0]);
    }

    [Fact]
    public void Scale_shift_and_statistics_correction_compose_per_channel()
    {
        // Channel 0: v = 2 * (0.5 u + 1) + 0.5 = u + 2.5; channel 1: v = 1 * (1 u + 0) - 1 = u - 1. Output scale 0.5, zp 0, no activation.
        var p = new NormAffineParams { C = 2, H = 1, W = 2, InputScale = 1f, InputZeroPoint = 0, OutputScale = 0.5f, OutputZeroPoint = 0, ActMin = -128, ActMax = 127 };
        byte[] x = Int8(1, -3, 4, 10), y = new byte[4];
        byte[] affine = Floats(2f, 1f, 0.5f, -1f), stats = Floats(0.5f, 1f, 1f, 0f);
        NormAffine.Forward(p, x, 0, affine, 0, stats, 0, y, 0, null, -1, 0);
        // v: 3.5, -0.5, 3, 9 -> /0.5 -> 7, -1, 6, 18.
        Assert.Equal(new[] { 7, -1, 6, 18 }, Array.ConvertAll(y, b => (int)(sbyte)b));

        byte[] dv = Floats(1f, 2f, 3f, 4f), du = new byte[16];
        NormAffine.BackwardInput(2, 2, dv, 0, affine, 0, stats, 0, du, 0);
        // du = dv * scale * statScale: channel 0 by 1, channel 1 by 1.
        Assert.Equal(new[] { 1f, 2f, 3f, 4f }, Enumerable.Range(0, 4).Select(i => F(du, i)));

        float[] dScale = new float[2], dShift = new float[2];
        var pu = p with { };
        NormAffine.Gradient(pu, x, 0, dv, 0, stats, 0, dScale, dShift);
        // d scale = sum dv * (statScale u + statShift): ch0 1*(0.5+1) + 2*(-1.5+1) = 0.5; ch1 3*4 + 4*10 = 52.
        Assert.Equal(0.5f, dScale[0], 5);
        Assert.Equal(52f, dScale[1], 5);
        Assert.Equal(3f, dShift[0]);
        Assert.Equal(7f, dShift[1]);
    }

    [Fact]
    public void Update_steps_against_the_gradient_clips_each_step_and_keeps_the_scale_in_range()
    {
        var p = new NormAffineParams { C = 2, H = 1, W = 1, InputScale = 1f, InputZeroPoint = 0, OutputScale = 1f, OutputZeroPoint = 0, ActMin = -128, ActMax = 127 };
        byte[] x = Int8(2, 1);
        byte[] affine = Floats(1f, 0.26f, 0f, 0f);
        // Channel 0: d scale = 0.01 * 2 = 0.02 -> scale 1 - 0.1 * 0.02; channel 1: a huge gradient, clipped to 0.05 and floored at 0.25.
        byte[] dv = Floats(0.01f, 1000f);
        NormAffine.Update(p, x, 0, dv, 0, affine, 0, null, -1, 0.1f, 0.05f, 0.25f, 4f);
        Assert.Equal(1f - 0.002f, F(affine, 0), 6);
        Assert.Equal(0.25f, F(affine, 1));
        Assert.Equal(-0.001f, F(affine, 2), 6);
        Assert.Equal(-0.05f, F(affine, 3), 6);
    }

    [Fact]
    public void The_anchor_pulls_scale_and_shift_back_towards_the_source_values()
    {
        var p = new NormAffineParams { C = 1, H = 1, W = 1, InputScale = 1f, InputZeroPoint = 0, OutputScale = 1f, OutputZeroPoint = 0, ActMin = -128, ActMax = 127 };
        byte[] affine = Floats(1.2f, -0.3f);
        // No gradient: only the pull, -lr * anchor * (value - source) = -0.1 * 0.5 * (0.2, -0.3).
        NormAffine.Update(p, Int8(5), 0, Floats(0f), 0, affine, 0, null, -1, 0.1f, 0.05f, 0.25f, 4f, anchor: 0.5f);
        Assert.Equal(1.19f, F(affine, 0), 6);
        Assert.Equal(-0.285f, F(affine, 1), 6);
    }

    [Fact]
    public void A_non_finite_gradient_leaves_its_channel_unchanged()
    {
        var p = new NormAffineParams { C = 1, H = 1, W = 1, InputScale = 1f, InputZeroPoint = 0, OutputScale = 1f, OutputZeroPoint = 0, ActMin = -128, ActMax = 127 };
        byte[] affine = Floats(1.5f, 0.25f);
        NormAffine.Update(p, Int8(3), 0, Floats(float.NaN), 0, affine, 0, null, -1, 0.1f, 0.05f, 0.25f, 4f);
        Assert.Equal(1.5f, F(affine, 0));
        Assert.Equal(0.25f, F(affine, 1));
    }

    [Fact]
    public void Statistics_correction_maps_the_stream_back_onto_the_source_statistics()
    {
        // One channel of 64 values with mean 20 and spread 10 (in int8 steps of 0.1: mean 2, sd ~1); source mean 0, var 1.
        var random = new Random(3);
        int plane = 64;
        var p = new NormAffineParams { C = 1, H = 8, W = 8, InputScale = 0.1f, InputZeroPoint = 0, OutputScale = 0.02f, OutputZeroPoint = 0, ActMin = -128, ActMax = 127 };
        byte[] x = new byte[plane];
        for (int i = 0; i < plane; i++) x[i] = (byte)(sbyte)(20 + random.Next(-17, 18));
        byte[] running = Floats(0f, 1f), source = Floats(0f, 1f), stats = Floats(1f, 0f);
        // Momentum 1: the running statistics become this sample's.
        NormAffine.Stats(p, x, 0, running, 0, source, 0, stats, 0, 1f, 8f);
        double mean = x.Average(b => (sbyte)b * 0.1), variance = x.Average(b => Math.Pow((sbyte)b * 0.1 - mean, 2));
        Assert.Equal(mean, F(running, 0), 4);
        Assert.Equal(variance, F(running, 1), 3);

        byte[] y = new byte[plane];
        NormAffine.Forward(p, x, 0, Floats(1f, 0f), 0, stats, 0, y, 0, null, -1, 0);
        double[] v = Array.ConvertAll(y, b => (sbyte)b * 0.02);
        double outMean = v.Average(), outVar = v.Average(a => (a - outMean) * (a - outMean));
        Assert.True(Math.Abs(outMean) < 0.02, $"mean {outMean}");
        Assert.True(Math.Abs(outVar - 1) < 0.05, $"variance {outVar}");
    }

    [Fact]
    public void Running_statistics_move_by_the_momentum_and_the_scale_is_bounded()
    {
        var p = new NormAffineParams { C = 1, H = 1, W = 4, InputScale = 1f, InputZeroPoint = 0, OutputScale = 1f, OutputZeroPoint = 0, ActMin = -128, ActMax = 127 };
        // A constant plane: variance 0 in the sample; the mean moves by 10% of the gap, the variance takes m (1 - m) gap^2.
        byte[] x = Int8(10, 10, 10, 10);
        byte[] running = Floats(0f, 0.01f), source = Floats(0f, 4f), stats = Floats(1f, 0f);
        NormAffine.Stats(p, x, 0, running, 0, source, 0, stats, 0, 0.1f, 8f);
        Assert.Equal(1f, F(running, 0), 5);
        Assert.Equal(0.9f * 0.01f + 0.1f * 0.9f * 100f, F(running, 1), 3);
        byte[] tiny = Floats(0f, 1e-12f);
        NormAffine.Stats(p, Int8(0, 0, 0, 0), 0, tiny, 0, source, 0, stats, 0, 0.1f, 8f);
        Assert.Equal(8f, F(stats, 0));
    }

    [Fact]
    public void Bad_arguments_are_refused_with_the_kernel_name()
    {
        var p = new NormAffineParams { C = 2, H = 1, W = 1, InputScale = 1f, InputZeroPoint = 0, OutputScale = 1f, OutputZeroPoint = 0, ActMin = -128, ActMax = 127 };
        var e = Assert.Throws<TinyTrainException>(() => NormAffine.Forward(p, Int8(1, 2), 0, Floats(1f), 0, null, -1, new byte[2], 0, null, -1, 0));
        Assert.Contains("NormAffine.Forward", e.Message);
        e = Assert.Throws<TinyTrainException>(() => NormAffine.Update(p, Int8(1, 2), 0, Floats(1f, 1f), 0, Floats(1f, 1f, 0f, 0f), 0, null, -1, 0.1f, 0.05f, 2f, 4f));
        Assert.Contains("scale range", e.Message);
        e = Assert.Throws<TinyTrainException>(() => NormAffine.Stats(p, Int8(1, 2), 0, Floats(0f, 0f, 1f, 1f), 0, Floats(0f, 0f, 1f, 1f), 0, Floats(1f, 1f, 0f, 0f), 0, 0f, 8f));
        Assert.Contains("momentum", e.Message);
    }
}
