using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

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
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Pack<TV, L>(ref byte plane, int h, int w, int pad, int stride, int zeroPoint, int firstRow, int rows, int phaseWidth, Span<int> strip)
        where TV : struct
        where L : struct, ILanes<TV>
    {
        Pack<TV, L>(ref plane, h, w, pad, stride, zeroPoint, 0, firstRow, rows, phaseWidth, strip);
    }

    /// <summary>
    /// <see cref="Pack{TV, L}(ref byte, int, int, int, int, int, int, int, int, Span{int})"/> with x - <paramref name="zeroPoint"/>
    /// for the plane's values and <paramref name="padding"/> everywhere else.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Pack<TV, L>(ref byte plane, int h, int w, int pad, int stride, int zeroPoint, int padding, int firstRow, int rows, int phaseWidth, Span<int> strip)
        where TV : struct
        where L : struct, ILanes<TV>
    {
        int rowStride = stride * phaseWidth;
        if (padding == 0)
        {
            strip.Slice(0, rows * rowStride).Clear();
        }
        else
        {
            strip.Slice(0, rows * rowStride).Fill(padding);
        }
        ref int s0 = ref MemoryMarshal.GetReference(strip);
        for (int r = 0; r < rows; r++)
        {
            int iy = firstRow + r - pad;
            if (iy < 0 || iy >= h)
            {
                continue;
            }
            ref byte src = ref Unsafe.Add(ref plane, iy * w);
            ref int dst = ref Unsafe.Add(ref s0, r * rowStride);
            // Rows narrower than L's vectors (small late layers) still fit Vector128's.
            if (!PackRow<TV, L>(ref src, w, pad, stride, zeroPoint, phaseWidth, ref dst)
                && !PackRow<Vector128<int>, Lanes128>(ref src, w, pad, stride, zeroPoint, phaseWidth, ref dst))
            {
                PackRowScalar(ref src, w, pad, stride, zeroPoint, phaseWidth, ref dst);
            }
        }
    }

    // One row in whole vectors, the last one ending at the row's end (rewriting some values with the same ones);
    // false, having written nothing, for strides above 2 and rows shorter than one load.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool PackRow<TV, L>(ref byte src, int w, int pad, int stride, int zeroPoint, int phaseWidth, ref int dst)
        where TV : struct
        where L : struct, ILanes<TV>
    {
        int n = L.Count;
        TV zp = L.Splat(zeroPoint);
        if (stride == 1 && w >= n)
        {
            for (int ix = 0; ; ix += n)
            {
                ix = Math.Min(ix, w - n);
                L.Store(L.Subtract(L.LoadInt8(ref src, ix), zp), ref dst, pad + ix);
                if (ix == w - n)
                {
                    return true;
                }
            }
        }
        if (stride == 2 && w >= 2 * n)
        {
            for (int ix = 0; ; ix += 2 * n)
            {
                ix = Math.Min(ix, w - 2 * n);
                L.LoadInt8Pairs(ref src, ix, out TV even, out TV odd);
                int c = pad + ix;
                L.Store(L.Subtract(even, zp), ref dst, (c & 1) * phaseWidth + (c >> 1));
                L.Store(L.Subtract(odd, zp), ref dst, ((c + 1) & 1) * phaseWidth + ((c + 1) >> 1));
                if (ix == w - 2 * n)
                {
                    return true;
                }
            }
        }
        return false;
    }

    private static void PackRowScalar(ref byte src, int w, int pad, int stride, int zeroPoint, int phaseWidth, ref int dst)
    {
        // Padded column c goes to phase c % stride, index c / stride: stepped, not divided, per column.
        int phase = pad % stride;
        int at = pad / stride;
        for (int ix = 0; ix < w; ix++)
        {
            Unsafe.Add(ref dst, phase * phaseWidth + at) = (sbyte)Unsafe.Add(ref src, ix) - zeroPoint;
            if (++phase == stride)
            {
                phase = 0;
                at++;
            }
        }
    }
}
