namespace TinyTrain.Runtime.Tests.Training;

// Inside the namespace: the name Training must mean the kernel class, not this test namespace.
using TinyTrain.Runtime.Kernels;

/// <summary>A random conv layer with its tensors: x int8, w int8, s_w, s_x and a float dy, each in its own buffer.</summary>
internal sealed class ConvCase
{
    public ConvParams P;
    public byte[] X = [];
    public byte[] W = [];
    public float[] Sw = [];
    public float Sx;
    public float[] Dy = [];
    public int IcPerGroup => P.InC / P.Groups;
    public int OcPerGroup => P.OutC / P.Groups;

    public override string ToString() =>
        $"Conv in {P.InC}x{P.H}x{P.W} out {P.OutC}x{P.OH}x{P.OW} k{P.Kernel} s{P.Stride} p{P.Pad} g{P.Groups} zp {P.InputZeroPoint}";
}

internal sealed class DepthwiseCase
{
    public DepthwiseParams P;
    public byte[] X = [];
    public byte[] W = [];
    public float[] Sw = [];
    public float Sx;
    public float[] Dy = [];

    public override string ToString() => $"Depthwise {P.C}x{P.H}x{P.W} -> {P.OH}x{P.OW} k{P.Kernel} s{P.Stride} p{P.Pad} zp {P.InputZeroPoint}";
}

internal sealed class FcCase
{
    public FullyConnectedParams P;
    public byte[] X = [];
    public byte[] W = [];
    public float[] Sw = [];
    public float Sx;
    public float[] Dy = [];

    public override string ToString() => $"FC {P.In} -> {P.Out} zp {P.InputZeroPoint}";
}

/// <summary>Random layers, float32 buffers, and the straightforward double-precision computations the kernels are checked against.</summary>
internal static class TrainTest
{
    public static byte[] Floats(float[] values, int lead = 0, int tail = 0)
    {
        var b = new byte[lead + 4 * values.Length + tail];
        for (int i = 0; i < values.Length; i++)
        {
            FloatBits.Write(b, lead + 4 * i, values[i]);
        }
        return b;
    }

    public static float[] ReadFloats(byte[] b, int offset, int count)
    {
        var v = new float[count];
        for (int i = 0; i < count; i++)
        {
            v[i] = FloatBits.Read(b, offset + 4 * i);
        }
        return v;
    }

    public static float[] Normal(Random rng, int count, double sigma = 1)
    {
        var v = new float[count];
        for (int i = 0; i < count; i++)
        {
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            v[i] = (float)(sigma * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
        return v;
    }

    public static byte[] Int8(Random rng, int count, int min = -128, int max = 127)
    {
        var b = new byte[count];
        for (int i = 0; i < count; i++)
        {
            b[i] = (byte)(sbyte)rng.Next(min, max + 1);
        }
        return b;
    }

    public static float[] Scales(Random rng, int count)
    {
        var s = new float[count];
        for (int i = 0; i < count; i++)
        {
            s[i] = (float)(0.002 + 0.05 * rng.NextDouble());
        }
        return s;
    }

    public static int ZeroPoint(Random rng) => rng.Next(4) switch
    {
        0 => -128,
        1 => 0,
        _ => rng.Next(-128, 128),
    };

    public static ConvCase RandomConv(Random rng, int? groups = null, int? stride = null)
    {
        int g = groups ?? (rng.Next(3) == 0 ? rng.Next(2, 4) : 1);
        int icpg = rng.Next(1, 4), ocpg = rng.Next(1, 4);
        int[] kernels = [1, 3, 3, 5];
        int k = kernels[rng.Next(kernels.Length)];
        int s = stride ?? rng.Next(1, 3);
        int pad = rng.Next(0, k / 2 + 1);
        int h = rng.Next(Math.Max(1, k - 2 * pad), 10), w = rng.Next(Math.Max(1, k - 2 * pad), 10);
        var p = new ConvParams
        {
            InC = g * icpg,
            H = h,
            W = w,
            OutC = g * ocpg,
            OH = (h + 2 * pad - k) / s + 1,
            OW = (w + 2 * pad - k) / s + 1,
            Kernel = k,
            Stride = s,
            Pad = pad,
            Groups = g,
            InputZeroPoint = ZeroPoint(rng),
            ActMin = -128,
            ActMax = 127,
        };
        return new ConvCase
        {
            P = p,
            X = Int8(rng, p.InC * h * w),
            W = Int8(rng, p.OutC * icpg * k * k, -127, 127),
            Sw = Scales(rng, p.OutC),
            Sx = (float)(0.005 + 0.1 * rng.NextDouble()),
            Dy = Normal(rng, p.OutC * p.OH * p.OW),
        };
    }

    public static DepthwiseCase RandomDepthwise(Random rng, int k, int stride)
    {
        int c = rng.Next(1, 6);
        int pad = rng.Next(0, k / 2 + 1);
        int h = rng.Next(Math.Max(1, k - 2 * pad), 12), w = rng.Next(Math.Max(1, k - 2 * pad), 12);
        var p = new DepthwiseParams
        {
            C = c,
            H = h,
            W = w,
            OH = (h + 2 * pad - k) / stride + 1,
            OW = (w + 2 * pad - k) / stride + 1,
            Kernel = k,
            Stride = stride,
            Pad = pad,
            InputZeroPoint = ZeroPoint(rng),
            ActMin = -128,
            ActMax = 127,
        };
        return new DepthwiseCase
        {
            P = p,
            X = Int8(rng, c * h * w),
            W = Int8(rng, c * k * k, -127, 127),
            Sw = Scales(rng, c),
            Sx = (float)(0.005 + 0.1 * rng.NextDouble()),
            Dy = Normal(rng, c * p.OH * p.OW),
        };
    }

    public static FcCase RandomFc(Random rng, int? inputs = null, int? outputs = null)
    {
        var p = new FullyConnectedParams
        {
            In = inputs ?? rng.Next(1, 40),
            Out = outputs ?? rng.Next(1, 12),
            InputZeroPoint = ZeroPoint(rng),
            ActMin = -128,
            ActMax = 127,
        };
        return new FcCase
        {
            P = p,
            X = Int8(rng, p.In),
            W = Int8(rng, p.Out * p.In, -127, 127),
            Sw = Scales(rng, p.Out),
            Sx = (float)(0.005 + 0.1 * rng.NextDouble()),
            Dy = Normal(rng, p.Out),
        };
    }

    /// <summary>Conv as the user would view it: depthwise is a conv with groups == channels.</summary>
    public static ConvParams AsConv(DepthwiseParams d) => new()
    {
        InC = d.C,
        H = d.H,
        W = d.W,
        OutC = d.C,
        OH = d.OH,
        OW = d.OW,
        Kernel = d.Kernel,
        Stride = d.Stride,
        Pad = d.Pad,
        Groups = d.C,
        InputZeroPoint = d.InputZeroPoint,
        ActMin = -128,
        ActMax = 127,
    };

    public static double[] RealX(byte[] x, int zp, double sx) => x.Select(q => ((sbyte)q - zp) * sx).ToArray();

    /// <summary>w (OutC, InC/G, K, K) dequantized per output channel.</summary>
    public static double[] RealW(byte[] w, float[] sw)
    {
        int per = w.Length / sw.Length;
        return w.Select((q, i) => (sbyte)q * (double)sw[i / per]).ToArray();
    }

    /// <summary>The conv's linear part in double: y = conv(x, w), no bias, no clamp.</summary>
    public static double[] ConvForward(in ConvParams p, double[] x, double[] w)
    {
        int k = p.Kernel, icpg = p.InC / p.Groups, ocpg = p.OutC / p.Groups;
        var y = new double[p.OutC * p.OH * p.OW];
        for (int oc = 0; oc < p.OutC; oc++)
        {
            int icBase = oc / ocpg * icpg;
            for (int oy = 0; oy < p.OH; oy++)
            {
                for (int ox = 0; ox < p.OW; ox++)
                {
                    double acc = 0;
                    for (int i = 0; i < icpg; i++)
                    {
                        for (int ky = 0; ky < k; ky++)
                        {
                            for (int kx = 0; kx < k; kx++)
                            {
                                int iy = oy * p.Stride - p.Pad + ky, ix = ox * p.Stride - p.Pad + kx;
                                if (iy >= 0 && iy < p.H && ix >= 0 && ix < p.W)
                                {
                                    acc += x[((icBase + i) * p.H + iy) * p.W + ix] * w[((oc * icpg + i) * k + ky) * k + kx];
                                }
                            }
                        }
                    }
                    y[(oc * p.OH + oy) * p.OW + ox] = acc;
                }
            }
        }
        return y;
    }

    /// <summary>The transposed conv by scattering each dy into its window: dx, and Σ|term| per element for a tolerance.</summary>
    public static (double[] Dx, double[] Mag) ConvTranspose(in ConvParams p, double[] dy, double[] w)
    {
        int k = p.Kernel, icpg = p.InC / p.Groups, ocpg = p.OutC / p.Groups;
        var dx = new double[p.InC * p.H * p.W];
        var mag = new double[dx.Length];
        for (int oc = 0; oc < p.OutC; oc++)
        {
            int icBase = oc / ocpg * icpg;
            for (int oy = 0; oy < p.OH; oy++)
            {
                for (int ox = 0; ox < p.OW; ox++)
                {
                    double g = dy[(oc * p.OH + oy) * p.OW + ox];
                    for (int i = 0; i < icpg; i++)
                    {
                        for (int ky = 0; ky < k; ky++)
                        {
                            for (int kx = 0; kx < k; kx++)
                            {
                                int iy = oy * p.Stride - p.Pad + ky, ix = ox * p.Stride - p.Pad + kx;
                                if (iy >= 0 && iy < p.H && ix >= 0 && ix < p.W)
                                {
                                    double t = g * w[((oc * icpg + i) * k + ky) * k + kx];
                                    dx[((icBase + i) * p.H + iy) * p.W + ix] += t;
                                    mag[((icBase + i) * p.H + iy) * p.W + ix] += Math.Abs(t);
                                }
                            }
                        }
                    }
                }
            }
        }
        return (dx, mag);
    }

    /// <summary>dL/dw for the first trainChannels inputs of each group, (OutC, trainChannels, K, K), and Σ|term| per element.</summary>
    public static (double[] Dw, double[] Mag) ConvWeightGradient(in ConvParams p, double[] x, double[] dy, int trainChannels)
    {
        int k = p.Kernel, icpg = p.InC / p.Groups, ocpg = p.OutC / p.Groups;
        var dw = new double[p.OutC * trainChannels * k * k];
        var mag = new double[dw.Length];
        for (int oc = 0; oc < p.OutC; oc++)
        {
            int icBase = oc / ocpg * icpg;
            for (int oy = 0; oy < p.OH; oy++)
            {
                for (int ox = 0; ox < p.OW; ox++)
                {
                    double g = dy[(oc * p.OH + oy) * p.OW + ox];
                    for (int i = 0; i < trainChannels; i++)
                    {
                        for (int ky = 0; ky < k; ky++)
                        {
                            for (int kx = 0; kx < k; kx++)
                            {
                                int iy = oy * p.Stride - p.Pad + ky, ix = ox * p.Stride - p.Pad + kx;
                                if (iy >= 0 && iy < p.H && ix >= 0 && ix < p.W)
                                {
                                    double t = g * x[((icBase + i) * p.H + iy) * p.W + ix];
                                    dw[((oc * trainChannels + i) * k + ky) * k + kx] += t;
                                    mag[((oc * trainChannels + i) * k + ky) * k + kx] += Math.Abs(t);
                                }
                            }
                        }
                    }
                }
            }
        }
        return (dw, mag);
    }

    /// <summary>Σ dy over each output channel's plane.</summary>
    public static double[] BiasGradient(float[] dy, int channels)
    {
        int plane = dy.Length / channels;
        var db = new double[channels];
        for (int c = 0; c < channels; c++)
        {
            for (int i = 0; i < plane; i++)
            {
                db[c] += dy[c * plane + i];
            }
        }
        return db;
    }

    public static double[] ToDouble(float[] v) => v.Select(f => (double)f).ToArray();

    public static double Dot(double[] a, double[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++)
        {
            s += a[i] * b[i];
        }
        return s;
    }

    public static double AbsDot(double[] a, double[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++)
        {
            s += Math.Abs(a[i] * b[i]);
        }
        return s;
    }

    /// <summary>|actual - expected| within a float32 summation's error: rel times the sum of the magnitudes of the terms.</summary>
    public static void Close(double expected, double actual, double magnitude, string what, double rel = 1e-5)
    {
        double tol = rel * magnitude + 1e-7;
        Assert.True(Math.Abs(actual - expected) <= tol, $"{what}: expected {expected}, got {actual} (tolerance {tol})");
    }
}
