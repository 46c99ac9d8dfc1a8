namespace TinyTrain.Runtime.Kernels;

/// <summary>Shape of an int8 average pool (<see cref="Plans.OpKind.AvgPool"/>, and <see cref="Plans.OpKind.GlobalAvgPool"/>, which reads only C, H, W, ActMin, ActMax).</summary>
public struct PoolParams
{
    /// <summary>x is (C, H, W); y is (C, OH, OW); OH = (H - Kernel) / Stride + 1, likewise OW (no padding).</summary>
    public int C, H, W, OH, OW;
    public int Kernel, Stride;
    public int ActMin, ActMax;
}

/// <summary>
/// int8 average pool, TFLite semantics, no padding. The output keeps the input's scale and zero point,
/// so the raw int8 values are averaged: with s = sum over the Kernel x Kernel window and n = Kernel^2,
/// y = clamp(s &gt; 0 ? (s + n/2) / n : (s - n/2) / n, actMin, actMax), division truncating toward zero.
/// y must not overlap x.
/// </summary>
public static partial class AvgPool
{
    private const string Op = "AvgPool";

    /// <summary>The scalar reference, whatever <see cref="KernelMode"/> says.</summary>
    public static void RunReference(in PoolParams p, byte[] x, int xOff, byte[] y, int yOff)
    {
        Check(p, x, xOff, y, yOff);
        Reference(p, x, xOff, y, yOff);
    }

    private static void Check(in PoolParams p, byte[] x, int xOff, byte[] y, int yOff)
    {
        KernelChecks.Positive(Op, "C", p.C);
        KernelChecks.Positive(Op, "H", p.H);
        KernelChecks.Positive(Op, "W", p.W);
        KernelChecks.Positive(Op, "Kernel", p.Kernel);
        KernelChecks.Positive(Op, "Stride", p.Stride);
        if (p.Kernel > p.H || p.Kernel > p.W)
        {
            throw new TinyTrainException($"{Op}: Kernel {p.Kernel} is larger than the input ({p.H} x {p.W}); there is no padding.");
        }
        KernelChecks.Output(Op, "OH", p.OH, (p.H - p.Kernel) / p.Stride + 1, "(H - Kernel) / Stride + 1");
        KernelChecks.Output(Op, "OW", p.OW, (p.W - p.Kernel) / p.Stride + 1, "(W - Kernel) / Stride + 1");
        KernelChecks.Activation(Op, p.ActMin, p.ActMax);
        long xLen = (long)p.C * p.H * p.W;
        long yLen = (long)p.C * p.OH * p.OW;
        KernelChecks.Range(Op, "x", x, xOff, xLen);
        KernelChecks.Range(Op, "y", y, yOff, yLen);
        KernelChecks.Disjoint(Op, "x", x, xOff, xLen, y, yOff, yLen);
    }
}
