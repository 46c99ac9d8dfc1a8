using TinyTrain.Runtime.Kernels;

namespace TinyTrain.Runtime.Tests.Kernels;

[Collection(KernelModeCollection.Name)]
public class PoolTests
{
    private static void Exec(bool global, PoolParams p, int xOff, int yOff, KernelPath path, byte[] arena)
    {
        switch (path)
        {
            case KernelPath.Reference when global:
                GlobalAvgPool.RunReference(p, arena, xOff, arena, yOff);
                break;
            case KernelPath.Reference:
                AvgPool.RunReference(p, arena, xOff, arena, yOff);
                break;
            case KernelPath.Simd256 or KernelPath.Simd128 when global:
                GlobalAvgPool.RunSimd(p, arena, xOff, arena, yOff);
                break;
            case KernelPath.Simd256 or KernelPath.Simd128:
                AvgPool.RunSimd(p, arena, xOff, arena, yOff);
                break;
            default:
                if (global)
                {
                    GlobalAvgPool.Run(p, arena, xOff, arena, yOff);
                }
                else
                {
                    AvgPool.Run(p, arena, xOff, arena, yOff);
                }
                break;
        }
    }

    private static PoolParams Shape(int c, int h, int w, int k, int s) => new()
    {
        C = c,
        H = h,
        W = w,
        Kernel = k,
        Stride = s,
        OH = (h - k) / s + 1,
        OW = (w - k) / s + 1,
        ActMin = -128,
        ActMax = 127,
    };

    private static byte[] Check(bool global, PoolParams p, Random rng, out int yOff)
    {
        int xOff = rng.Next(0, 5);
        int xLen = p.C * p.H * p.W;
        int off = xOff + xLen + rng.Next(0, 5);
        int yLen = global ? p.C : p.C * p.OH * p.OW;
        byte[] arena = KernelTest.RandomBytes(rng, off + yLen + rng.Next(1, 5));
        yOff = off;
        string what = $"{(global ? "GlobalAvgPool" : "AvgPool")} x({p.C},{p.H},{p.W}) k{p.Kernel} s{p.Stride} act [{p.ActMin},{p.ActMax}]";
        return KernelTest.AssertPathsAgree(arena, (path, a) => Exec(global, p, xOff, off, path, a), what);
    }

    [Fact]
    public void AvgPool_RandomShapes_FastEqualsReference()
    {
        var rng = new Random(555);
        for (int trial = 0; trial < 300; trial++)
        {
            int h = rng.Next(1, 30), w = rng.Next(1, 40);
            int k = rng.Next(1, Math.Min(Math.Min(h, w), 7) + 1);
            PoolParams p = Shape(rng.Next(1, 6), h, w, k, rng.Next(1, 4));
            (p.ActMin, p.ActMax) = KernelTest.Activation(rng, 0);
            Check(global: false, p, rng, out _);
        }
        Check(global: false, Shape(8, 16, 16, 2, 2), rng, out _);
        Check(global: false, Shape(2, 7, 4000, 3, 1), rng, out _); // rows too wide for the scratch
    }

    [Fact]
    public void GlobalAvgPool_RandomShapes_FastEqualsReference()
    {
        var rng = new Random(556);
        for (int trial = 0; trial < 300; trial++)
        {
            var p = new PoolParams { C = rng.Next(1, 12), H = rng.Next(1, 25), W = rng.Next(1, 25), OH = 1, OW = 1 };
            (p.ActMin, p.ActMax) = KernelTest.Activation(rng, 0);
            Check(global: true, p, rng, out _);
        }
        Check(global: true, new PoolParams { C = 1280, H = 4, W = 4, ActMin = -128, ActMax = 127 }, rng, out _);
    }

    [Fact]
    public void AvgPool_HandWorked()
    {
        // x (1,3,3) = [1 2 3; 4 -5 -6; 7 -8 -9]; k 2, stride 1; sums of four, rounded half away from zero:
        //   1 + 2 + 4 - 5 = 2     -> (2 + 2) / 4 = 1   (0.5 -> 1)
        //   2 + 3 - 5 - 6 = -6    -> (-6 - 2) / 4 = -2 (-1.5 -> -2)
        //   4 - 5 + 7 - 8 = -2    -> (-2 - 2) / 4 = -1 (-0.5 -> -1)
        //   -5 - 6 - 8 - 9 = -28  -> (-28 - 2) / 4 = -7 (exact), clamped to ActMin -6
        PoolParams p = Shape(1, 3, 3, 2, 1);
        p.ActMin = -6;
        byte[] arena = new byte[13];
        KernelTest.Int8(1, 2, 3, 4, -5, -6, 7, -8, -9).CopyTo(arena, 0);
        byte[] y = KernelTest.AssertPathsAgree(arena, (path, a) => Exec(false, p, 0, 9, path, a), "AvgPool hand-worked");
        Assert.Equal(new[] { 1, -2, -1, -6 }, KernelTest.ReadInt8(y, 9, 4));
    }

    [Fact]
    public void GlobalAvgPool_HandWorked()
    {
        // Channel 0: 1..6, sum 21, mean 3.5 -> (21 + 3) / 6 = 4; channel 1: -1..-6 -> (-21 - 3) / 6 = -4.
        var p = new PoolParams { C = 2, H = 2, W = 3, OH = 1, OW = 1, ActMin = -128, ActMax = 127 };
        byte[] arena = new byte[14];
        KernelTest.Int8(1, 2, 3, 4, 5, 6, -1, -2, -3, -4, -5, -6).CopyTo(arena, 0);
        byte[] y = KernelTest.AssertPathsAgree(arena, (path, a) => Exec(true, p, 0, 12, path, a), "GlobalAvgPool hand-worked");
        Assert.Equal(new[] { 4, -4 }, KernelTest.ReadInt8(y, 12, 2));
    }
}
