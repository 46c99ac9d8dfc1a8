using TinyTrain.Runtime.Kernels;

namespace TinyTrain.Runtime.Tests.Kernels;

[Collection(KernelModeCollection.Name)]
public class Conv2DTests
{
    private const int Identity = 1 << 30; // with shift 1: x1.0
    private const int Half = 1 << 30;     // with shift 0: x0.5

    /// <summary>One call's buffers: x and y in one arena (as the executor lays them out), weights and constants in images.</summary>
    private sealed class Case
    {
        public ConvParams P;
        public byte[] Arena = [];
        public int XOff, YOff;
        public byte[] Image = [];
        public int WOff;
        public byte[] Consts = [];
        public int BiasOff, MultOff, ShiftOff;

        public void Exec(KernelPath path, byte[] arena)
        {
            switch (path)
            {
                case KernelPath.Reference:
                    Conv2D.RunReference(P, arena, XOff, Image, WOff, Consts, BiasOff, Consts, MultOff, ShiftOff, arena, YOff);
                    break;
                case KernelPath.Simd256:
                case KernelPath.Simd128:
                    Conv2D.RunSimd(P, arena, XOff, Image, WOff, Consts, BiasOff, Consts, MultOff, ShiftOff, arena, YOff);
                    break;
                default:
                    Conv2D.Run(P, arena, XOff, Image, WOff, Consts, BiasOff, Consts, MultOff, ShiftOff, arena, YOff);
                    break;
            }
        }

        public override string ToString() =>
            $"Conv2D x({P.InC},{P.H},{P.W}) y({P.OutC},{P.OH},{P.OW}) k{P.Kernel} s{P.Stride} p{P.Pad} g{P.Groups} zp {P.InputZeroPoint}/{P.OutputZeroPoint} act [{P.ActMin},{P.ActMax}] bias {BiasOff >= 0}";
    }

    private static ConvParams Shape(int inC, int h, int w, int outC, int k, int s, int pad, int groups)
    {
        return new ConvParams
        {
            InC = inC,
            H = h,
            W = w,
            OutC = outC,
            Kernel = k,
            Stride = s,
            Pad = pad,
            Groups = groups,
            OH = (h + 2 * pad - k) / s + 1,
            OW = (w + 2 * pad - k) / s + 1,
            ActMin = -128,
            ActMax = 127,
        };
    }

    private static Case Random(Random rng, ConvParams p, bool extremeConstants = false)
    {
        p.InputZeroPoint = KernelTest.ZeroPoint(rng);
        p.OutputZeroPoint = KernelTest.ZeroPoint(rng);
        (p.ActMin, p.ActMax) = KernelTest.Activation(rng, p.OutputZeroPoint);
        int xLen = p.InC * p.H * p.W, yLen = p.OutC * p.OH * p.OW, wLen = p.OutC * (p.InC / p.Groups) * p.Kernel * p.Kernel;
        var c = new Case { P = p, XOff = rng.Next(0, 7) };
        c.YOff = c.XOff + xLen + rng.Next(0, 7);
        c.Arena = KernelTest.RandomBytes(rng, c.YOff + yLen + rng.Next(1, 9));
        c.WOff = rng.Next(0, 5);
        c.Image = KernelTest.RandomBytes(rng, c.WOff + wLen + rng.Next(0, 4));
        KernelTest.FillWeights(rng, c.Image, c.WOff, wLen);
        c.Consts = KernelTest.Constants(rng, p.OutC, withBias: rng.Next(5) != 0, wideBias: extremeConstants, anyMultiplier: extremeConstants,
            out c.BiasOff, out c.MultOff, out c.ShiftOff);
        return c;
    }

    private static ConvParams RandomShape(Random rng)
    {
        int[] kernels = [1, 1, 3, 3, 3, 5, 7, 2, 4];
        int k = kernels[rng.Next(kernels.Length)];
        int s = rng.Next(10) switch { < 5 => 1, < 9 => 2, _ => 3 };
        int pad = rng.Next(4) == 0 ? rng.Next(0, k + 1) : k / 2;
        int groups, icg, ocg;
        switch (rng.Next(5))
        {
            case 0:
                groups = rng.Next(2, 5);
                icg = rng.Next(1, 5);
                ocg = rng.Next(1, 6);
                break;
            case 1:
                groups = rng.Next(1, 9); // depthwise-shaped: one input and one output channel per group
                icg = 1;
                ocg = 1;
                break;
            default:
                groups = 1;
                icg = rng.Next(4) == 0 ? rng.Next(1, 40) : rng.Next(1, 8);
                ocg = rng.Next(1, 11);
                break;
        }
        int minSide = Math.Max(1, k - 2 * pad);
        int h = rng.Next(minSide, minSide + 20), w = rng.Next(minSide, minSide + 26);
        return Shape(groups * icg, h, w, groups * ocg, k, s, pad, groups);
    }

    [Fact]
    public void RandomShapes_FastEqualsReference()
    {
        var rng = new Random(20240601);
        for (int trial = 0; trial < 400; trial++)
        {
            Case c = Random(rng, RandomShape(rng), extremeConstants: trial % 5 == 0);
            KernelTest.AssertPathsAgree(c.Arena, c.Exec, $"trial {trial}: {c}");
        }
    }

    [Theory]
    // Pointwise: planes in whole vectors, with tails, smaller than a vector, 1x1; channel counts off the block of 4.
    [InlineData(16, 16, 16, 24, 1, 1, 0, 1)]
    [InlineData(8, 17, 5, 48, 1, 1, 0, 1)]
    [InlineData(1, 1, 1, 1, 1, 1, 0, 1)]
    [InlineData(3, 1, 1, 5, 1, 1, 0, 1)]
    [InlineData(7, 2, 3, 9, 1, 1, 0, 1)]
    [InlineData(5, 3, 7, 6, 1, 1, 0, 1)]
    [InlineData(8, 9, 9, 6, 1, 1, 0, 2)]
    [InlineData(1030, 3, 3, 5, 1, 1, 0, 1)]  // too many input channels to pack: the general path
    [InlineData(6, 9, 11, 7, 1, 2, 0, 1)]    // strided 1x1
    [InlineData(4, 5, 5, 3, 1, 1, 1, 1)]     // padded 1x1
    // Dense: the first conv of mbv2 (small and full size), 7x7 stride 2, grouped 5x5, wide rows, rows too wide for the scratch.
    [InlineData(3, 32, 32, 16, 3, 2, 1, 1)]
    [InlineData(3, 128, 128, 16, 3, 2, 1, 1)]
    [InlineData(3, 23, 19, 8, 7, 2, 3, 1)]
    [InlineData(6, 11, 13, 9, 5, 1, 2, 3)]
    [InlineData(2, 5, 300, 3, 3, 1, 1, 1)]
    [InlineData(1, 3, 2000, 2, 3, 1, 1, 1)]
    [InlineData(40, 9, 9, 10, 3, 1, 1, 1)]
    [InlineData(4, 1, 1, 4, 3, 1, 1, 1)]     // 1x1 spatial, 3x3 kernel: only the centre tap
    [InlineData(4, 2, 2, 5, 3, 2, 1, 1)]
    public void ChosenShapes_FastEqualsReference(int inC, int h, int w, int outC, int k, int s, int pad, int groups)
    {
        var rng = new Random(inC * 1000003 + h * 7919 + w * 131 + outC * 17 + k * 5 + s * 3 + pad + groups);
        for (int trial = 0; trial < 3; trial++)
        {
            Case c = Random(rng, Shape(inC, h, w, outC, k, s, pad, groups), extremeConstants: trial == 2);
            KernelTest.AssertPathsAgree(c.Arena, c.Exec, c.ToString());
        }
    }

    [Fact]
    public void HandWorked_2x2Kernel()
    {
        // x (1,3,3) = [1 2 3; 4 5 6; 7 8 9], zp_x = 1, so x - zp = [0 1 2; 3 4 5; 6 7 8].
        // w (1,1,2,2) = [1 -1; 2 0], bias 10, M = 2^30 with shift 1 (x1.0), zp_y = -3.
        //   y00 = 10 + 0*1 + 1*(-1) + 3*2 + 4*0 = 15 -> 12
        //   y01 = 10 + 1*1 + 2*(-1) + 4*2 + 5*0 = 17 -> 14
        //   y10 = 10 + 3*1 + 4*(-1) + 6*2 + 7*0 = 21 -> 18
        //   y11 = 10 + 4*1 + 5*(-1) + 7*2 + 8*0 = 23 -> 20
        ConvParams p = Shape(1, 3, 3, 1, 2, 1, 0, 1);
        p.InputZeroPoint = 1;
        p.OutputZeroPoint = -3;
        int[] y = RunAll(p, KernelTest.Int8(1, 2, 3, 4, 5, 6, 7, 8, 9), KernelTest.Int8(1, -1, 2, 0), [10], [Identity], [1]);
        Assert.Equal(new[] { 12, 14, 18, 20 }, y);
    }

    [Fact]
    public void HandWorked_PaddedStridedTwoChannels()
    {
        // x (1,2,2) = [2 -2; 4 6], zp_x = 0; k 3, pad 1, stride 2: one output, whose window puts x under taps (1..2, 1..2).
        // Channel 0: w all ones, bias 1: 1 + 2 - 2 + 4 + 6 = 11; M = 2^30, shift 0 (x0.5): 5.5 -> 6.
        // Channel 1: w -3 at the centre tap (1,1) (over x00 = 2), bias -1: -6 - 1 = -7; x0.5 = -3.5 -> -3 (ties toward +inf),
        //   then clamped to ActMin -2.
        ConvParams p = Shape(1, 2, 2, 2, 3, 2, 1, 1);
        p.ActMin = -2;
        byte[] w = KernelTest.Int8(1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, -3, 0, 0, 0, 0);
        int[] y = RunAll(p, KernelTest.Int8(2, -2, 4, 6), w, [1, -1], [Half, Half], [0, 0]);
        Assert.Equal(new[] { 6, -2 }, y);
    }

    [Fact]
    public void HandWorked_GroupedPointwise()
    {
        // x (2,1,2) = channel 0 [3 -4], channel 1 [10 20], zp_x = 0; 2 groups, 1x1, one output channel per group, no bias.
        // Group 0: w 2 -> [6 -8]; group 1: w -1 -> [-10 -20]. x1.0, zp_y 0.
        ConvParams p = Shape(2, 1, 2, 2, 1, 1, 0, 2);
        int[] y = RunAll(p, KernelTest.Int8(3, -4, 10, 20), KernelTest.Int8(2, -1), null, [Identity, Identity], [1, 1]);
        Assert.Equal(new[] { 6, -8, -10, -20 }, y);
    }

    [Theory]
    [InlineData(5, 9, 9, 7, 3, 1, 1)]
    [InlineData(3, 16, 16, 8, 3, 2, 1)]
    [InlineData(12, 6, 7, 10, 1, 1, 0)]
    public void TracksFloatConvolution_WithinOneLsb(int inC, int h, int w, int outC, int k, int s, int pad)
    {
        var rng = new Random(7 + inC + outC);
        ConvParams p = Shape(inC, h, w, outC, k, s, pad, 1);
        // Input: reals in [-1, 2] quantized with scale 3/255 and the zero point that maps -1 to -128.
        double sx = 3.0 / 255;
        p.InputZeroPoint = -128 + (int)Math.Round(1 / sx);
        var x = new byte[inC * h * w];
        for (int i = 0; i < x.Length; i++)
        {
            x[i] = (byte)(sbyte)Math.Clamp((int)Math.Round((rng.NextDouble() * 3 - 1) / sx) + p.InputZeroPoint, -128, 127);
        }
        // Weights: per output channel, symmetric, scale max|w| / 127; bias quantized with scale sx * sw[c].
        int taps = inC * k * k;
        var wq = new byte[outC * taps];
        var sw = new double[outC];
        var bias = new int[outC];
        for (int c = 0; c < outC; c++)
        {
            var wr = new double[taps];
            double max = 0;
            for (int t = 0; t < taps; t++)
            {
                wr[t] = rng.NextDouble() - 0.5;
                max = Math.Max(max, Math.Abs(wr[t]));
            }
            sw[c] = max / 127;
            for (int t = 0; t < taps; t++)
            {
                wq[c * taps + t] = (byte)(sbyte)(int)Math.Round(wr[t] / sw[c]);
            }
            bias[c] = (int)Math.Round((rng.NextDouble() - 0.5) / (sx * sw[c]));
        }
        // The float convolution of the dequantized values.
        var real = new double[outC * p.OH * p.OW];
        for (int c = 0; c < outC; c++)
        {
            for (int oy = 0; oy < p.OH; oy++)
            {
                for (int ox = 0; ox < p.OW; ox++)
                {
                    double acc = bias[c] * sx * sw[c];
                    for (int ic = 0; ic < inC; ic++)
                    {
                        for (int ky = 0; ky < k; ky++)
                        {
                            for (int kx = 0; kx < k; kx++)
                            {
                                int iy = oy * s - pad + ky, ix = ox * s - pad + kx;
                                if (iy >= 0 && iy < h && ix >= 0 && ix < w)
                                {
                                    acc += ((sbyte)x[(ic * h + iy) * w + ix] - p.InputZeroPoint) * sx
                                        * (sbyte)wq[c * taps + (ic * k + ky) * k + kx] * sw[c];
                                }
                            }
                        }
                    }
                    real[(c * p.OH + oy) * p.OW + ox] = acc;
                }
            }
        }
        // Output scale and zero point from the float output's range; multipliers the TFLite way.
        double lo = Math.Min(0, real.Min()), hi = Math.Max(0, real.Max());
        double sy = (hi - lo) / 255;
        p.OutputZeroPoint = Math.Clamp(-128 - (int)Math.Round(lo / sy), -128, 127);
        var m = new int[outC];
        var sh = new int[outC];
        for (int c = 0; c < outC; c++)
        {
            (m[c], sh[c]) = KernelTest.QuantizeMultiplier(sx * sw[c] / sy);
        }
        int[] y = RunAll(p, x, wq, bias, m, sh);
        for (int i = 0; i < real.Length; i++)
        {
            int expected = Math.Clamp((int)Math.Round(real[i] / sy) + p.OutputZeroPoint, -128, 127);
            Assert.True(Math.Abs(y[i] - expected) <= 1, $"output {i}: int8 {y[i]}, float {real[i] / sy + p.OutputZeroPoint:F3}");
        }
    }

    /// <summary>Runs every path (asserting they agree) and returns y as ints.</summary>
    private static int[] RunAll(ConvParams p, byte[] x, byte[] w, int[]? bias, int[] multiplier, int[] shift)
    {
        var c = new Case { P = p, Image = w };
        c.Consts = KernelTest.Constants(bias, multiplier, shift, out c.BiasOff, out c.MultOff, out c.ShiftOff);
        c.YOff = x.Length;
        c.Arena = new byte[x.Length + p.OutC * p.OH * p.OW];
        x.CopyTo(c.Arena, 0);
        byte[] arena = KernelTest.AssertPathsAgree(c.Arena, c.Exec, c.ToString());
        return KernelTest.ReadInt8(arena, c.YOff, p.OutC * p.OH * p.OW);
    }

    [Fact]
    public void Refusals_NameTheField()
    {
        ConvParams p = Shape(2, 4, 4, 3, 3, 1, 1, 1);
        var arena = new byte[200];
        var w = new byte[54];
        byte[] consts = KernelTest.Constants(null, [Half, Half, Half], [0, 0, 0], out int b, out int m, out int s);
        ConvParams bad = p;
        bad.OH = 3;
        var e = Assert.Throws<TinyTrainException>(() => Conv2D.Run(bad, arena, 0, w, 0, consts, b, consts, m, s, arena, 100));
        Assert.Contains("OH is 3", e.Message);
        e = Assert.Throws<TinyTrainException>(() => Conv2D.Run(p, arena, 0, w, 1, consts, b, consts, m, s, arena, 100));
        Assert.Contains("w needs bytes [1, 55)", e.Message);
        e = Assert.Throws<TinyTrainException>(() => Conv2D.Run(p, arena, 0, w, 0, consts, b, consts, m, s, arena, 20));
        Assert.Contains("overlaps x", e.Message);
        bad = p;
        bad.Groups = 2;
        e = Assert.Throws<TinyTrainException>(() => Conv2D.Run(bad, arena, 0, w, 0, consts, b, consts, m, s, arena, 100));
        Assert.Contains("Groups 2 must divide", e.Message);
    }
}
