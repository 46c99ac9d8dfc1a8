namespace TinyTrain.Runtime.Kernels;

/// <summary>
/// int8 global average pool (<see cref="Plans.OpKind.GlobalAvgPool"/>): the mean of each channel over
/// H*W with <see cref="AvgPool"/>'s rounding; the output (C, 1, 1) keeps the input's scale and zero point.
/// Reads C, H, W, ActMin and ActMax of the <see cref="PoolParams"/>. y must not overlap x.
/// </summary>
public static partial class GlobalAvgPool
{
    private const string Op = "GlobalAvgPool";

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
        if ((long)p.H * p.W > (1 << 23))
        {
            // Keeps the int32 sum of int8 values exact.
            throw new TinyTrainException($"{Op}: H*W is {(long)p.H * p.W}; at most 2^23 elements per channel are supported.");
        }
        KernelChecks.Activation(Op, p.ActMin, p.ActMax);
        long xLen = (long)p.C * p.H * p.W;
        KernelChecks.Range(Op, "x", x, xOff, xLen);
        KernelChecks.Range(Op, "y", y, yOff, p.C);
        KernelChecks.Disjoint(Op, "x", x, xOff, xLen, y, yOff, p.C);
    }
}
