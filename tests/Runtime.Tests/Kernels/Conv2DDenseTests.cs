using System.Runtime.Intrinsics;
using TinyTrain.Runtime.Kernels;

namespace TinyTrain.Runtime.Tests.Kernels;

/// <summary>
/// The dense fast path of Conv2D (groups 1: im2col tiles and packed multiply-adds; plain pointwise convs from runs of
/// x's bytes, and the pointwise path they may take instead) against the
/// reference: outputs and the fused mask, Vector256 and Vector128, the uint8-quads packing (where AVX-VNNI runs it)
/// and the int16-pairs one, tiles of whole rows, several tiles, chunks of one row and the fallback to the strip path;
/// the lane operations it rests on against scalar arithmetic; and no allocation.
/// </summary>
[Collection(KernelModeCollection.Name)]
public class Conv2DDenseTests
{
    /// <summary>One call's buffers: x, y and (maybe) the mask in one arena, weights and constants in images.</summary>
    private sealed class Case
    {
        public ConvParams P;
        public byte[] Arena = [];
        public int XOff, YOff, MaskOff = -1, MaskMode;
        public byte[] Image = [];
        public int WOff;
        public byte[] Consts = [];
        public int BiasOff, MultOff, ShiftOff;

        public void Exec(KernelPath path, byte[] arena)
        {
            byte[]? mask = MaskMode != 0 ? arena : null;
            switch (path)
            {
                case KernelPath.Reference:
                    Conv2D.RunReference(P, arena, XOff, Image, WOff, Consts, BiasOff, Consts, MultOff, ShiftOff, arena, YOff, mask, MaskOff, MaskMode);
                    break;
                case KernelPath.Simd256:
                case KernelPath.Simd128:
                    Conv2D.RunSimd(P, arena, XOff, Image, WOff, Consts, BiasOff, Consts, MultOff, ShiftOff, arena, YOff, mask, MaskOff, MaskMode);
                    break;
                default:
                    Conv2D.Run(P, arena, XOff, Image, WOff, Consts, BiasOff, Consts, MultOff, ShiftOff, arena, YOff, mask, MaskOff, MaskMode);
                    break;
            }
        }

        public override string ToString() =>
            $"Conv2D x({P.InC},{P.H},{P.W}) y({P.OutC},{P.OH},{P.OW}) k{P.Kernel} s{P.Stride} p{P.Pad} zp {P.InputZeroPoint}/{P.OutputZeroPoint} " +
            $"act [{P.ActMin},{P.ActMax}] bias {BiasOff >= 0} mask {MaskMode} quads {Conv2D.DenseQuads}";
    }

    private static ConvParams Shape(int inC, int h, int w, int outC, int k, int s, int pad)
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
            Groups = 1,
            OH = (h + 2 * pad - k) / s + 1,
            OW = (w + 2 * pad - k) / s + 1,
            ActMin = -128,
            ActMax = 127,
        };
    }

    /// <summary>x, y, then the mask (mode 1 or 2, or none) at random offsets in a random arena; random weights and constants.</summary>
    private static Case Random(Random rng, ConvParams p, int maskMode, bool extremeConstants)
    {
        p.InputZeroPoint = KernelTest.ZeroPoint(rng);
        p.OutputZeroPoint = KernelTest.ZeroPoint(rng);
        (p.ActMin, p.ActMax) = maskMode == 2 && rng.Next(3) != 0
            ? (p.OutputZeroPoint, Math.Min(127, p.OutputZeroPoint + rng.Next(1, 60)))
            : KernelTest.Activation(rng, p.OutputZeroPoint);
        int xLen = p.InC * p.H * p.W, yLen = p.OutC * p.OH * p.OW, wLen = p.OutC * p.InC * p.Kernel * p.Kernel;
        var c = new Case { P = p, MaskMode = maskMode, XOff = rng.Next(0, 7) };
        c.YOff = c.XOff + xLen + rng.Next(0, 7);
        int end = c.YOff + yLen;
        if (maskMode != 0)
        {
            c.MaskOff = end + rng.Next(0, 5);
            end = c.MaskOff + (yLen + 7) / 8;
        }
        c.Arena = KernelTest.RandomBytes(rng, end + rng.Next(1, 9));
        c.WOff = rng.Next(0, 5);
        c.Image = KernelTest.RandomBytes(rng, c.WOff + wLen + rng.Next(0, 4));
        KernelTest.FillWeights(rng, c.Image, c.WOff, wLen);
        c.Consts = KernelTest.Constants(rng, p.OutC, withBias: rng.Next(5) != 0, wideBias: extremeConstants, anyMultiplier: extremeConstants,
            out c.BiasOff, out c.MultOff, out c.ShiftOff);
        return c;
    }

    /// <summary>Every path on both packings gives the reference's bytes; with a mask, y is also the same as without one.</summary>
    private static void AssertAgree(Case c)
    {
        bool quads = Conv2D.DenseQuads;
        bool densePointwise = Conv2D.DensePointwise;
        bool pointwise = c.P.Kernel == 1 && c.P.Stride == 1 && c.P.Pad == 0;
        try
        {
            byte[]? expected = null;
            // A plain pointwise conv also on the pointwise path, which the dense one replaces for most shapes.
            foreach (bool route in pointwise ? new[] { true, false } : new[] { true })
            {
                Conv2D.DensePointwise = route;
                foreach (bool packing in new[] { true, false })
                {
                    Conv2D.DenseQuads = packing;
                    byte[] got = KernelTest.AssertPathsAgree(c.Arena, c.Exec, $"{c} dense pointwise {route}");
                    expected ??= got;
                    int diff = KernelTest.FirstDifference(expected, got);
                    Assert.True(diff < 0, $"{c}: the reference differs between runs at byte {diff}");
                }
            }
            Conv2D.DensePointwise = densePointwise;
            if (c.MaskMode != 0)
            {
                var plain = new Case { P = c.P, Arena = c.Arena, XOff = c.XOff, YOff = c.YOff, Image = c.Image, WOff = c.WOff, Consts = c.Consts, BiasOff = c.BiasOff, MultOff = c.MultOff, ShiftOff = c.ShiftOff };
                byte[] withoutMask = (byte[])c.Arena.Clone();
                using (KernelTest.Mode(KernelPath.Simd256))
                {
                    plain.Exec(KernelPath.Simd256, withoutMask);
                }
                int yLen = c.P.OutC * c.P.OH * c.P.OW;
                Assert.True(withoutMask.AsSpan(c.YOff, yLen).SequenceEqual(expected!.AsSpan(c.YOff, yLen)), $"{c}: y with the mask differs from y without it");
            }
        }
        finally
        {
            Conv2D.DenseQuads = quads;
            Conv2D.DensePointwise = densePointwise;
        }
    }

    private static ConvParams RandomDenseShape(Random rng)
    {
        int[] kernels = [3, 3, 3, 5, 7, 2, 4, 1];
        int k = kernels[rng.Next(kernels.Length)];
        int s = rng.Next(3) + 1;
        int pad = rng.Next(3) == 0 ? rng.Next(0, k + 1) : k / 2;
        if (k == 1 && rng.Next(2) == 0)
        {
            (s, pad) = (1, 0); // more plain pointwise convs
        }
        int[] firstLayer = [1, 3];
        int inC = rng.Next(4) switch
        {
            0 => firstLayer[rng.Next(2)],
            1 => rng.Next(9, 40),
            _ => rng.Next(1, 9),
        };
        int outC = rng.Next(1, 14);
        int minSide = Math.Max(1, k - 2 * pad);
        int h = rng.Next(minSide, minSide + 24), w = rng.Next(minSide, minSide + 30);
        return Shape(inC, h, w, outC, k, s, pad);
    }

    [Fact]
    public void RandomDenseShapes_FastEqualsReference_WithAndWithoutMask()
    {
        var rng = new Random(20241127);
        for (int trial = 0; trial < 300; trial++)
        {
            AssertAgree(Random(rng, RandomDenseShape(rng), maskMode: trial % 3, extremeConstants: trial % 5 == 0));
        }
    }

    [Theory]
    // cnn-s: conv1 (one input channel, 9 taps), conv2 and conv3 (3x3 stride 2, planes of 14x14 and 7x7).
    [InlineData(1, 28, 28, 16, 3, 1, 1)]
    [InlineData(16, 28, 28, 32, 3, 2, 1)]
    [InlineData(32, 14, 14, 64, 3, 2, 1)]
    // mbv2's first conv (three input channels, 27 taps), full size: tiles of several rows.
    [InlineData(3, 128, 128, 16, 3, 2, 1)]
    [InlineData(3, 129, 127, 13, 3, 2, 1)]
    // Several tiles of whole rows at stride 1; 5x5 and 7x7 kernels; stride 3; channel counts off the block of 4.
    [InlineData(16, 64, 64, 16, 3, 1, 1)]
    [InlineData(8, 33, 31, 7, 5, 1, 2)]
    [InlineData(3, 37, 41, 10, 7, 2, 3)]
    [InlineData(1, 45, 38, 6, 7, 3, 3)]
    [InlineData(5, 23, 29, 9, 3, 3, 0)]
    [InlineData(2, 17, 19, 5, 4, 2, 1)]
    // Rows too long for one tile of whole rows: chunks of one row, the last one partial.
    [InlineData(64, 5, 200, 6, 3, 1, 1)]
    [InlineData(40, 4, 301, 3, 3, 2, 1)]
    // So many taps that no tile fits: the strip path.
    [InlineData(1400, 3, 3, 5, 3, 1, 1)]
    // Tiny planes: one output, fewer outputs than a Vector128, one row, one column.
    [InlineData(4, 1, 1, 4, 3, 1, 1)]
    [InlineData(6, 2, 3, 5, 3, 2, 1)]
    [InlineData(9, 1, 40, 11, 3, 1, 1)]
    [InlineData(9, 40, 1, 11, 3, 1, 1)]
    // Plain pointwise (mbv2-w0.35's shapes; partial vectors; 1x1 planes; fewer than 4 input channels; several
    // tiles; taps too many for a tile).
    [InlineData(16, 64, 64, 48, 1, 1, 0)]
    [InlineData(48, 64, 64, 8, 1, 1, 0)]
    [InlineData(8, 64, 64, 48, 1, 1, 0)]
    [InlineData(16, 32, 32, 96, 1, 1, 0)]
    [InlineData(96, 16, 16, 24, 1, 1, 0)]
    [InlineData(192, 8, 8, 32, 1, 1, 0)]
    [InlineData(336, 4, 4, 56, 1, 1, 0)]
    [InlineData(56, 4, 4, 336, 1, 1, 0)]
    [InlineData(13, 7, 9, 11, 1, 1, 0)]
    [InlineData(6, 3, 1, 5, 1, 1, 0)]
    [InlineData(128, 1, 1, 10, 1, 1, 0)]
    [InlineData(1281, 1, 1, 7, 1, 1, 0)]
    [InlineData(3, 9, 9, 8, 1, 1, 0)]
    [InlineData(9, 60, 70, 6, 1, 1, 0)]
    [InlineData(4001, 3, 3, 3, 1, 1, 0)]
    [InlineData(12001, 1, 2, 2, 1, 1, 0)]
    // Strided and padded 1x1 (no pointwise fast path for them).
    [InlineData(12, 15, 17, 7, 1, 2, 0)]
    [InlineData(12, 9, 9, 5, 1, 1, 1)]
    public void ChosenShapes_FastEqualsReference_WithAndWithoutMask(int inC, int h, int w, int outC, int k, int s, int pad)
    {
        var rng = new Random(inC * 1000003 + h * 7919 + w * 131 + outC * 17 + k * 5 + s * 3 + pad);
        for (int mode = 0; mode < 3; mode++)
        {
            AssertAgree(Random(rng, Shape(inC, h, w, outC, k, s, pad), mode, extremeConstants: mode == 1));
        }
    }

    [Fact]
    public void HandWorked_Stride2WithPaddingAndFewChannels()
    {
        // x (1,3,3) = [1 2 3; 4 5 6; 7 8 9], zp_x = 2, so d = x - zp = [-1 0 1; 2 3 4; 5 6 7]; k 3, stride 2, pad 1: y is 2x2.
        // w = [1 0 -1; 0 2 0; -1 0 1], bias 3, x1.0 (M = 2^30, shift 1), zp_y = 0. y[oy][ox] = 3 + sum w[ky][kx] d[2oy-1+ky][2ox-1+kx]:
        //   y00 = 3 + w11 d00 + w22 d11           = 3 - 2 + 3      = 4
        //   y01 = 3 + w11 d02 + w20 d11           = 3 + 2 - 3      = 2
        //   y10 = 3 + w02 d11 + w11 d20           = 3 - 3 + 10     = 10
        //   y11 = 3 + w00 d11 + w11 d22           = 3 + 3 + 14     = 20  (the other taps weigh 0 or fall on padding)
        ConvParams p = Shape(1, 3, 3, 1, 3, 2, 1);
        p.InputZeroPoint = 2;
        var c = new Case
        {
            P = p,
            Image = KernelTest.Int8(1, 0, -1, 0, 2, 0, -1, 0, 1),
            Consts = KernelTest.Constants([3], [1 << 30], [1], out int b, out int m, out int sh),
            Arena = new byte[9 + 4],
            YOff = 9,
        };
        c.BiasOff = b;
        c.MultOff = m;
        c.ShiftOff = sh;
        KernelTest.Int8(1, 2, 3, 4, 5, 6, 7, 8, 9).CopyTo(c.Arena, 0);
        bool quads = Conv2D.DenseQuads;
        try
        {
            foreach (bool packing in new[] { true, false })
            {
                Conv2D.DenseQuads = packing;
                byte[] arena = KernelTest.AssertPathsAgree(c.Arena, c.Exec, c.ToString());
                Assert.Equal(new[] { 4, 2, 10, 20 }, KernelTest.ReadInt8(arena, 9, 4));
            }
        }
        finally
        {
            Conv2D.DenseQuads = quads;
        }
    }

    [Fact]
    public void DensePath_AllocatesNothing()
    {
        var rng = new Random(3);
        byte[] arena = KernelTest.RandomBytes(rng, 144 * 1024);
        byte[] image = new byte[64 * 1024];
        KernelTest.FillWeights(rng, image, 0, image.Length);
        byte[] consts = KernelTest.Constants(rng, 64, withBias: true, wideBias: false, anyMultiplier: false, out int b, out int m, out int s);
        ConvParams[] shapes =
        [
            Shape(16, 28, 28, 32, 3, 2, 1),   // one tile of whole rows
            Shape(3, 128, 128, 16, 3, 2, 1),  // several tiles
            Shape(64, 5, 200, 6, 3, 1, 1),    // chunks of one row
            Shape(1, 28, 28, 16, 3, 1, 1),
            Shape(16, 32, 32, 48, 1, 1, 0),  // pointwise
            Shape(9, 60, 70, 6, 1, 1, 0),    // pointwise, several tiles
        ];
        void Step(KernelPath path)
        {
            foreach (ConvParams p in shapes)
            {
                if (path == KernelPath.RunFast)
                {
                    Conv2D.Run(p, arena, 0, image, 0, consts, b, consts, m, s, arena, 65536);
                    Conv2D.Run(p, arena, 0, image, 0, consts, b, consts, m, s, arena, 65536, arena, 128 * 1024, 2);
                }
                else
                {
                    Conv2D.RunSimd(p, arena, 0, image, 0, consts, b, consts, m, s, arena, 65536);
                    Conv2D.RunSimd(p, arena, 0, image, 0, consts, b, consts, m, s, arena, 65536, arena, 128 * 1024, 1);
                }
            }
        }
        bool quads = Conv2D.DenseQuads;
        try
        {
            foreach (bool packing in new[] { true, false })
            {
                Conv2D.DenseQuads = packing;
                foreach (KernelPath path in new[] { KernelPath.RunFast, KernelPath.Simd128 })
                {
                    using (KernelTest.Mode(path))
                    {
                        Step(path); // JIT and type loading happen here, not in the measured calls
                        long before = GC.GetAllocatedBytesForCurrentThread();
                        for (int i = 0; i < 20; i++)
                        {
                            Step(path);
                        }
                        Assert.Equal(before, GC.GetAllocatedBytesForCurrentThread());
                    }
                }
            }
        }
        finally
        {
            Conv2D.DenseQuads = quads;
        }
    }

    private static readonly int[] HalfEdges = [short.MinValue, short.MinValue + 1, -256, -255, -129, -128, -1, 0, 1, 127, 128, 255, 256, short.MaxValue - 1, short.MaxValue];

    private static int RandomLane(Random rng, bool edges)
    {
        if (!edges)
        {
            return rng.Next(int.MinValue, int.MaxValue);
        }
        return (HalfEdges[rng.Next(HalfEdges.Length)] << 16) | (ushort)HalfEdges[rng.Next(HalfEdges.Length)];
    }

    [Fact]
    public void LaneMultiplyAddPairs_MatchesScalar_BitForBit()
    {
        var rng = new Random(77);
        int[] acc = new int[8], x = new int[8], w = new int[8];
        for (int trial = 0; trial < 20000; trial++)
        {
            for (int i = 0; i < 8; i++)
            {
                acc[i] = rng.Next(int.MinValue, int.MaxValue);
                x[i] = RandomLane(rng, trial % 2 == 0);
                w[i] = RandomLane(rng, trial % 3 == 0);
            }
            Vector256<int> a256 = Vector256.Create(acc), x256 = Vector256.Create(x), w256 = Vector256.Create(w);
            Vector256<int> hw256 = Lanes256.MultiplyAddPairs(a256, x256, w256);
            Vector256<int> pt256 = a256 + Lanes256.MultiplyAddPairsPortable(x256, w256);
            Vector128<int> hw128 = Lanes128.MultiplyAddPairs(Vector128.Create(acc, 4), Vector128.Create(x, 4), Vector128.Create(w, 4));
            Vector128<int> pt128 = Vector128.Create(acc, 4) + Lanes128.MultiplyAddPairsPortable(Vector128.Create(x, 4), Vector128.Create(w, 4));
            for (int i = 0; i < 8; i++)
            {
                int expected = unchecked(acc[i] + (short)x[i] * (short)w[i] + (x[i] >> 16) * (w[i] >> 16));
                Assert.Equal(expected, hw256.GetElement(i));
                Assert.Equal(expected, pt256.GetElement(i));
                if (i >= 4)
                {
                    Assert.Equal(expected, hw128.GetElement(i - 4));
                    Assert.Equal(expected, pt128.GetElement(i - 4));
                }
            }
        }
    }

    [Fact]
    public void LaneMultiplyAddQuads_MatchesScalar_BitForBit()
    {
        var rng = new Random(78);
        byte[] edgeBytes = [0, 1, 127, 128, 129, 254, 255];
        int[] acc = new int[8], u = new int[8], w = new int[8];
        for (int trial = 0; trial < 20000; trial++)
        {
            for (int i = 0; i < 8; i++)
            {
                acc[i] = rng.Next(int.MinValue, int.MaxValue);
                u[i] = rng.Next(int.MinValue, int.MaxValue);
                w[i] = rng.Next(int.MinValue, int.MaxValue);
                if (trial % 2 == 0)
                {
                    u[i] = edgeBytes[rng.Next(7)] | edgeBytes[rng.Next(7)] << 8 | edgeBytes[rng.Next(7)] << 16 | edgeBytes[rng.Next(7)] << 24;
                    w[i] = edgeBytes[rng.Next(7)] | edgeBytes[rng.Next(7)] << 8 | edgeBytes[rng.Next(7)] << 16 | edgeBytes[rng.Next(7)] << 24;
                }
            }
            Vector256<int> a256 = Vector256.Create(acc), u256 = Vector256.Create(u), w256 = Vector256.Create(w);
            Vector256<int> hw256 = Lanes256.MultiplyAddQuads(a256, u256, w256);
            Vector256<int> pt256 = a256 + Lanes256.MultiplyAddQuadsPortable(u256, w256);
            Vector128<int> hw128 = Lanes128.MultiplyAddQuads(Vector128.Create(acc), Vector128.Create(u), Vector128.Create(w));
            Vector128<int> pt128 = Vector128.Create(acc) + Lanes128.MultiplyAddQuadsPortable(Vector128.Create(u), Vector128.Create(w));
            for (int i = 0; i < 8; i++)
            {
                int expected = acc[i];
                for (int j = 0; j < 4; j++)
                {
                    expected = unchecked(expected + (byte)(u[i] >> (8 * j)) * (sbyte)(w[i] >> (8 * j)));
                }
                Assert.Equal(expected, hw256.GetElement(i));
                Assert.Equal(expected, pt256.GetElement(i));
                if (i < 4)
                {
                    Assert.Equal(expected, hw128.GetElement(i));
                    Assert.Equal(expected, pt128.GetElement(i));
                }
            }
        }
    }

    [Fact]
    public void LanePreparedRequantization_MatchesScalar_BitForBit()
    {
        var rng = new Random(79);
        int[] edges = [int.MinValue, int.MinValue + 1, -(1 << 30) - 1, -(1 << 30), -65536, -257, -1, 0, 1, 255, 65535, 1 << 30, int.MaxValue - 1, int.MaxValue];
        var xs = new int[8];
        for (int trial = 0; trial < 30000; trial++)
        {
            int multiplier = trial % 7 == 0 ? edges[rng.Next(edges.Length)] : KernelTest.Multiplier(rng, anyInt: true);
            int shift = trial % 11 == 0 ? rng.Next(-40, 40) : rng.Next(-31, 8);
            int zeroPoint = KernelTest.ZeroPoint(rng);
            (int actMin, int actMax) = KernelTest.Activation(rng, zeroPoint);
            int maskMode = rng.Next(3);
            for (int i = 0; i < xs.Length; i++)
            {
                xs[i] = rng.Next(3) switch
                {
                    0 => edges[rng.Next(edges.Length)],
                    1 => rng.Next(-100000, 100000),
                    _ => rng.Next(int.MinValue, int.MaxValue),
                };
            }
            Vector256<int> x256 = Vector256.Create(xs);
            Vector256<int> high = Vector256.Create((long)multiplier).AsInt32();
            Assert.Equal(Lanes256.RoundingHighMulPortable(x256, high), Lanes256.RoundingHighMul(x256, high));
            Vector128<int> x128 = Vector128.Create(xs, 4);
            Assert.Equal(Lanes128.RoundingHighMulPortable(x128, high.GetLower()), Lanes128.RoundingHighMul(x128, high.GetLower()));

            Requant<Vector256<int>> q256 = Lanes256.Prepare(multiplier, shift, zeroPoint, actMin, actMax);
            Requant<Vector128<int>> q128 = Lanes128.Prepare(multiplier, shift, zeroPoint, actMin, actMax);
            Vector256<int> v256 = Lanes256.Requantize(x256, q256, maskMode, out uint bits256);
            Vector128<int> v128 = Lanes128.Requantize(x128, q128, maskMode, out uint bits128);
            Assert.Equal(Lanes256.Requantize(x256, multiplier, shift, zeroPoint, actMin, actMax), Lanes256.Requantize(x256, q256));
            for (int i = 0; i < xs.Length; i++)
            {
                int unclamped = zeroPoint + Quant.MultiplyByQuantizedMultiplier(xs[i], multiplier, shift);
                int expected = Math.Clamp(unclamped, actMin, actMax);
                bool passes = maskMode != 0 && FusedMask.Passes(maskMode, xs[i], unclamped, actMax);
                Assert.Equal(expected, v256.GetElement(i));
                Assert.Equal(passes, maskMode != 0 && ((bits256 >> i) & 1) != 0);
                if (i >= 4)
                {
                    Assert.Equal(expected, v128.GetElement(i - 4));
                    Assert.Equal(passes, maskMode != 0 && ((bits128 >> (i - 4)) & 1) != 0);
                }
            }
        }
    }
}
