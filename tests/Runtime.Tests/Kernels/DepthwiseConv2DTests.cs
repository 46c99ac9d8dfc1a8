using TinyTrain.Runtime.Kernels;

namespace TinyTrain.Runtime.Tests.Kernels;

[Collection(KernelModeCollection.Name)]
public class DepthwiseConv2DTests
{
    private sealed class Case
    {
        public DepthwiseParams P;
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
                    DepthwiseConv2D.RunReference(P, arena, XOff, Image, WOff, Consts, BiasOff, Consts, MultOff, ShiftOff, arena, YOff);
                    break;
                case KernelPath.Simd256:
                case KernelPath.Simd128:
                    DepthwiseConv2D.RunSimd(P, arena, XOff, Image, WOff, Consts, BiasOff, Consts, MultOff, ShiftOff, arena, YOff);
                    break;
                default:
                    DepthwiseConv2D.Run(P, arena, XOff, Image, WOff, Consts, BiasOff, Consts, MultOff, ShiftOff, arena, YOff);
                    break;
            }
        }

        public override string ToString() =>
            $"Depthwise x({P.C},{P.H},{P.W}) y({P.OH},{P.OW}) k{P.Kernel} s{P.Stride} p{P.Pad} zp {P.InputZeroPoint}/{P.OutputZeroPoint} act [{P.ActMin},{P.ActMax}]";
    }

    private static DepthwiseParams Shape(int c, int h, int w, int k, int s, int pad)
    {
        return new DepthwiseParams
        {
            C = c,
            H = h,
            W = w,
            Kernel = k,
            Stride = s,
            Pad = pad,
            OH = (h + 2 * pad - k) / s + 1,
            OW = (w + 2 * pad - k) / s + 1,
            ActMin = -128,
            ActMax = 127,
        };
    }

    private static Case Random(Random rng, DepthwiseParams p, bool extremeConstants = false)
    {
        p.InputZeroPoint = KernelTest.ZeroPoint(rng);
        p.OutputZeroPoint = KernelTest.ZeroPoint(rng);
        (p.ActMin, p.ActMax) = KernelTest.Activation(rng, p.OutputZeroPoint);
        int xLen = p.C * p.H * p.W, yLen = p.C * p.OH * p.OW, wLen = p.C * p.Kernel * p.Kernel;
        var c = new Case { P = p, XOff = rng.Next(0, 7) };
        c.YOff = c.XOff + xLen + rng.Next(0, 7);
        c.Arena = KernelTest.RandomBytes(rng, c.YOff + yLen + rng.Next(1, 9));
        c.WOff = rng.Next(0, 5);
        c.Image = KernelTest.RandomBytes(rng, c.WOff + wLen + rng.Next(0, 4));
        KernelTest.FillWeights(rng, c.Image, c.WOff, wLen);
        c.Consts = KernelTest.Constants(rng, p.C, withBias: rng.Next(5) != 0, wideBias: extremeConstants, anyMultiplier: extremeConstants,
            out c.BiasOff, out c.MultOff, out c.ShiftOff);
        return c;
    }

    [Fact]
    public void RandomShapes_FastEqualsReference()
    {
        var rng = new Random(424242);
        int[] kernels = [1, 3, 3, 5, 7, 2];
        for (int trial = 0; trial < 400; trial++)
        {
            int k = kernels[rng.Next(kernels.Length)];
            int s = rng.Next(10) switch { < 5 => 1, < 9 => 2, _ => 3 };
            int pad = rng.Next(4) == 0 ? rng.Next(0, k + 1) : k / 2;
            int minSide = Math.Max(1, k - 2 * pad);
            var p = Shape(rng.Next(1, 13), rng.Next(minSide, minSide + 30), rng.Next(minSide, minSide + 40), k, s, pad);
            Case c = Random(rng, p, extremeConstants: trial % 5 == 0);
            KernelTest.AssertPathsAgree(c.Arena, c.Exec, $"trial {trial}: {c}");
        }
    }

    [Theory]
    // mbv2 shapes (3x3 stride 1 and 2 at 64x64 span several strips), 5x5 and 7x7, 1x1 spatial, rows too wide for the scratch.
    [InlineData(16, 64, 64, 3, 1, 1)]
    [InlineData(48, 64, 64, 3, 2, 1)]
    [InlineData(5, 33, 31, 5, 1, 2)]
    [InlineData(5, 33, 31, 5, 2, 2)]
    [InlineData(3, 29, 30, 7, 1, 3)]
    [InlineData(3, 29, 30, 7, 2, 3)]
    [InlineData(4, 1, 1, 3, 1, 1)]
    [InlineData(4, 4, 4, 3, 2, 1)]
    [InlineData(2, 4, 5000, 3, 1, 1)]
    [InlineData(2, 3, 700, 3, 2, 1)]
    public void ChosenShapes_FastEqualsReference(int c, int h, int w, int k, int s, int pad)
    {
        var rng = new Random(c * 1000003 + h * 7919 + w * 131 + k * 5 + s * 3 + pad);
        for (int trial = 0; trial < 3; trial++)
        {
            Case cs = Random(rng, Shape(c, h, w, k, s, pad), extremeConstants: trial == 2);
            KernelTest.AssertPathsAgree(cs.Arena, cs.Exec, cs.ToString());
        }
    }

    [Fact]
    public void HandWorked_TwoChannels3x3()
    {
        // x (2,2,2), zp_x = -1; k 3, pad 1, stride 1: every 3x3 window covers the whole 2x2 input.
        // Channel 0: x = [1 2; 3 4] -> x - zp = [2 3; 4 5]; w all ones, bias 0: every output is 14; x1.0, zp_y 5 -> 19.
        // Channel 1: x = [-1 0; 10 -128] -> [0 1; 11 -127]; w 2 at the centre only, so y = 2 (x - zp) + 100
        //   = [100 102; 122 -154] -> +5 = [105 107; 127 -149] -> clamped [105 107; 127 -128].
        DepthwiseParams p = Shape(2, 2, 2, 3, 1, 1);
        p.InputZeroPoint = -1;
        p.OutputZeroPoint = 5;
        byte[] x = KernelTest.Int8(1, 2, 3, 4, -1, 0, 10, -128);
        byte[] w = KernelTest.Int8(1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 0, 0, 0, 0);
        var c = new Case { P = p, Image = w, YOff = 8, Arena = new byte[16] };
        c.Consts = KernelTest.Constants([0, 100], [1 << 30, 1 << 30], [1, 1], out c.BiasOff, out c.MultOff, out c.ShiftOff);
        x.CopyTo(c.Arena, 0);
        byte[] arena = KernelTest.AssertPathsAgree(c.Arena, c.Exec, c.ToString());
        Assert.Equal(new[] { 19, 19, 19, 19, 105, 107, 127, -128 }, KernelTest.ReadInt8(arena, 8, 8));
    }
}
