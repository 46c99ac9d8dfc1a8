namespace TinyTrain.Runtime.Tests.Training;

using TinyTrain.Runtime.Kernels;

/// <summary>BackwardInput and the pools' Backward: against a scatter in double, and as the exact adjoint of the forward's linear map.</summary>
public class BackwardInputTests
{
    private static void AssertConv(ConvCase c, string what)
    {
        var p = c.P;
        int dxCount = p.InC * p.H * p.W;
        byte[] dy = TrainTest.Floats(c.Dy, lead: 12);
        byte[] scales = TrainTest.Floats(c.Sw, lead: 4);
        byte[] wImage = new byte[7 + c.W.Length];
        Array.Copy(c.W, 0, wImage, 7, c.W.Length);
        byte[] dx = new byte[8 + 4 * dxCount + 8];
        Conv2D.BackwardInput(p, dy, 12, wImage, 7, scales, 4, dx, 8, accumulate: false);
        float[] got = TrainTest.ReadFloats(dx, 8, dxCount);

        double[] w = TrainTest.RealW(c.W, c.Sw);
        var (expected, mag) = TrainTest.ConvTranspose(p, TrainTest.ToDouble(c.Dy), w);
        for (int i = 0; i < dxCount; i++)
        {
            TrainTest.Close(expected[i], got[i], mag[i], $"{what} dx[{i}]");
        }
        Assert.All(dx.Take(8).Concat(dx.Skip(8 + 4 * dxCount)), b => Assert.Equal(0, b));

        // Adjoint: <conv(x), dy> == <x, convT(dy)> for a real x.
        var rng = new Random(dxCount);
        double[] x = TrainTest.ToDouble(TrainTest.Normal(rng, dxCount));
        double[] y = TrainTest.ConvForward(p, x, w);
        double lhs = TrainTest.Dot(y, TrainTest.ToDouble(c.Dy));
        double rhs = TrainTest.Dot(x, TrainTest.ToDouble(got));
        TrainTest.Close(lhs, rhs, TrainTest.AbsDot(x, mag), $"{what} adjoint");
    }

    [Fact]
    public void Conv_MatchesTransposedConvAndIsTheAdjoint()
    {
        var rng = new Random(11);
        for (int t = 0; t < 150; t++)
        {
            ConvCase c = TrainTest.RandomConv(rng, stride: t % 3 == 0 ? 2 : null);
            AssertConv(c, c.ToString());
        }
    }

    [Fact]
    public void Conv_GroupedStride2Padded()
    {
        var rng = new Random(12);
        for (int t = 0; t < 30; t++)
        {
            ConvCase c = TrainTest.RandomConv(rng, groups: 3, stride: 2);
            AssertConv(c, c.ToString());
        }
    }

    [Fact]
    public void Conv_AccumulateAddsToDx()
    {
        var rng = new Random(13);
        ConvCase c = TrainTest.RandomConv(rng, groups: 2, stride: 2);
        var p = c.P;
        int n = p.InC * p.H * p.W;
        float[] prior = TrainTest.Normal(rng, n);
        byte[] dy = TrainTest.Floats(c.Dy), scales = TrainTest.Floats(c.Sw);
        byte[] fresh = new byte[4 * n];
        byte[] acc = TrainTest.Floats(prior);
        Conv2D.BackwardInput(p, dy, 0, c.W, 0, scales, 0, fresh, 0, accumulate: false);
        Conv2D.BackwardInput(p, dy, 0, c.W, 0, scales, 0, acc, 0, accumulate: true);
        float[] a = TrainTest.ReadFloats(fresh, 0, n), b = TrainTest.ReadFloats(acc, 0, n);
        for (int i = 0; i < n; i++)
        {
            Assert.Equal(prior[i] + a[i], b[i]);
        }
    }

    [Theory]
    [InlineData(3, 1)]
    [InlineData(3, 2)]
    [InlineData(5, 1)]
    [InlineData(5, 2)]
    [InlineData(7, 1)]
    [InlineData(7, 2)]
    public void Depthwise_MatchesTransposedConvAndIsTheAdjoint(int k, int stride)
    {
        var rng = new Random(100 * k + stride);
        for (int t = 0; t < 30; t++)
        {
            DepthwiseCase c = TrainTest.RandomDepthwise(rng, k, stride);
            var p = c.P;
            int n = p.C * p.H * p.W;
            byte[] dx = new byte[4 * n + 4];
            float[] prior = TrainTest.Normal(rng, n);
            byte[] acc = TrainTest.Floats(prior);
            DepthwiseConv2D.BackwardInput(p, TrainTest.Floats(c.Dy), 0, c.W, 0, TrainTest.Floats(c.Sw), 0, dx, 4, accumulate: false);
            DepthwiseConv2D.BackwardInput(p, TrainTest.Floats(c.Dy), 0, c.W, 0, TrainTest.Floats(c.Sw), 0, acc, 0, accumulate: true);
            float[] got = TrainTest.ReadFloats(dx, 4, n);
            float[] gotAcc = TrainTest.ReadFloats(acc, 0, n);

            ConvParams conv = TrainTest.AsConv(p);
            double[] w = TrainTest.RealW(c.W, c.Sw);
            var (expected, mag) = TrainTest.ConvTranspose(conv, TrainTest.ToDouble(c.Dy), w);
            for (int i = 0; i < n; i++)
            {
                TrainTest.Close(expected[i], got[i], mag[i], $"{c} dx[{i}]");
                Assert.Equal(prior[i] + got[i], gotAcc[i]);
            }
            double[] x = TrainTest.ToDouble(TrainTest.Normal(rng, n));
            TrainTest.Close(TrainTest.Dot(TrainTest.ConvForward(conv, x, w), TrainTest.ToDouble(c.Dy)), TrainTest.Dot(x, TrainTest.ToDouble(got)),
                TrainTest.AbsDot(x, mag), $"{c} adjoint");
        }
    }

    [Fact]
    public void FullyConnected_IsWTransposeDy()
    {
        var rng = new Random(21);
        for (int t = 0; t < 60; t++)
        {
            FcCase c = TrainTest.RandomFc(rng);
            var p = c.P;
            byte[] dx = new byte[4 * p.In];
            FullyConnected.BackwardInput(p, TrainTest.Floats(c.Dy), 0, c.W, 0, TrainTest.Floats(c.Sw), 0, dx, 0, accumulate: false);
            float[] got = TrainTest.ReadFloats(dx, 0, p.In);
            double[] w = TrainTest.RealW(c.W, c.Sw);
            double[] x = TrainTest.ToDouble(TrainTest.Normal(rng, p.In));
            double lhs = 0, magTotal = 0;
            for (int i = 0; i < p.In; i++)
            {
                double e = 0, mag = 0;
                for (int o = 0; o < p.Out; o++)
                {
                    e += c.Dy[o] * w[o * p.In + i];
                    mag += Math.Abs(c.Dy[o] * w[o * p.In + i]);
                }
                TrainTest.Close(e, got[i], mag, $"{c} dx[{i}]");
                magTotal += Math.Abs(x[i]) * mag;
            }
            for (int o = 0; o < p.Out; o++)
            {
                double y = 0;
                for (int i = 0; i < p.In; i++)
                {
                    y += w[o * p.In + i] * x[i];
                }
                lhs += y * c.Dy[o];
            }
            TrainTest.Close(lhs, TrainTest.Dot(x, TrainTest.ToDouble(got)), magTotal, $"{c} adjoint");

            float[] prior = TrainTest.Normal(rng, p.In);
            byte[] acc = TrainTest.Floats(prior);
            FullyConnected.BackwardInput(p, TrainTest.Floats(c.Dy), 0, c.W, 0, TrainTest.Floats(c.Sw), 0, acc, 0, accumulate: true);
            float[] gotAcc = TrainTest.ReadFloats(acc, 0, p.In);
            for (int i = 0; i < p.In; i++)
            {
                Assert.Equal(prior[i] + got[i], gotAcc[i]);
            }
        }
    }

    [Fact]
    public void AvgPool_SpreadsEachWindowsGradientEvenly()
    {
        var rng = new Random(31);
        for (int t = 0; t < 60; t++)
        {
            int k = rng.Next(1, 4), s = rng.Next(1, 4);
            int h = rng.Next(k, 11), w = rng.Next(k, 11), ch = rng.Next(1, 4);
            var p = new PoolParams { C = ch, H = h, W = w, Kernel = k, Stride = s, OH = (h - k) / s + 1, OW = (w - k) / s + 1, ActMin = -128, ActMax = 127 };
            float[] dy = TrainTest.Normal(rng, ch * p.OH * p.OW);
            var expected = new double[ch * h * w];
            for (int c = 0; c < ch; c++)
            {
                for (int oy = 0; oy < p.OH; oy++)
                {
                    for (int ox = 0; ox < p.OW; ox++)
                    {
                        for (int ky = 0; ky < k; ky++)
                        {
                            for (int kx = 0; kx < k; kx++)
                            {
                                expected[(c * h + oy * s + ky) * w + ox * s + kx] += dy[(c * p.OH + oy) * p.OW + ox] / (double)(k * k);
                            }
                        }
                    }
                }
            }
            float[] prior = TrainTest.Normal(rng, ch * h * w);
            byte[] dx = new byte[4 * ch * h * w];
            byte[] acc = TrainTest.Floats(prior);
            AvgPool.Backward(p, TrainTest.Floats(dy), 0, dx, 0, accumulate: false);
            AvgPool.Backward(p, TrainTest.Floats(dy), 0, acc, 0, accumulate: true);
            float[] got = TrainTest.ReadFloats(dx, 0, ch * h * w), gotAcc = TrainTest.ReadFloats(acc, 0, ch * h * w);
            for (int i = 0; i < got.Length; i++)
            {
                TrainTest.Close(expected[i], got[i], Math.Abs(expected[i]) + 1e-3, $"AvgPool k{k} s{s} {h}x{w} dx[{i}]");
                Assert.Equal(prior[i] + got[i], gotAcc[i]);
            }
        }
    }

    [Fact]
    public void GlobalAvgPool_SpreadsTheMeanGradient()
    {
        var rng = new Random(32);
        var p = new PoolParams { C = 5, H = 3, W = 7, OH = 1, OW = 1, ActMin = -128, ActMax = 127 };
        float[] dy = TrainTest.Normal(rng, 5);
        float[] prior = TrainTest.Normal(rng, 5 * 21);
        byte[] dx = new byte[4 * 5 * 21];
        byte[] acc = TrainTest.Floats(prior);
        GlobalAvgPool.Backward(p, TrainTest.Floats(dy), 0, dx, 0, accumulate: false);
        GlobalAvgPool.Backward(p, TrainTest.Floats(dy), 0, acc, 0, accumulate: true);
        float[] got = TrainTest.ReadFloats(dx, 0, 105), gotAcc = TrainTest.ReadFloats(acc, 0, 105);
        for (int i = 0; i < 105; i++)
        {
            Assert.Equal(dy[i / 21] / 21f, got[i]);
            Assert.Equal(prior[i] + got[i], gotAcc[i]);
        }
    }
}
