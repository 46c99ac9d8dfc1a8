using System.Buffers.Binary;
using TinyTrain.Runtime.Kernels;

namespace TinyTrain.Runtime.Tests.Kernels;

/// <summary>
/// The fused ReLU / ReLU6 mask of Conv2D, DepthwiseConv2D and FullyConnected: bit i (LSB-first) of output i is
/// acc &gt; 0 (mode 2: and zp_y + MBQM(acc) &lt; ActMax), acc being the exact int32 accumulator with the bias.
/// Every path writes the same bytes, the outputs are those of a call without a mask, and nothing allocates.
/// </summary>
[Collection(KernelModeCollection.Name)]
public class FusedMaskTests
{
    /// <summary>One call with a mask: x, y and the mask in one arena (as the executor lays them out), weights and constants in images.</summary>
    private abstract class MaskCase
    {
        public byte[] Arena = [];
        public int XOff, YOff, MaskOff, MaskMode;
        public byte[] Image = [];
        public int WOff;
        public byte[] Consts = [];
        public int BiasOff, MultOff, ShiftOff;

        public abstract int Count { get; }

        public int MaskBytes => (Count + 7) / 8;

        protected abstract int OutputZeroPoint { get; }

        protected abstract int ActMax { get; }

        /// <summary>Runs the kernel on <paramref name="arena"/>: with the mask, or through the signature without one.</summary>
        public abstract void Run(KernelPath path, byte[] arena, bool withMask);

        /// <summary>Output channel of output element i.</summary>
        protected abstract int Channel(int i);

        /// <summary>Sum over the taps of output i of (x - zp_x) * w, in int64.</summary>
        protected abstract long Dot(int i);

        protected sbyte X(int index) => (sbyte)Arena[XOff + index];

        protected sbyte W(int index) => (sbyte)Image[WOff + index];

        private int Const(int off, int c) => BinaryPrimitives.ReadInt32LittleEndian(Consts.AsSpan(off + 4 * c));

        /// <summary>The mask recomputed from scratch: int64 sums, then the kernel's int32 accumulator (their low 32 bits).</summary>
        public byte[] ExpectedMask(MaskStats stats)
        {
            var bits = new byte[MaskBytes];
            for (int i = 0; i < Count; i++)
            {
                int c = Channel(i);
                long sum = (BiasOff >= 0 ? Const(BiasOff, c) : 0) + Dot(i);
                // Equal to sum unless a wide random bias overflows int32; the kernels wrap, as TFLite's do.
                int acc = unchecked((int)sum);
                int unclamped = OutputZeroPoint + Quant.MultiplyByQuantizedMultiplier(acc, Const(MultOff, c), Const(ShiftOff, c));
                bool passes = acc > 0 && (MaskMode == 1 || unclamped < ActMax);
                if (passes)
                {
                    bits[i / 8] |= (byte)(1 << (i % 8));
                }
                stats.Count(acc, passes, unclamped, OutputZeroPoint, ActMax);
            }
            return bits;
        }

        /// <summary>x, y and the mask (before x or after y) at random offsets in a random arena; random weights and constants.</summary>
        protected void Layout(Random rng, int xLen, int yLen, int wLen, int channels, bool extremeConstants)
        {
            MaskMode = rng.Next(1, 3);
            int maskBytes = (yLen + 7) / 8;
            bool maskFirst = rng.Next(2) == 0;
            int at = rng.Next(0, 7);
            if (maskFirst)
            {
                MaskOff = at;
                at += maskBytes + rng.Next(0, 5);
            }
            XOff = at;
            at += xLen + rng.Next(0, 7);
            YOff = at;
            at += yLen + rng.Next(0, 7);
            if (!maskFirst)
            {
                MaskOff = at;
                at += maskBytes;
            }
            Arena = KernelTest.RandomBytes(rng, at + rng.Next(1, 9));
            WOff = rng.Next(0, 5);
            Image = KernelTest.RandomBytes(rng, WOff + wLen + rng.Next(0, 4));
            KernelTest.FillWeights(rng, Image, WOff, wLen);
            Consts = KernelTest.Constants(rng, channels, withBias: rng.Next(5) != 0, wideBias: extremeConstants, anyMultiplier: extremeConstants,
                out BiasOff, out MultOff, out ShiftOff);
        }

        /// <summary>[ActMin, ActMax]: for ReLU6 mostly a top a few dozen steps above the zero point, so that both sides of it occur.</summary>
        protected static (int Min, int Max) Activation(Random rng, int zeroPoint, int maskMode)
        {
            if (maskMode == 2 && rng.Next(4) != 0)
            {
                return (zeroPoint, Math.Min(127, zeroPoint + rng.Next(1, 60)));
            }
            return KernelTest.Activation(rng, zeroPoint);
        }
    }

    private sealed class ConvCase : MaskCase
    {
        public ConvParams P;

        public override int Count => P.OutC * P.OH * P.OW;

        protected override int OutputZeroPoint => P.OutputZeroPoint;

        protected override int ActMax => P.ActMax;

        public static ConvCase Random(Random rng, ConvParams p, bool extremeConstants)
        {
            var c = new ConvCase();
            c.Layout(rng, p.InC * p.H * p.W, p.OutC * p.OH * p.OW, p.OutC * (p.InC / p.Groups) * p.Kernel * p.Kernel, p.OutC, extremeConstants);
            p.InputZeroPoint = KernelTest.ZeroPoint(rng);
            p.OutputZeroPoint = KernelTest.ZeroPoint(rng);
            (p.ActMin, p.ActMax) = Activation(rng, p.OutputZeroPoint, c.MaskMode);
            c.P = p;
            return c;
        }

        public override void Run(KernelPath path, byte[] arena, bool withMask)
        {
            // Without a mask through the signature that has none (the others pass null, -1, 0).
            if (!withMask)
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
                return;
            }
            switch (path)
            {
                case KernelPath.Reference:
                    Conv2D.RunReference(P, arena, XOff, Image, WOff, Consts, BiasOff, Consts, MultOff, ShiftOff, arena, YOff, arena, MaskOff, MaskMode);
                    break;
                case KernelPath.Simd256:
                case KernelPath.Simd128:
                    Conv2D.RunSimd(P, arena, XOff, Image, WOff, Consts, BiasOff, Consts, MultOff, ShiftOff, arena, YOff, arena, MaskOff, MaskMode);
                    break;
                default:
                    Conv2D.Run(P, arena, XOff, Image, WOff, Consts, BiasOff, Consts, MultOff, ShiftOff, arena, YOff, arena, MaskOff, MaskMode);
                    break;
            }
        }

        protected override int Channel(int i) => i / (P.OH * P.OW);

        protected override long Dot(int i)
        {
            int oc = Channel(i), oy = i % (P.OH * P.OW) / P.OW, ox = i % P.OW;
            int icg = P.InC / P.Groups, ocg = P.OutC / P.Groups, k = P.Kernel;
            long sum = 0;
            for (int ic = 0; ic < icg; ic++)
            {
                int xc = oc / ocg * icg + ic;
                for (int ky = 0; ky < k; ky++)
                {
                    for (int kx = 0; kx < k; kx++)
                    {
                        int iy = oy * P.Stride - P.Pad + ky, ix = ox * P.Stride - P.Pad + kx;
                        if (iy >= 0 && iy < P.H && ix >= 0 && ix < P.W)
                        {
                            sum += (long)(X((xc * P.H + iy) * P.W + ix) - P.InputZeroPoint) * W(((oc * icg + ic) * k + ky) * k + kx);
                        }
                    }
                }
            }
            return sum;
        }

        public override string ToString() =>
            $"Conv2D x({P.InC},{P.H},{P.W}) y({P.OutC},{P.OH},{P.OW}) k{P.Kernel} s{P.Stride} p{P.Pad} g{P.Groups} zp {P.InputZeroPoint}/{P.OutputZeroPoint} act [{P.ActMin},{P.ActMax}] mode {MaskMode} mask@{MaskOff}";
    }

    private sealed class DepthwiseCase : MaskCase
    {
        public DepthwiseParams P;

        public override int Count => P.C * P.OH * P.OW;

        protected override int OutputZeroPoint => P.OutputZeroPoint;

        protected override int ActMax => P.ActMax;

        public static DepthwiseCase Random(Random rng, DepthwiseParams p, bool extremeConstants)
        {
            var c = new DepthwiseCase();
            c.Layout(rng, p.C * p.H * p.W, p.C * p.OH * p.OW, p.C * p.Kernel * p.Kernel, p.C, extremeConstants);
            p.InputZeroPoint = KernelTest.ZeroPoint(rng);
            p.OutputZeroPoint = KernelTest.ZeroPoint(rng);
            (p.ActMin, p.ActMax) = Activation(rng, p.OutputZeroPoint, c.MaskMode);
            c.P = p;
            return c;
        }

        public override void Run(KernelPath path, byte[] arena, bool withMask)
        {
            byte[]? mask = withMask ? arena : null;
            int maskOff = withMask ? MaskOff : -1, mode = withMask ? MaskMode : 0;
            switch (path)
            {
                case KernelPath.Reference:
                    DepthwiseConv2D.RunReference(P, arena, XOff, Image, WOff, Consts, BiasOff, Consts, MultOff, ShiftOff, arena, YOff, mask, maskOff, mode);
                    break;
                case KernelPath.Simd256:
                case KernelPath.Simd128:
                    DepthwiseConv2D.RunSimd(P, arena, XOff, Image, WOff, Consts, BiasOff, Consts, MultOff, ShiftOff, arena, YOff, mask, maskOff, mode);
                    break;
                default:
                    DepthwiseConv2D.Run(P, arena, XOff, Image, WOff, Consts, BiasOff, Consts, MultOff, ShiftOff, arena, YOff, mask, maskOff, mode);
                    break;
            }
        }

        protected override int Channel(int i) => i / (P.OH * P.OW);

        protected override long Dot(int i)
        {
            int c = Channel(i), oy = i % (P.OH * P.OW) / P.OW, ox = i % P.OW, k = P.Kernel;
            long sum = 0;
            for (int ky = 0; ky < k; ky++)
            {
                for (int kx = 0; kx < k; kx++)
                {
                    int iy = oy * P.Stride - P.Pad + ky, ix = ox * P.Stride - P.Pad + kx;
                    if (iy >= 0 && iy < P.H && ix >= 0 && ix < P.W)
                    {
                        sum += (long)(X((c * P.H + iy) * P.W + ix) - P.InputZeroPoint) * W((c * k + ky) * k + kx);
                    }
                }
            }
            return sum;
        }

        public override string ToString() =>
            $"Depthwise x({P.C},{P.H},{P.W}) y({P.OH},{P.OW}) k{P.Kernel} s{P.Stride} p{P.Pad} zp {P.InputZeroPoint}/{P.OutputZeroPoint} act [{P.ActMin},{P.ActMax}] mode {MaskMode} mask@{MaskOff}";
    }

    private sealed class FullyConnectedCase : MaskCase
    {
        public FullyConnectedParams P;

        public override int Count => P.Out;

        protected override int OutputZeroPoint => P.OutputZeroPoint;

        protected override int ActMax => P.ActMax;

        public static FullyConnectedCase Random(Random rng, int inputs, int outputs, bool extremeConstants)
        {
            var c = new FullyConnectedCase();
            c.Layout(rng, inputs, outputs, inputs * outputs, outputs, extremeConstants);
            var p = new FullyConnectedParams { In = inputs, Out = outputs, InputZeroPoint = KernelTest.ZeroPoint(rng), OutputZeroPoint = KernelTest.ZeroPoint(rng) };
            (p.ActMin, p.ActMax) = Activation(rng, p.OutputZeroPoint, c.MaskMode);
            c.P = p;
            return c;
        }

        public override void Run(KernelPath path, byte[] arena, bool withMask)
        {
            byte[]? mask = withMask ? arena : null;
            int maskOff = withMask ? MaskOff : -1, mode = withMask ? MaskMode : 0;
            switch (path)
            {
                case KernelPath.Reference:
                    FullyConnected.RunReference(P, arena, XOff, Image, WOff, Consts, BiasOff, Consts, MultOff, ShiftOff, arena, YOff, mask, maskOff, mode);
                    break;
                case KernelPath.Simd256:
                case KernelPath.Simd128:
                    FullyConnected.RunSimd(P, arena, XOff, Image, WOff, Consts, BiasOff, Consts, MultOff, ShiftOff, arena, YOff, mask, maskOff, mode);
                    break;
                default:
                    FullyConnected.Run(P, arena, XOff, Image, WOff, Consts, BiasOff, Consts, MultOff, ShiftOff, arena, YOff, mask, maskOff, mode);
                    break;
            }
        }

        protected override int Channel(int i) => i;

        protected override long Dot(int i)
        {
            long sum = 0;
            for (int j = 0; j < P.In; j++)
            {
                sum += (long)(X(j) - P.InputZeroPoint) * W(i * P.In + j);
            }
            return sum;
        }

        public override string ToString() =>
            $"FullyConnected {P.In} -> {P.Out} zp {P.InputZeroPoint}/{P.OutputZeroPoint} act [{P.ActMin},{P.ActMax}] mode {MaskMode} mask@{MaskOff}";
    }

    /// <summary>Tallies what the random cases covered, so that a generator drifting into all-zero or all-one masks fails loudly.</summary>
    private sealed class MaskStats
    {
        public int Ones, Zeros, AboveReLU6Top, RoundedToZeroPointButOne;

        public void Count(int acc, bool passes, int unclamped, int zeroPoint, int actMax)
        {
            if (passes)
            {
                Ones++;
            }
            else
            {
                Zeros++;
            }
            if (acc > 0 && unclamped >= actMax)
            {
                AboveReLU6Top++;
            }
            if (passes && unclamped == zeroPoint)
            {
                RoundedToZeroPointButOne++;
            }
        }
    }

    /// <summary>
    /// Every path, with the mask, leaves the whole arena as the reference does; outside the mask's bytes that is the
    /// arena of a call without a mask; the mask's bytes are the recomputed mask (high bits of the last byte 0).
    /// </summary>
    private static void AssertMask(MaskCase c, string what, MaskStats stats)
    {
        byte[] withMask = KernelTest.AssertPathsAgree(c.Arena, (path, arena) => c.Run(path, arena, withMask: true), what + " (with mask)");
        byte[] without = KernelTest.AssertPathsAgree(c.Arena, (path, arena) => c.Run(path, arena, withMask: false), what + " (without mask)");
        for (int i = 0; i < withMask.Length; i++)
        {
            bool inMask = i >= c.MaskOff && i < c.MaskOff + c.MaskBytes;
            if (!inMask && withMask[i] != without[i])
            {
                Assert.Fail($"{what}: byte {i} (outside the mask) is {withMask[i]} with the mask and {without[i]} without it");
            }
        }
        byte[] expected = c.ExpectedMask(stats);
        for (int b = 0; b < c.MaskBytes; b++)
        {
            if (withMask[c.MaskOff + b] != expected[b])
            {
                Assert.Fail($"{what}: mask byte {b} is 0x{withMask[c.MaskOff + b]:x2}, the recomputed mask has 0x{expected[b]:x2}");
            }
        }
    }

    // The same shape distributions as Conv2DTests / DepthwiseConv2DTests / FullyConnectedTests.
    private static ConvParams ConvShape(int inC, int h, int w, int outC, int k, int s, int pad, int groups) => new()
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
    };

    private static ConvParams RandomConvShape(Random rng)
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
                groups = rng.Next(1, 9);
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
        return ConvShape(groups * icg, h, w, groups * ocg, k, s, pad, groups);
    }

    private static DepthwiseParams DepthwiseShape(int c, int h, int w, int k, int s, int pad) => new()
    {
        C = c,
        H = h,
        W = w,
        Kernel = k,
        Stride = s,
        Pad = pad,
        OH = (h + 2 * pad - k) / s + 1,
        OW = (w + 2 * pad - k) / s + 1,
    };

    private static DepthwiseParams RandomDepthwiseShape(Random rng)
    {
        int[] kernels = [1, 3, 3, 5, 7, 2];
        int k = kernels[rng.Next(kernels.Length)];
        int s = rng.Next(10) switch { < 5 => 1, < 9 => 2, _ => 3 };
        int pad = rng.Next(4) == 0 ? rng.Next(0, k + 1) : k / 2;
        int minSide = Math.Max(1, k - 2 * pad);
        return DepthwiseShape(rng.Next(1, 13), rng.Next(minSide, minSide + 30), rng.Next(minSide, minSide + 40), k, s, pad);
    }

    [Fact]
    public void Conv2D_RandomShapes_MaskIsExactOnEveryPath()
    {
        var rng = new Random(7771);
        var stats = new MaskStats();
        for (int trial = 0; trial < 300; trial++)
        {
            ConvCase c = ConvCase.Random(rng, RandomConvShape(rng), extremeConstants: trial % 5 == 0);
            AssertMask(c, $"trial {trial}: {c}", stats);
        }
        AssertCovered(stats);
    }

    [Fact]
    public void DepthwiseConv2D_RandomShapes_MaskIsExactOnEveryPath()
    {
        var rng = new Random(7772);
        var stats = new MaskStats();
        for (int trial = 0; trial < 300; trial++)
        {
            DepthwiseCase c = DepthwiseCase.Random(rng, RandomDepthwiseShape(rng), extremeConstants: trial % 5 == 0);
            AssertMask(c, $"trial {trial}: {c}", stats);
        }
        AssertCovered(stats);
    }

    [Fact]
    public void FullyConnected_RandomShapes_MaskIsExactOnEveryPath()
    {
        var rng = new Random(7773);
        var stats = new MaskStats();
        for (int trial = 0; trial < 300; trial++)
        {
            int inputs = rng.Next(3) == 0 ? rng.Next(1, 600) : rng.Next(1, 40);
            FullyConnectedCase c = FullyConnectedCase.Random(rng, inputs, rng.Next(1, 30), extremeConstants: trial % 5 == 0);
            AssertMask(c, $"trial {trial}: {c}", stats);
        }
        AssertCovered(stats);
    }

    private static void AssertCovered(MaskStats stats)
    {
        Assert.True(stats.Ones > 100, $"only {stats.Ones} mask bits were 1");
        Assert.True(stats.Zeros > 100, $"only {stats.Zeros} mask bits were 0");
        Assert.True(stats.AboveReLU6Top > 100, $"only {stats.AboveReLU6Top} positive accumulators reached the activation's top");
    }

    [Theory]
    // Pointwise: whole vectors, tails, planes smaller than a vector, 1x1 spatial, grouped, the general path, strided and padded 1x1.
    [InlineData(16, 16, 16, 24, 1, 1, 0, 1)]
    [InlineData(8, 17, 5, 48, 1, 1, 0, 1)]
    [InlineData(1, 1, 1, 1, 1, 1, 0, 1)]
    [InlineData(3, 1, 1, 5, 1, 1, 0, 1)]
    [InlineData(7, 2, 3, 9, 1, 1, 0, 1)]
    [InlineData(8, 9, 9, 6, 1, 1, 0, 2)]
    [InlineData(1030, 3, 3, 5, 1, 1, 0, 1)]
    [InlineData(6, 9, 11, 7, 1, 2, 0, 1)]
    [InlineData(4, 5, 5, 3, 1, 1, 1, 1)]
    // Spatial: mbv2's first conv, 7x7 stride 2, grouped 5x5, a row too wide for the scratch (reference fallback), 1x1 spatial.
    [InlineData(3, 32, 32, 16, 3, 2, 1, 1)]
    [InlineData(3, 23, 19, 8, 7, 2, 3, 1)]
    [InlineData(6, 11, 13, 9, 5, 1, 2, 3)]
    [InlineData(1, 3, 2000, 2, 3, 1, 1, 1)]
    [InlineData(4, 1, 1, 4, 3, 1, 1, 1)]
    [InlineData(4, 2, 2, 5, 3, 2, 1, 1)]
    public void Conv2D_ChosenShapes(int inC, int h, int w, int outC, int k, int s, int pad, int groups)
    {
        var rng = new Random(inC * 1000003 + h * 7919 + w * 131 + outC * 17 + k * 5 + s * 3 + pad + groups);
        for (int trial = 0; trial < 4; trial++)
        {
            ConvCase c = ConvCase.Random(rng, ConvShape(inC, h, w, outC, k, s, pad, groups), extremeConstants: trial == 3);
            AssertMask(c, c.ToString(), new MaskStats());
        }
    }

    [Theory]
    [InlineData(16, 64, 64, 3, 1, 1)]
    [InlineData(48, 64, 64, 3, 2, 1)]
    [InlineData(5, 33, 31, 5, 2, 2)]
    [InlineData(3, 29, 30, 7, 1, 3)]
    [InlineData(4, 1, 1, 3, 1, 1)]
    [InlineData(3, 9, 9, 1, 1, 0)]
    [InlineData(2, 4, 5000, 3, 1, 1)]
    public void DepthwiseConv2D_ChosenShapes(int c, int h, int w, int k, int s, int pad)
    {
        var rng = new Random(c * 1000003 + h * 7919 + w * 131 + k * 5 + s * 3 + pad);
        for (int trial = 0; trial < 4; trial++)
        {
            DepthwiseCase cs = DepthwiseCase.Random(rng, DepthwiseShape(c, h, w, k, s, pad), extremeConstants: trial == 3);
            AssertMask(cs, cs.ToString(), new MaskStats());
        }
    }

    [Theory]
    [InlineData(1280, 10)]
    [InlineData(1, 1)]
    [InlineData(7, 3)]
    [InlineData(300, 17)]
    public void FullyConnected_ChosenShapes(int inputs, int outputs)
    {
        var rng = new Random(inputs * 31 + outputs);
        for (int trial = 0; trial < 4; trial++)
        {
            FullyConnectedCase c = FullyConnectedCase.Random(rng, inputs, outputs, extremeConstants: trial == 3);
            AssertMask(c, c.ToString(), new MaskStats());
        }
    }

    // ---- Hand-worked: small positive accumulators that requantize to the zero point. ----
    // Eleven outputs whose accumulators are acc = [-5 -1 0 1 2 6 7 50 100 127 -128] (no bias), M = 2^30 with
    // shift -3 (x1/16), zp_y = -128. MBQM(acc) = RoundingDivideByPOT(SRDHM(acc, 2^30), 3): SRDHM halves with ties
    // up (1 -> 1, 2 -> 1, 6 -> 3, 7 -> 4, 50 -> 25, 100 -> 50, 127 -> 64), then /8 rounds to nearest
    // (1, 3 -> 0; 4 -> 1; 25 -> 3; 50 -> 6; 64 -> 8). So zp_y + MBQM = [.. -128 -128 -128 -127 -125 -122 -120 ..].
    //   ReLU [-128, 127]: y = [-128 -128 -128 -128 -128 -128 -127 -125 -122 -120 -128]. acc 1, 2 and 6 give
    //     y = zp_y, the output-derived mask's 0, yet their pre-activations are positive: bits 3..9 are 1,
    //     mask = [0b1111_1000, 0b0000_0011].
    //   ReLU6 with its top at -122 (6 / (1/16) steps would be 96; -122 keeps the numbers small): y clamps at -122,
    //     and acc 100 (exactly -122) and 127 (-120) no longer pass: bits 3..7, mask = [0b1111_1000, 0b0000_0000].
    private static readonly int[] HandAcc = [-5, -1, 0, 1, 2, 6, 7, 50, 100, 127, -128];

    public static TheoryData<string, int> HandWorkedCases => new()
    {
        { "conv", 1 }, { "conv", 2 }, { "depthwise", 1 }, { "depthwise", 2 }, { "fc", 1 }, { "fc", 2 },
    };

    [Theory]
    [MemberData(nameof(HandWorkedCases))]
    public void HandWorked_SmallPositiveAccumulatorRoundsToZeroPoint_BitIsOne(string op, int maskMode)
    {
        const int n = 11;
        int actMax = maskMode == 1 ? 127 : -122;
        // M = 2^30, shift -3 for every channel (the fully connected layer has eleven).
        byte[] consts = KernelTest.Constants(null, Enumerable.Repeat(1 << 30, n).ToArray(), Enumerable.Repeat(-3, n).ToArray(),
            out _, out int multOff, out int shiftOff);
        MaskCase c;
        if (op == "fc")
        {
            // One input x = 1 (zp 0), one weight per output: acc[o] = w[o].
            var fc = new FullyConnectedCase
            {
                P = new FullyConnectedParams { In = 1, Out = n, OutputZeroPoint = -128, ActMin = -128, ActMax = actMax },
                Image = KernelTest.Int8(HandAcc),
                Consts = consts,
            };
            fc.Arena = new byte[1 + n + 2 + 1];
            fc.Arena[0] = 1;
            c = fc;
        }
        else
        {
            // x (1, 1, 11) = acc (zp 0), w = 1, a 1x1 kernel: acc = x. Vector256 runs one vector and a rewritten tail,
            // Vector128 a pair of vectors and a rewritten tail, so mask bits land mid-byte and twice.
            MaskCase spatial = op == "conv"
                ? new ConvCase { P = ConvShape(1, 1, n, 1, 1, 1, 0, 1) }
                : new DepthwiseCase { P = DepthwiseShape(1, 1, n, 1, 1, 0) };
            if (spatial is ConvCase cc)
            {
                cc.P.OutputZeroPoint = -128;
                cc.P.ActMin = -128;
                cc.P.ActMax = actMax;
            }
            else if (spatial is DepthwiseCase dc)
            {
                dc.P.OutputZeroPoint = -128;
                dc.P.ActMin = -128;
                dc.P.ActMax = actMax;
            }
            spatial.Image = KernelTest.Int8(1);
            spatial.Consts = consts;
            spatial.Arena = new byte[n + n + 2 + 1];
            KernelTest.Int8(HandAcc).CopyTo(spatial.Arena, 0);
            c = spatial;
        }
        c.BiasOff = -1;
        c.MultOff = multOff;
        c.ShiftOff = shiftOff;
        c.MaskMode = maskMode;
        c.XOff = 0;
        c.YOff = op == "fc" ? 1 : n;
        c.MaskOff = c.YOff + n;
        // Stale ones in the mask's bytes must go; the byte after the mask must stay.
        c.Arena[c.MaskOff] = 0xFF;
        c.Arena[c.MaskOff + 1] = 0xFF;
        c.Arena[c.MaskOff + 2] = 0xA5;

        byte[] arena = KernelTest.AssertPathsAgree(c.Arena, (path, a) => c.Run(path, a, withMask: true), $"{op} mode {maskMode}");
        int[] expectedY = maskMode == 1
            ? [-128, -128, -128, -128, -128, -128, -127, -125, -122, -120, -128]
            : [-128, -128, -128, -128, -128, -128, -127, -125, -122, -122, -128];
        Assert.Equal(expectedY, KernelTest.ReadInt8(arena, c.YOff, n));
        Assert.Equal(0b1111_1000, arena[c.MaskOff]);
        Assert.Equal(maskMode == 1 ? 0b0000_0011 : 0b0000_0000, arena[c.MaskOff + 1]);
        Assert.Equal(0xA5, arena[c.MaskOff + 2]);
        Assert.Equal(c.ExpectedMask(new MaskStats()), arena[c.MaskOff..(c.MaskOff + 2)]);
    }

    // ---- Refusals: one line naming the field. ----

    public static TheoryData<string> Ops => new() { "conv", "depthwise", "fc" };

    /// <summary>x at 0 (32 or 48 bytes), y (48 outputs: a 6-byte mask) at 100 of a 4096-byte arena; w where the test puts it.</summary>
    private static void Call(string op, byte[] arena, byte[] w, int wOff, byte[]? mask, int maskOff, int maskMode)
    {
        byte[] consts = KernelTest.Constants(null, Enumerable.Repeat(1 << 30, 48).ToArray(), new int[48], out int b, out int m, out int s);
        switch (op)
        {
            case "conv":
                ConvParams cp = ConvShape(2, 4, 4, 3, 3, 1, 1, 1) with { ActMin = -128, ActMax = 127 };
                Conv2D.Run(cp, arena, 0, w, wOff, consts, b, consts, m, s, arena, 100, mask, maskOff, maskMode);
                break;
            case "depthwise":
                DepthwiseParams dp = DepthwiseShape(3, 4, 4, 3, 1, 1) with { ActMin = -128, ActMax = 127 };
                DepthwiseConv2D.Run(dp, arena, 0, w, wOff, consts, b, consts, m, s, arena, 100, mask, maskOff, maskMode);
                break;
            default:
                var fp = new FullyConnectedParams { In = 32, Out = 48, ActMin = -128, ActMax = 127 };
                FullyConnected.Run(fp, arena, 0, w, wOff, consts, b, consts, m, s, arena, 100, mask, maskOff, maskMode);
                break;
        }
    }

    private static void Refused(Action call, params string[] parts)
    {
        var e = Assert.Throws<TinyTrainException>(call);
        foreach (string part in parts)
        {
            Assert.Contains(part, e.Message);
        }
        Assert.DoesNotContain('\n', e.Message);
    }

    [Theory]
    [MemberData(nameof(Ops))]
    public void Refusals_NameTheField(string op)
    {
        var arena = new byte[4096];
        var w = new byte[2048];
        Refused(() => Call(op, arena, w, 0, arena, 4092, 1), "mask needs bytes [4092, 4098)");
        Refused(() => Call(op, arena, w, 0, arena, 20, 1), "the mask [20, 26) overlaps x [0, ");
        Refused(() => Call(op, arena, w, 0, arena, 98, 2), "the mask [98, 104) overlaps y [100, 148)");
        Refused(() => Call(op, arena, arena, 2000, arena, 2001, 1), "the mask [2001, 2007) overlaps w [2000, ");
        Refused(() => Call(op, arena, w, 0, arena, 160, 3), "maskMode is 3");
        Refused(() => Call(op, arena, w, 0, arena, 160, -1), "maskMode is -1");
        Refused(() => Call(op, arena, w, 0, arena, 160, 0), "maskMode is 0 (no mask) but a mask at 160");
        Refused(() => Call(op, arena, w, 0, null, 160, 1), "maskMode 1 needs a mask buffer");
        Refused(() => Call(op, arena, w, 0, arena, -1, 2), "maskMode 2 needs a mask buffer");

        // Mode 0 names no mask: null, or a buffer with maskOff -1, which is left alone.
        var spare = new byte[8];
        Array.Fill(spare, (byte)0x5A);
        Call(op, arena, w, 0, spare, -1, 0);
        Call(op, arena, w, 0, null, 5, 0);
        Assert.All(spare, v => Assert.Equal(0x5A, v));
        // A mask right next to x and y is fine.
        Call(op, arena, w, 0, arena, 148, 1);
    }

    // ---- The Step phase allocates nothing with a mask either. ----

    [Theory]
    [InlineData(KernelPath.RunFast)]
    [InlineData(KernelPath.Simd128)]
    [InlineData(KernelPath.RunReference)]
    public void Masks_AllocateNothing(KernelPath path)
    {
        var rng = new Random(2);
        byte[] arena = KernelTest.RandomBytes(rng, 64 * 1024);
        byte[] image = new byte[64 * 1024];
        KernelTest.FillWeights(rng, image, 0, image.Length);
        byte[] consts = KernelTest.Constants(rng, 64, withBias: true, wideBias: false, anyMultiplier: false, out int b, out int m, out int s);
        var pointwise = new ConvParams { InC = 16, H = 13, W = 13, OutC = 24, OH = 13, OW = 13, Kernel = 1, Stride = 1, Groups = 1, ActMin = -128, ActMax = 127 };
        var dense = new ConvParams { InC = 3, H = 32, W = 32, OutC = 16, OH = 16, OW = 16, Kernel = 3, Stride = 2, Pad = 1, Groups = 1, InputZeroPoint = 5, ActMin = -128, ActMax = 127 };
        var depthwise = new DepthwiseParams { C = 16, H = 31, W = 31, OH = 31, OW = 31, Kernel = 3, Stride = 1, Pad = 1, InputZeroPoint = -3, ActMin = 0, ActMax = 100 };
        var fc = new FullyConnectedParams { In = 1280, Out = 10, InputZeroPoint = 7, ActMin = -128, ActMax = 127 };
        const int y = 32768, mask = 60000;

        void Step()
        {
            for (int mode = 1; mode <= 2; mode++)
            {
                if (path == KernelPath.Simd128)
                {
                    Conv2D.RunSimd(pointwise, arena, 0, image, 0, consts, b, consts, m, s, arena, y, arena, mask, mode);
                    Conv2D.RunSimd(dense, arena, 0, image, 0, consts, b, consts, m, s, arena, y, arena, mask, mode);
                    DepthwiseConv2D.RunSimd(depthwise, arena, 0, image, 0, consts, b, consts, m, s, arena, y, arena, mask, mode);
                    FullyConnected.RunSimd(fc, arena, 0, image, 0, consts, b, consts, m, s, arena, y, arena, mask, mode);
                }
                else
                {
                    Conv2D.Run(pointwise, arena, 0, image, 0, consts, b, consts, m, s, arena, y, arena, mask, mode);
                    Conv2D.Run(dense, arena, 0, image, 0, consts, b, consts, m, s, arena, y, arena, mask, mode);
                    DepthwiseConv2D.Run(depthwise, arena, 0, image, 0, consts, b, consts, m, s, arena, y, arena, mask, mode);
                    FullyConnected.Run(fc, arena, 0, image, 0, consts, b, consts, m, s, arena, y, arena, mask, mode);
                }
            }
        }

        using (KernelTest.Mode(path))
        {
            Step(); // JIT and type loading happen here, not in the measured calls
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 100; i++)
            {
                Step();
            }
            long after = GC.GetAllocatedBytesForCurrentThread();
            Assert.Equal(before, after);
        }
    }
}
