namespace TinyTrain.Runtime.Tests.Training;

using TinyTrain.Runtime.Kernels;

/// <summary>
/// WeightGradient (the code Update applies) against the double-precision formula and against finite differences
/// of a float conv: L(w, b) = 0.5 Σ y^2 + Σ c y, y = conv(x_real, w_real) + b, so dL/dy = y + c is the dy fed in.
/// </summary>
public class WeightGradientTests
{
    [Fact]
    public void Conv_MatchesFormula()
    {
        var rng = new Random(41);
        for (int t = 0; t < 150; t++)
        {
            ConvCase c = TrainTest.RandomConv(rng, stride: t % 2 == 0 ? 2 : null);
            int train = rng.Next(0, c.IcPerGroup + 1);
            float[] dw = new float[c.P.OutC * train * c.P.Kernel * c.P.Kernel];
            float[] db = new float[c.P.OutC];
            Conv2D.WeightGradient(c.P, c.X, 0, TrainTest.Floats(c.Dy), 0, c.Sx, train, dw, db);
            var (expected, mag) = TrainTest.ConvWeightGradient(c.P, TrainTest.RealX(c.X, c.P.InputZeroPoint, c.Sx), TrainTest.ToDouble(c.Dy), train);
            for (int i = 0; i < dw.Length; i++)
            {
                TrainTest.Close(expected[i], dw[i], mag[i], $"{c} train {train} dw[{i}]");
            }
            double[] expectedDb = TrainTest.BiasGradient(c.Dy, c.P.OutC);
            for (int oc = 0; oc < c.P.OutC; oc++)
            {
                TrainTest.Close(expectedDb[oc], db[oc], c.Dy.Sum(v => Math.Abs((double)v)), $"{c} db[{oc}]");
            }
        }
    }

    [Fact]
    public void Conv_MatchesFiniteDifferences()
    {
        var rng = new Random(42);
        for (int t = 0; t < 20; t++)
        {
            ConvCase c = TrainTest.RandomConv(rng, stride: t % 2 == 0 ? 2 : 1);
            var p = c.P;
            double[] x = TrainTest.RealX(c.X, p.InputZeroPoint, c.Sx);
            double[] w = TrainTest.RealW(c.W, c.Sw);
            double[] b = TrainTest.ToDouble(TrainTest.Normal(rng, p.OutC, 0.1));
            double[] coef = TrainTest.ToDouble(TrainTest.Normal(rng, p.OutC * p.OH * p.OW));
            int plane = p.OH * p.OW;

            double Loss(double[] wt, double[] bias)
            {
                double[] y = TrainTest.ConvForward(p, x, wt);
                double l = 0;
                for (int i = 0; i < y.Length; i++)
                {
                    double v = y[i] + bias[i / plane];
                    l += 0.5 * v * v + coef[i] * v;
                }
                return l;
            }

            double[] y0 = TrainTest.ConvForward(p, x, w);
            float[] dy = y0.Select((v, i) => (float)(v + b[i / plane] + coef[i])).ToArray();
            int train = rng.Next(1, c.IcPerGroup + 1);
            int k = p.Kernel;
            float[] dw = new float[p.OutC * train * k * k];
            float[] db = new float[p.OutC];
            Conv2D.WeightGradient(p, c.X, 0, TrainTest.Floats(dy), 0, c.Sx, train, dw, db);
            var (_, mag) = TrainTest.ConvWeightGradient(p, x, TrainTest.ToDouble(dy), train);

            const double h = 1e-3;
            for (int oc = 0; oc < p.OutC; oc++)
            {
                for (int i = 0; i < train; i++)
                {
                    for (int tap = 0; tap < k * k; tap++)
                    {
                        int at = (oc * c.IcPerGroup + i) * k * k + tap;
                        int g = (oc * train + i) * k * k + tap;
                        double saved = w[at];
                        w[at] = saved + h;
                        double up = Loss(w, b);
                        w[at] = saved - h;
                        double down = Loss(w, b);
                        w[at] = saved;
                        TrainTest.Close((up - down) / (2 * h), dw[g], mag[g] + 1e-3, $"{c} dw[{g}]", rel: 2e-5);
                    }
                }
                double bs = b[oc];
                b[oc] = bs + h;
                double bu = Loss(w, b);
                b[oc] = bs - h;
                double bd = Loss(w, b);
                b[oc] = bs;
                TrainTest.Close((bu - bd) / (2 * h), db[oc], dy.Sum(v => Math.Abs((double)v)) + 1e-3, $"{c} db[{oc}]", rel: 2e-5);
            }
        }
    }

    [Theory]
    [InlineData(3, 1)]
    [InlineData(3, 2)]
    [InlineData(5, 2)]
    [InlineData(7, 1)]
    public void Depthwise_MatchesConvFormula(int k, int stride)
    {
        var rng = new Random(50 + k * 3 + stride);
        for (int t = 0; t < 30; t++)
        {
            DepthwiseCase c = TrainTest.RandomDepthwise(rng, k, stride);
            int train = rng.Next(0, c.P.C + 1);
            float[] dw = new float[train * k * k];
            float[] db = new float[c.P.C];
            DepthwiseConv2D.WeightGradient(c.P, c.X, 0, TrainTest.Floats(c.Dy), 0, c.Sx, train, dw, db);
            // A depthwise conv is a conv with groups == C and one input per group: train == 1 gives every channel's filter.
            ConvParams conv = TrainTest.AsConv(c.P);
            var (expected, mag) = TrainTest.ConvWeightGradient(conv, TrainTest.RealX(c.X, c.P.InputZeroPoint, c.Sx), TrainTest.ToDouble(c.Dy), 1);
            for (int i = 0; i < dw.Length; i++)
            {
                TrainTest.Close(expected[i], dw[i], mag[i], $"{c} dw[{i}]");
            }
            double[] expectedDb = TrainTest.BiasGradient(c.Dy, c.P.C);
            for (int ch = 0; ch < c.P.C; ch++)
            {
                TrainTest.Close(expectedDb[ch], db[ch], c.Dy.Sum(v => Math.Abs((double)v)), $"{c} db[{ch}]");
            }
        }
    }

    [Fact]
    public void FullyConnected_MatchesFiniteDifferences()
    {
        var rng = new Random(61);
        for (int t = 0; t < 40; t++)
        {
            FcCase c = TrainTest.RandomFc(rng);
            var p = c.P;
            double[] x = TrainTest.RealX(c.X, p.InputZeroPoint, c.Sx);
            double[] w = TrainTest.RealW(c.W, c.Sw);
            double[] coef = TrainTest.ToDouble(TrainTest.Normal(rng, p.Out));

            double Loss()
            {
                double l = 0;
                for (int o = 0; o < p.Out; o++)
                {
                    double y = 0;
                    for (int i = 0; i < p.In; i++)
                    {
                        y += w[o * p.In + i] * x[i];
                    }
                    l += 0.5 * y * y + coef[o] * y;
                }
                return l;
            }

            float[] dy = new float[p.Out];
            for (int o = 0; o < p.Out; o++)
            {
                double y = 0;
                for (int i = 0; i < p.In; i++)
                {
                    y += w[o * p.In + i] * x[i];
                }
                dy[o] = (float)(y + coef[o]);
            }
            int train = rng.Next(1, p.In + 1);
            float[] dw = new float[p.Out * train];
            float[] db = new float[p.Out];
            FullyConnected.WeightGradient(p, c.X, 0, TrainTest.Floats(dy), 0, c.Sx, train, dw, db);
            const double h = 1e-3;
            for (int o = 0; o < p.Out; o++)
            {
                for (int i = 0; i < train; i++)
                {
                    int at = o * p.In + i;
                    double saved = w[at];
                    w[at] = saved + h;
                    double up = Loss();
                    w[at] = saved - h;
                    double down = Loss();
                    w[at] = saved;
                    TrainTest.Close((up - down) / (2 * h), dw[o * train + i], Math.Abs(dy[o] * x[i]) + 1e-3, $"{c} dw[{o},{i}]", rel: 2e-5);
                }
                Assert.Equal(dy[o], db[o]);
            }
        }
    }
}
