using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace TinyTrain.Runtime.Kernels;

/// <summary>
/// The input layout the fast spatial convolutions (Conv2D, DepthwiseConv2D) read: a strip of rows of
/// one zero-padded input plane, as int32 (x - zp, so padding is 0). Each row is split by column phase:
/// padded column c goes to phase c % stride at index c / stride, each phase <c>phaseWidth</c> ints. Output
/// column ox under tap kx then reads phase kx % stride at index ox + kx / stride, so a run of outputs
/// reads contiguous ints for any stride, and a vector of outputs is one load per tap.
/// </summary>
internal static class ConvStrip
{
    /// <summary>Ints in one phase: every padded column, plus slack so a full vector past the last output stays in the row.</summary>
    public static int PhaseWidth(int ow, int lanes, int kernel, int stride)
    {
        return RoundUp(ow, lanes) + (kernel - 1) / stride + 1;
    }

    public static int RoundUp(int value, int multiple)
    {
        return (value + multiple - 1) / multiple * multiple;
    }

    /// <summary>Packs padded rows [firstRow, firstRow + rows) of the plane (h, w) at <paramref name="plane"/> into <paramref name="strip"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Pack<TV, L>(ref byte plane, int h, int w, int pad, int stride, int zeroPoint, int firstRow, int rows, int phaseWidth, Span<int> strip)
        where TV : struct
        where L : struct, ILanes<TV>
    {
        int n = L.Count;
        int rowStride = stride * phaseWidth;
        strip.Slice(0, rows * rowStride).Clear();
        ref int s0 = ref MemoryMarshal.GetReference(strip);
        TV zp = L.Splat(zeroPoint);
        for (int r = 0; r < rows; r++)
        {
            int iy = firstRow + r - pad;
            if (iy < 0 || iy >= h)
            {
                continue;
            }
            ref byte src = ref Unsafe.Add(ref plane, iy * w);
            ref int dst = ref Unsafe.Add(ref s0, r * rowStride);
            int ix = 0;
            if (stride == 1)
            {
                for (; ix + n <= w; ix += n)
                {
                    L.Store(L.Subtract(L.LoadInt8(ref src, ix), zp), ref dst, pad + ix);
                }
            }
            else if (stride == 2)
            {
                for (; ix + 2 * n <= w; ix += 2 * n)
                {
                    L.LoadInt8Pairs(ref src, ix, out TV even, out TV odd);
                    int c = pad + ix;
                    L.Store(L.Subtract(even, zp), ref dst, (c & 1) * phaseWidth + (c >> 1));
                    L.Store(L.Subtract(odd, zp), ref dst, ((c + 1) & 1) * phaseWidth + ((c + 1) >> 1));
                }
            }
            for (; ix < w; ix++)
            {
                int c = pad + ix;
                Unsafe.Add(ref dst, c % stride * phaseWidth + c / stride) = (sbyte)Unsafe.Add(ref src, ix) - zeroPoint;
            }
        }
    }
}
