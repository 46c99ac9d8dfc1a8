namespace TinyTrain.Runtime.Tests.Training;

using TinyTrain.Runtime.Kernels;

/// <summary>
/// The in-place updates: with QAS the real change of a weight (Δw_q * s_w) is -lr * g to within one int8 step,
/// and -lr * g on average (stochastic rounding is unbiased); without QAS it is -lr * g * s_w^2; updates far below one
/// step accumulate; momentum follows v = m v + g~; values saturate.
/// </summary>
public class UpdateTests
{
    private static byte[] Int32s(int[] values)
    {
        var b = new byte[4 * values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            BitConverter.TryWriteBytes(b.AsSpan(4 * i), values[i]);
        }
        return b;
    }

    private static int ReadInt32(byte[] b, int i) => BitConverter.ToInt32(b, 4 * i);

    /// <summary>The applied int8 step is floor or ceil of the expected one (to float error), or the clamp.</summary>
    private static void AssertStep(int before, int after, double expected, string what)
    {
        double target = before + expected;
        double lo = Math.Floor(target - 1e-4 * Math.Abs(expected) - 1e-6), hi = Math.Ceiling(target + 1e-4 * Math.Abs(expected) + 1e-6);
        lo = Math.Clamp(lo, -127, 127);
        hi = Math.Clamp(hi, -127, 127);
        Assert.True(after >= lo && after <= hi, $"{what}: {before} + {expected} gave {after}, outside [{lo}, {hi}]");
    }

    private static void AssertBiasStep(int before, int after, double expected, string what)
    {
        double target = before + expected;
        double tol = 1e-4 * Math.Abs(expected) + 1e-6;
        Assert.True(after >= Math.Floor(target - tol) && after <= Math.Ceiling(target + tol), $"{what}: {before} + {expected} gave {after}");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Conv_OneStep_AppliesTheScaledGradient(bool qas)
    {
        var rng = new Random(qas ? 71 : 72);
        for (int t = 0; t < 60; t++)
        {
            ConvCase c = TrainTest.RandomConv(rng, stride: t % 3 == 0 ? 2 : null);
            var p = c.P;
            int k = p.Kernel, icpg = c.IcPerGroup;
            c.W = TrainTest.Int8(rng, c.W.Length, -60, 60);
            int train = rng.Next(0, icpg + 1);
            var (g, _) = TrainTest.ConvWeightGradient(p, TrainTest.RealX(c.X, p.InputZeroPoint, c.Sx), TrainTest.ToDouble(c.Dy), train);
            double[] gb = TrainTest.BiasGradient(c.Dy, p.OutC);
            // g~ in the int8 domain, per trained weight: g / s_w (QAS) or g * s_w.
            double[] gq = g.Select((v, i) => qas ? v / c.Sw[i / (train * k * k)] : v * c.Sw[i / (train * k * k)]).ToArray();
            double[] gbq = gb.Select((v, oc) => qas ? v / (c.Sx * (double)c.Sw[oc]) : v * c.Sx * c.Sw[oc]).ToArray();
            double maxStep = gq.Concat(gbq).Concat(new[] { 1e-9 }).Max(Math.Abs);
            var rule = new UpdateRule { LearningRate = (float)(30 / maxStep), Qas = qas };

            byte[] w = (byte[])c.W.Clone();
            int[] bias0 = Enumerable.Range(0, p.OutC).Select(_ => rng.Next(-1000, 1000)).ToArray();
            byte[] bias = Int32s(bias0);
            uint seed = (uint)rng.Next(1, int.MaxValue);
            Conv2D.Update(p, c.X, 0, TrainTest.Floats(c.Dy), 0, w, 0, bias, 0, TrainTest.Floats(c.Sw), 0, c.Sx, train, rule, [], -1, ref seed);

            for (int oc = 0; oc < p.OutC; oc++)
            {
                for (int i = 0; i < icpg; i++)
                {
                    for (int tap = 0; tap < k * k; tap++)
                    {
                        int at = (oc * icpg + i) * k * k + tap;
                        int before = (sbyte)c.W[at], after = (sbyte)w[at];
                        if (i >= train)
                        {
                            Assert.Equal(before, after);
                            continue;
                        }
                        double expected = -rule.LearningRate * gq[(oc * train + i) * k * k + tap];
                        AssertStep(before, after, expected, $"{c} w[{oc},{i},{tap}]");
                        // In real units: QAS moves the weight by -lr * g, plain SGD by -lr * g * s_w^2, each within one step s_w.
                        double real = (after - before) * (double)c.Sw[oc];
                        double wanted = -rule.LearningRate * g[(oc * train + i) * k * k + tap] * (qas ? 1 : c.Sw[oc] * (double)c.Sw[oc]);
                        Assert.True(Math.Abs(real - wanted) <= c.Sw[oc] * (1 + 1e-3), $"{c}: real change {real} vs {wanted}");
                    }
                }
                AssertBiasStep(bias0[oc], ReadInt32(bias, oc), -rule.LearningRate * gbq[oc], $"{c} bias[{oc}]");
            }
        }
    }

    [Theory]
    [InlineData(3, 1)]
    [InlineData(5, 2)]
    [InlineData(7, 2)]
    public void Depthwise_OneStep_TrainsTheFirstChannels(int k, int stride)
    {
        var rng = new Random(80 + k + stride);
        for (int t = 0; t < 20; t++)
        {
            DepthwiseCase c = TrainTest.RandomDepthwise(rng, k, stride);
            var p = c.P;
            c.W = TrainTest.Int8(rng, c.W.Length, -60, 60);
            int train = rng.Next(0, p.C + 1);
            var (g, _) = TrainTest.ConvWeightGradient(TrainTest.AsConv(p), TrainTest.RealX(c.X, p.InputZeroPoint, c.Sx), TrainTest.ToDouble(c.Dy), 1);
            double[] gb = TrainTest.BiasGradient(c.Dy, p.C);
            double maxStep = g.Select((v, i) => v / c.Sw[i / (k * k)]).Concat(gb.Select((v, ch) => v / (c.Sx * (double)c.Sw[ch]))).Concat(new[] { 1e-9 }).Max(Math.Abs);
            var rule = new UpdateRule { LearningRate = (float)(20 / maxStep), Qas = true };
            byte[] w = (byte[])c.W.Clone();
            int[] bias0 = Enumerable.Range(0, p.C).Select(_ => rng.Next(-1000, 1000)).ToArray();
            byte[] bias = Int32s(bias0);
            uint seed = StochasticRounding.DefaultSeed;
            DepthwiseConv2D.Update(p, c.X, 0, TrainTest.Floats(c.Dy), 0, w, 0, bias, 0, TrainTest.Floats(c.Sw), 0, c.Sx, train, rule, [], -1, ref seed);
            for (int i = 0; i < w.Length; i++)
            {
                int ch = i / (k * k);
                if (ch >= train)
                {
                    Assert.Equal(c.W[i], w[i]);
                }
                else
                {
                    AssertStep((sbyte)c.W[i], (sbyte)w[i], -rule.LearningRate * g[i] / c.Sw[ch], $"{c} w[{i}]");
                }
            }
            for (int ch = 0; ch < p.C; ch++)
            {
                AssertBiasStep(bias0[ch], ReadInt32(bias, ch), -rule.LearningRate * gb[ch] / (c.Sx * (double)c.Sw[ch]), $"{c} bias[{ch}]");
            }
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void FullyConnected_IsUnbiasedOverSeeds(bool qas)
    {
        var rng = new Random(qas ? 91 : 92);
        FcCase c = TrainTest.RandomFc(rng, inputs: 4, outputs: 3);
        var p = c.P;
        c.W = TrainTest.Int8(rng, c.W.Length, -60, 60);
        const int train = 2;
        double[] x = TrainTest.RealX(c.X, p.InputZeroPoint, c.Sx);
        var expected = new double[p.Out * train];
        double max = 1e-9;
        for (int o = 0; o < p.Out; o++)
        {
            for (int i = 0; i < train; i++)
            {
                double g = c.Dy[o] * x[i];
                expected[o * train + i] = qas ? g / c.Sw[o] : g * c.Sw[o];
                max = Math.Max(max, Math.Abs(expected[o * train + i]));
            }
        }
        // Steps of a few int8 units with fractions: the mean over many seeds must land on the fraction.
        var rule = new UpdateRule { LearningRate = (float)(3.37 / max), Qas = qas };
        byte[] dy = TrainTest.Floats(c.Dy), scales = TrainTest.Floats(c.Sw);
        var sum = new double[expected.Length];
        const int seeds = 4000;
        byte[] w = new byte[c.W.Length];
        for (int s = 1; s <= seeds; s++)
        {
            Array.Copy(c.W, w, w.Length);
            uint rngState = (uint)s * 2654435761u;
            FullyConnected.Update(p, c.X, 0, dy, 0, w, 0, [], -1, scales, 0, c.Sx, train, rule, [], -1, ref rngState);
            for (int o = 0; o < p.Out; o++)
            {
                for (int i = 0; i < train; i++)
                {
                    sum[o * train + i] += (sbyte)w[o * p.In + i] - (sbyte)c.W[o * p.In + i];
                }
                for (int i = train; i < p.In; i++)
                {
                    Assert.Equal(c.W[o * p.In + i], w[o * p.In + i]);
                }
            }
        }
        for (int j = 0; j < expected.Length; j++)
        {
            double mean = sum[j] / seeds;
            double want = -rule.LearningRate * expected[j];
            Assert.True(Math.Abs(mean - want) < 0.04, $"mean step {mean}, expected {want} (qas {qas})");
        }
    }

    [Theory]
    [InlineData(-0.1f, 100)]
    [InlineData(0.1f, -100)]
    public void TinySteps_AccumulateOnAverage(float dyValue, int expectedAfter)
    {
        // g = dy * (x - zp) * s_x = dy; QAS step = -lr * g / s_w = 0.01 of an int8 unit per step.
        var p = new FullyConnectedParams { In = 1, Out = 1, InputZeroPoint = 0, ActMin = -128, ActMax = 127 };
        byte[] x = [1];
        byte[] dy = TrainTest.Floats([dyValue]);
        byte[] scales = TrainTest.Floats([0.01f]);
        byte[] w = [0];
        byte[] bias = new byte[4];
        var rule = new UpdateRule { LearningRate = 1e-3f, Qas = true };
        uint rng = StochasticRounding.DefaultSeed;
        for (int step = 0; step < 10000; step++)
        {
            FullyConnected.Update(p, x, 0, dy, 0, w, 0, bias, 0, scales, 0, 1f, 1, rule, [], -1, ref rng);
        }
        int wAfter = (sbyte)w[0];
        int bAfter = ReadInt32(bias, 0);
        // 10000 Bernoulli(0.01) draws: mean 100, standard deviation about 10.
        int sign = Math.Sign(expectedAfter);
        Assert.InRange(wAfter * sign, 65, 135);
        Assert.InRange(bAfter * sign, 65, 135);
    }

    [Fact]
    public void Momentum_StateFollowsTheRecurrence()
    {
        var rng = new Random(101);
        FcCase c = TrainTest.RandomFc(rng, inputs: 3, outputs: 2);
        var p = c.P;
        c.W = TrainTest.Int8(rng, c.W.Length, -20, 20);
        const int train = 2;
        const float m = 0.9f;
        var rule = new UpdateRule { LearningRate = 1e-4f, Momentum = m, Qas = true };
        double[] x = TrainTest.RealX(c.X, p.InputZeroPoint, c.Sx);
        // Trained weights (o, i < 2) then biases (o): 6 entries.
        var gTilde = new double[6];
        for (int o = 0; o < 2; o++)
        {
            for (int i = 0; i < train; i++)
            {
                gTilde[o * train + i] = c.Dy[o] * x[i] / c.Sw[o];
            }
            gTilde[4 + o] = c.Dy[o] / (c.Sx * (double)c.Sw[o]);
        }
        byte[] state = new byte[8 + 24 + 8];
        byte[] w = (byte[])c.W.Clone();
        byte[] bias = new byte[8];
        byte[] dy = TrainTest.Floats(c.Dy), scales = TrainTest.Floats(c.Sw);
        uint seed = 7;
        var v = new double[6];
        for (int step = 0; step < 4; step++)
        {
            FullyConnected.Update(p, c.X, 0, dy, 0, w, 0, bias, 0, scales, 0, c.Sx, train, rule, state, 8, ref seed);
            for (int j = 0; j < 6; j++)
            {
                v[j] = m * v[j] + gTilde[j];
                TrainTest.Close(v[j], FloatBits.Read(state, 8 + 4 * j), Math.Abs(v[j]) * 4, $"v[{j}] after step {step}");
            }
        }
        Assert.All(state.Take(8).Concat(state.Skip(32)), b => Assert.Equal(0, b));

        // Bias only: the biases' state starts at the offset.
        byte[] biasState = new byte[4 + 8];
        seed = 7;
        FullyConnected.Update(p, c.X, 0, dy, 0, [], -1, bias, 0, scales, 0, c.Sx, train, rule, biasState, 4, ref seed);
        TrainTest.Close(gTilde[4], FloatBits.Read(biasState, 4), Math.Abs(gTilde[4]) * 4, "bias-only v[0]");
        TrainTest.Close(gTilde[5], FloatBits.Read(biasState, 8), Math.Abs(gTilde[5]) * 4, "bias-only v[1]");
    }

    [Fact]
    public void Momentum_ConvLayoutIsWeightsThenBiases()
    {
        var rng = new Random(102);
        ConvCase c = TrainTest.RandomConv(rng, groups: 2, stride: 2);
        var p = c.P;
        int k = p.Kernel;
        int train = c.IcPerGroup;
        var (g, _) = TrainTest.ConvWeightGradient(p, TrainTest.RealX(c.X, p.InputZeroPoint, c.Sx), TrainTest.ToDouble(c.Dy), train);
        double[] gb = TrainTest.BiasGradient(c.Dy, p.OutC);
        int nw = g.Length;
        byte[] state = new byte[4 * (nw + p.OutC)];
        var rule = new UpdateRule { LearningRate = 0, Momentum = 0.5f, Qas = false };
        uint seed = 3;
        byte[] w = (byte[])c.W.Clone();
        Conv2D.Update(p, c.X, 0, TrainTest.Floats(c.Dy), 0, w, 0, new byte[4 * p.OutC], 0, TrainTest.Floats(c.Sw), 0, c.Sx, train, rule, state, 0, ref seed);
        var (_, mag) = TrainTest.ConvWeightGradient(p, TrainTest.RealX(c.X, p.InputZeroPoint, c.Sx), TrainTest.ToDouble(c.Dy), train);
        for (int j = 0; j < nw; j++)
        {
            double sw = c.Sw[j / (train * k * k)];
            TrainTest.Close(g[j] * sw, FloatBits.Read(state, 4 * j), mag[j] * sw, $"{c} v[{j}]");
        }
        for (int oc = 0; oc < p.OutC; oc++)
        {
            TrainTest.Close(gb[oc] * c.Sx * c.Sw[oc], FloatBits.Read(state, 4 * (nw + oc)), c.Dy.Sum(v => Math.Abs(v)) * c.Sx * c.Sw[oc], $"{c} vb[{oc}]");
        }
        Assert.Equal(c.W, w); // lr 0: nothing moves
    }

    [Fact]
    public void Saturates_Int8AndInt32()
    {
        var p = new FullyConnectedParams { In = 1, Out = 2, InputZeroPoint = 0, ActMin = -128, ActMax = 127 };
        byte[] x = [1];
        byte[] dy = TrainTest.Floats([-50f, 50f]);
        byte[] scales = TrainTest.Floats([1f, 1f]);
        byte[] w = Int8Of(127, -127);
        byte[] bias = Int32s([int.MaxValue - 5, int.MinValue + 5]);
        var rule = new UpdateRule { LearningRate = 1f, Qas = true };
        uint rng = 1;
        FullyConnected.Update(p, x, 0, dy, 0, w, 0, bias, 0, scales, 0, 1f, 1, rule, [], -1, ref rng);
        Assert.Equal(127, (sbyte)w[0]);
        Assert.Equal(-127, (sbyte)w[1]);
        Assert.Equal(int.MaxValue, ReadInt32(bias, 0));
        Assert.Equal(int.MinValue, ReadInt32(bias, 1));

        // -128 (outside the symmetric range) comes back inside it; a huge step saturates rather than wraps.
        w = Int8Of(-128, 0);
        rule.LearningRate = 1e30f;
        bias = Int32s([0, 0]);
        FullyConnected.Update(p, x, 0, dy, 0, w, 0, bias, 0, scales, 0, 1f, 1, rule, [], -1, ref rng);
        Assert.Equal(127, (sbyte)w[0]);
        Assert.Equal(-127, (sbyte)w[1]);
        Assert.Equal(StochasticRounding.Limit, ReadInt32(bias, 0));
        Assert.Equal(-StochasticRounding.Limit, ReadInt32(bias, 1));
    }

    private static byte[] Int8Of(params int[] v) => v.Select(i => (byte)(sbyte)i).ToArray();

    [Fact]
    public void Untrained_TensorsAreNotTouched_AndSeedsReplay()
    {
        var rng = new Random(111);
        ConvCase c = TrainTest.RandomConv(rng, groups: 1, stride: 1);
        var p = c.P;
        byte[] dy = TrainTest.Floats(c.Dy), scales = TrainTest.Floats(c.Sw);
        var rule = new UpdateRule { LearningRate = 0.5f, Qas = true };
        byte[] w = (byte[])c.W.Clone();
        byte[] bias = Int32s(new int[p.OutC]);
        uint seed = 5;
        Conv2D.Update(p, c.X, 0, dy, 0, w, -1, bias, 0, scales, 0, c.Sx, c.IcPerGroup, rule, [], -1, ref seed);
        Assert.Equal(c.W, w);
        Assert.NotEqual(new byte[bias.Length], bias);
        byte[] biasAfter = (byte[])bias.Clone();
        Conv2D.Update(p, c.X, 0, dy, 0, w, 0, bias, -1, scales, 0, c.Sx, c.IcPerGroup, rule, [], -1, ref seed);
        Assert.Equal(biasAfter, bias);

        // The same seed gives the same bytes; the state moves on.
        byte[] w1 = (byte[])c.W.Clone(), w2 = (byte[])c.W.Clone();
        uint s1 = 99, s2 = 99;
        Conv2D.Update(p, c.X, 0, dy, 0, w1, 0, [], -1, scales, 0, c.Sx, 1, rule, [], -1, ref s1);
        Conv2D.Update(p, c.X, 0, dy, 0, w2, 0, [], -1, scales, 0, c.Sx, 1, rule, [], -1, ref s2);
        Assert.Equal(w1, w2);
        Assert.Equal(s1, s2);
        Assert.NotEqual(99u, s1);
    }
}
