namespace TinyTrain.Runtime.Tests.Training;

using TinyTrain.Runtime.Kernels;
using TinyTrain.Runtime.Tests.Kernels;

/// <summary>BackwardInput's fast path against its reference, bit for bit, on both vector widths, over random shapes and buffer placements.</summary>
[Collection(KernelModeCollection.Name)]
public class BackwardInputSimdTests
{
    public static TheoryData<bool> Widths => new() { true, false };

    // A random conv shape; stride, kernel, pad and groups drawn so that every phase and edge case comes up.
    private static ConvParams RandomShape(Random rng)
    {
        int[] kernels = [1, 3, 5, 7];
        while (true)
        {
            int k = kernels[rng.Next(kernels.Length)];
            int s = 1 + rng.Next(4);
            int pad = rng.Next(k + 1);
            int groups = rng.Next(3) == 0 ? 1 + rng.Next(4) : 1;
            int inC = groups * (1 + rng.Next(4));
            int outC = groups * (1 + rng.Next(5));
            int h = 1 + rng.Next(23), w = 1 + rng.Next(37);
            int oh = (h + 2 * pad - k) / s + 1, ow = (w + 2 * pad - k) / s + 1;
            if (h + 2 * pad < k || w + 2 * pad < k || oh < 1 || ow < 1)
            {
                continue;
            }
            return new ConvParams { InC = inC, H = h, W = w, OutC = outC, OH = oh, OW = ow, Kernel = k, Stride = s, Pad = pad, Groups = groups };
        }
    }

    // dy with some exact zeros and negative zeros, so that the masked lanes' zero products meet real ones.
    private static float[] Gradient(Random rng, int count)
    {
        float[] v = TrainTest.Normal(rng, count);
        for (int i = 0; i < count; i++)
        {
            int pick = rng.Next(16);
            v[i] = pick == 0 ? 0f : pick == 1 ? -0f : v[i];
        }
        return v;
    }

    private static void AssertSameBits(ConvParams p, Random rng, bool wide, bool accumulate, bool tight, string what)
    {
        int dyCount = p.OutC * p.OH * p.OW, dxCount = p.InC * p.H * p.W;
        int wLen = p.OutC * (p.InC / p.Groups) * p.Kernel * p.Kernel;
        // tight: dy fills its array exactly, so the fast path may not read past either end of it.
        int lead = tight ? 0 : 4 * rng.Next(1, 9) + rng.Next(4), tail = tight ? 0 : 64;
        byte[] dy = TrainTest.Floats(Gradient(rng, dyCount), lead, tail);
        byte[] w = TrainTest.Int8(rng, wLen + 3, -127, 127);
        float[] sw = TrainTest.Scales(rng, p.OutC);
        if (rng.Next(4) == 0)
        {
            sw[rng.Next(sw.Length)] *= -1f;
        }
        byte[] scales = TrainTest.Floats(sw, lead: 4);
        byte[] prior = TrainTest.Floats(Gradient(rng, dxCount), lead: 8, tail: 8);
        byte[] expected = (byte[])prior.Clone(), got = (byte[])prior.Clone();

        using (new KernelModeScope(useFast: true, useVector256: wide))
        {
            Conv2D.BackwardInputReference(p, dy, lead, w, 3, scales, 4, expected, 8, accumulate);
            Conv2D.BackwardInputSimd(p, dy, lead, w, 3, scales, 4, got, 8, accumulate);
        }
        for (int i = 0; i < got.Length; i += 4)
        {
            if (BitConverter.ToInt32(got, i) != BitConverter.ToInt32(expected, i))
            {
                Assert.Fail($"{what} acc {accumulate} tight {tight}: dx byte {i}: {BitConverter.ToSingle(got, i):R} != reference {BitConverter.ToSingle(expected, i):R}");
            }
        }
    }

    private static string Describe(ConvParams p) =>
        $"{p.InC}x{p.H}x{p.W} -> {p.OutC}x{p.OH}x{p.OW} k{p.Kernel} s{p.Stride} p{p.Pad} g{p.Groups}";

    [Theory]
    [MemberData(nameof(Widths))]
    public void Conv_FastEqualsReferenceBitForBit(bool wide)
    {
        var rng = new Random(wide ? 7101 : 7102);
        for (int t = 0; t < 400; t++)
        {
            ConvParams p = RandomShape(rng);
            AssertSameBits(p, rng, wide, accumulate: t % 2 == 1, tight: t % 3 == 0, Describe(p));
        }
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void Conv_CnnSShapes(bool wide)
    {
        var rng = new Random(7103);
        ConvParams[] shapes =
        [
            new() { InC = 16, H = 28, W = 28, OutC = 32, OH = 14, OW = 14, Kernel = 3, Stride = 2, Pad = 1, Groups = 1 },
            new() { InC = 32, H = 14, W = 14, OutC = 64, OH = 7, OW = 7, Kernel = 3, Stride = 2, Pad = 1, Groups = 1 },
            new() { InC = 16, H = 28, W = 28, OutC = 16, OH = 28, OW = 28, Kernel = 3, Stride = 1, Pad = 1, Groups = 1 },
            new() { InC = 8, H = 17, W = 33, OutC = 12, OH = 17, OW = 33, Kernel = 1, Stride = 1, Pad = 0, Groups = 4 },
        ];
        foreach (ConvParams p in shapes)
        {
            foreach (bool accumulate in new[] { false, true })
            {
                foreach (bool tight in new[] { false, true })
                {
                    AssertSameBits(p, rng, wide, accumulate, tight, Describe(p));
                }
            }
        }
    }

    [Fact]
    public void Conv_DispatchFollowsKernelMode()
    {
        var rng = new Random(7104);
        var p = new ConvParams { InC = 4, H = 9, W = 11, OutC = 6, OH = 5, OW = 6, Kernel = 3, Stride = 2, Pad = 1, Groups = 2 };
        byte[] dy = TrainTest.Floats(Gradient(rng, p.OutC * p.OH * p.OW));
        byte[] w = TrainTest.Int8(rng, p.OutC * 2 * 9, -127, 127);
        byte[] scales = TrainTest.Floats(TrainTest.Scales(rng, p.OutC));
        byte[] reference = new byte[4 * p.InC * p.H * p.W];
        Conv2D.BackwardInputReference(p, dy, 0, w, 0, scales, 0, reference, 0, accumulate: false);
        foreach (var (fast, wide) in new[] { (true, true), (true, false), (false, true) })
        {
            byte[] dx = new byte[reference.Length];
            using (new KernelModeScope(fast, wide))
            {
                Conv2D.BackwardInput(p, dy, 0, w, 0, scales, 0, dx, 0, accumulate: false);
            }
            Assert.Equal(reference, dx);
        }
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void Conv_FastPathAllocatesNothing(bool wide)
    {
        var rng = new Random(7105);
        var p = new ConvParams { InC = 16, H = 28, W = 28, OutC = 32, OH = 14, OW = 14, Kernel = 3, Stride = 2, Pad = 1, Groups = 1 };
        byte[] dy = TrainTest.Floats(Gradient(rng, p.OutC * p.OH * p.OW));
        byte[] w = TrainTest.Int8(rng, p.OutC * p.InC * 9, -127, 127);
        byte[] scales = TrainTest.Floats(TrainTest.Scales(rng, p.OutC));
        byte[] dx = new byte[4 * p.InC * p.H * p.W];
        using (new KernelModeScope(useFast: true, useVector256: wide))
        {
            Conv2D.BackwardInput(p, dy, 0, w, 0, scales, 0, dx, 0, accumulate: true);
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 20; i++)
            {
                Conv2D.BackwardInput(p, dy, 0, w, 0, scales, 0, dx, 0, accumulate: i % 2 == 0);
            }
            Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        }
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void Depthwise_FastEqualsReferenceBitForBit(bool wide)
    {
        var rng = new Random(wide ? 7201 : 7202);
        for (int t = 0; t < 300; t++)
        {
            ConvParams c = RandomShape(rng);
            var p = new DepthwiseParams { C = c.InC, H = c.H, W = c.W, OH = c.OH, OW = c.OW, Kernel = c.Kernel, Stride = c.Stride, Pad = c.Pad };
            bool accumulate = t % 2 == 1, tight = t % 3 == 0;
            int dyCount = p.C * p.OH * p.OW, dxCount = p.C * p.H * p.W;
            int lead = tight ? 0 : 4 * rng.Next(1, 9) + rng.Next(4), tail = tight ? 0 : 64;
            byte[] dy = TrainTest.Floats(Gradient(rng, dyCount), lead, tail);
            byte[] w = TrainTest.Int8(rng, p.C * p.Kernel * p.Kernel + 1, -127, 127);
            float[] sw = TrainTest.Scales(rng, p.C);
            // A negative scale times an all-zero sum is -0: the case where acc * s_w and +0 + acc * s_w differ.
            sw[0] *= -1f;
            byte[] scales = TrainTest.Floats(sw);
            byte[] prior = TrainTest.Floats(Gradient(rng, dxCount), lead: 4, tail: 4);
            byte[] expected = (byte[])prior.Clone(), got = (byte[])prior.Clone();
            using (new KernelModeScope(useFast: true, useVector256: wide))
            {
                DepthwiseConv2D.BackwardInputReference(p, dy, lead, w, 1, scales, 0, expected, 4, accumulate);
                DepthwiseConv2D.BackwardInputSimd(p, dy, lead, w, 1, scales, 0, got, 4, accumulate);
            }
            for (int i = 0; i < got.Length; i += 4)
            {
                if (BitConverter.ToInt32(got, i) != BitConverter.ToInt32(expected, i))
                {
                    Assert.Fail($"Depthwise {p.C}x{p.H}x{p.W} k{p.Kernel} s{p.Stride} p{p.Pad} acc {accumulate} tight {tight}: dx byte {i}: {BitConverter.ToSingle(got, i):R} != reference {BitConverter.ToSingle(expected, i):R}");
                }
            }
        }
    }
}
