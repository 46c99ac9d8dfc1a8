using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace TinyTrain.Runtime.Kernels;

// The fast path: dot products over In, four output rows at a time so that each loaded input vector
// feeds four accumulators. Exact int32 sums, scalar requantization (one per output): bit for bit.
// A fused mask, when asked for, comes from the same accumulators as the outputs (FusedMask).
public static partial class FullyConnected
{
    // Run dispatches to the fast path or to the reference (in FullyConnected.Reference.cs); it lives here, beside the
    // fast path, so that the portable files alone compile for nanoFramework (which calls RunReference).
    public static void Run(in FullyConnectedParams p, byte[] x, int xOff, byte[] w, int wOff, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff, byte[] y, int yOff)
    {
        Run(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, null, -1, 0);
    }

    /// <summary>
    /// Also writes the fused activation's mask when <paramref name="maskMode"/> is 1 (ReLU: bit = acc &gt; 0) or
    /// 2 (ReLU6: also zp_y + MBQM(acc) &lt; ActMax before the clamp), acc being the exact int32 accumulator with the
    /// bias: one bit per output in y's order, LSB-first, in ceil(count / 8) bytes at mask[maskOff..], high bits 0.
    /// Mode 0 writes none (mask null or maskOff &lt; 0).
    /// </summary>
    public static void Run(in FullyConnectedParams p, byte[] x, int xOff, byte[] w, int wOff, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff, byte[] y, int yOff, byte[]? mask, int maskOff, int maskMode)
    {
        Check(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, mask, maskOff, maskMode);
        if (SimdWidth.Fast)
        {
            Simd(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, mask, maskOff, maskMode);
        }
        else
        {
            Reference(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, mask, maskOff, maskMode);
        }
    }

    /// <summary>The fast path (vector width per <see cref="KernelMode.UseVector256"/>), whatever <see cref="KernelMode.UseFast"/> says.</summary>
    public static void RunSimd(in FullyConnectedParams p, byte[] x, int xOff, byte[] w, int wOff, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff, byte[] y, int yOff)
    {
        RunSimd(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, null, -1, 0);
    }

    /// <summary>The fast path, with the fused mask as in <c>Run</c>.</summary>
    public static void RunSimd(in FullyConnectedParams p, byte[] x, int xOff, byte[] w, int wOff, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff, byte[] y, int yOff, byte[]? mask, int maskOff, int maskMode)
    {
        Check(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, mask, maskOff, maskMode);
        Simd(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, mask, maskOff, maskMode);
    }

    private static void Simd(in FullyConnectedParams p, byte[] x, int xOff, byte[] w, int wOff, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff, byte[] y, int yOff, byte[]? mask, int maskOff, int maskMode)
    {
        if (SimdWidth.Wide)
        {
            SimdCore<Vector256<int>, Lanes256>(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, mask, maskOff, maskMode);
        }
        else
        {
            SimdCore<Vector128<int>, Lanes128>(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, mask, maskOff, maskMode);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SimdCore<TV, L>(in FullyConnectedParams p, byte[] x, int xOff, byte[] w, int wOff, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff, byte[] y, int yOff, byte[]? mask, int maskOff, int maskMode)
        where TV : struct
        where L : struct, ILanes<TV>
    {
        ref byte xr = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(x), xOff);
        ref byte wr = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(w), wOff);
        var fused = new FusedMask(mask, maskOff, maskMode, y, yOff, p.Out);
        int o = 0;
        for (; o + 4 <= p.Out; o += 4)
        {
            Dot4<TV, L>(p.In, p.InputZeroPoint, ref xr, ref Unsafe.Add(ref wr, o * p.In), out int s0, out int s1, out int s2, out int s3);
            Write(p, biases, biasOff, consts, multOff, shiftOff, y, yOff, fused, o, s0);
            Write(p, biases, biasOff, consts, multOff, shiftOff, y, yOff, fused, o + 1, s1);
            Write(p, biases, biasOff, consts, multOff, shiftOff, y, yOff, fused, o + 2, s2);
            Write(p, biases, biasOff, consts, multOff, shiftOff, y, yOff, fused, o + 3, s3);
        }
        for (; o < p.Out; o++)
        {
            Write(p, biases, biasOff, consts, multOff, shiftOff, y, yOff, fused, o, Dot1<TV, L>(p.In, p.InputZeroPoint, ref xr, ref Unsafe.Add(ref wr, o * p.In)));
        }
    }

    // sum_i (x[i] - zp) * w[r, i] for four consecutive rows r of w (row length n).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot4<TV, L>(int length, int zeroPoint, ref byte x, ref byte w, out int s0, out int s1, out int s2, out int s3)
        where TV : struct
        where L : struct, ILanes<TV>
    {
        int n = L.Count;
        TV zp = L.Splat(zeroPoint);
        TV a0 = L.Splat(0), a1 = a0, a2 = a0, a3 = a0;
        int i = 0;
        for (; i + n <= length; i += n)
        {
            TV xv = L.Subtract(L.LoadInt8(ref x, i), zp);
            a0 = L.Add(a0, L.Multiply(xv, L.LoadInt8(ref w, i)));
            a1 = L.Add(a1, L.Multiply(xv, L.LoadInt8(ref w, length + i)));
            a2 = L.Add(a2, L.Multiply(xv, L.LoadInt8(ref w, 2 * length + i)));
            a3 = L.Add(a3, L.Multiply(xv, L.LoadInt8(ref w, 3 * length + i)));
        }
        s0 = L.Sum(a0);
        s1 = L.Sum(a1);
        s2 = L.Sum(a2);
        s3 = L.Sum(a3);
        for (; i < length; i++)
        {
            int xv = (sbyte)Unsafe.Add(ref x, i) - zeroPoint;
            s0 += xv * (sbyte)Unsafe.Add(ref w, i);
            s1 += xv * (sbyte)Unsafe.Add(ref w, length + i);
            s2 += xv * (sbyte)Unsafe.Add(ref w, 2 * length + i);
            s3 += xv * (sbyte)Unsafe.Add(ref w, 3 * length + i);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int Dot1<TV, L>(int length, int zeroPoint, ref byte x, ref byte w)
        where TV : struct
        where L : struct, ILanes<TV>
    {
        int n = L.Count;
        TV zp = L.Splat(zeroPoint);
        TV a = L.Splat(0);
        int i = 0;
        for (; i + n <= length; i += n)
        {
            a = L.Add(a, L.Multiply(L.Subtract(L.LoadInt8(ref x, i), zp), L.LoadInt8(ref w, i)));
        }
        int sum = L.Sum(a);
        for (; i < length; i++)
        {
            sum += ((sbyte)Unsafe.Add(ref x, i) - zeroPoint) * (sbyte)Unsafe.Add(ref w, i);
        }
        return sum;
    }

    private static void Write(in FullyConnectedParams p, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff, byte[] y, int yOff,
        in FusedMask mask, int o, int dot)
    {
        int acc = (biasOff >= 0 ? Quant.ReadInt32(biases, biasOff + 4 * o) : 0) + dot;
        int v = p.OutputZeroPoint + Quant.MultiplyByQuantizedMultiplier(acc, Quant.ReadInt32(consts, multOff + 4 * o), Quant.ReadInt32(consts, shiftOff + 4 * o));
        y[yOff + o] = (byte)Math.Clamp(v, p.ActMin, p.ActMax);
        if (mask.Mode != 0 && FusedMask.Passes(mask.Mode, acc, v, p.ActMax))
        {
            mask.Set(o);
        }
    }
}
