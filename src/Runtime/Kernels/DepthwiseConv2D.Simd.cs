using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace TinyTrain.Runtime.Kernels;

// The fast path: per channel, a strip of padded, phase-split input rows (ConvStrip) in stack scratch,
// then each vector of outputs is one load, multiply and add per tap for any stride. Exact int32
// accumulation and lane-wise requantization: equal to the reference bit for bit.
// A fused mask, when asked for, takes each stored vector's compare bits from the same accumulators (FusedMask).
public static partial class DepthwiseConv2D
{
    // Run dispatches to the fast path or to the reference (in DepthwiseConv2D.Reference.cs); it lives here, beside the
    // fast path, so that the portable files alone compile for nanoFramework (which calls RunReference).
    public static void Run(in DepthwiseParams p, byte[] x, int xOff, byte[] w, int wOff, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff, byte[] y, int yOff)
    {
        Run(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, null, -1, 0);
    }

    /// <summary>
    /// Also writes the fused activation's mask when <paramref name="maskMode"/> is 1 (ReLU: bit = acc &gt; 0) or
    /// 2 (ReLU6: also zp_y + MBQM(acc) &lt; ActMax before the clamp), acc being the exact int32 accumulator with the
    /// bias: one bit per output in y's order, LSB-first, in ceil(count / 8) bytes at mask[maskOff..], high bits 0.
    /// Mode 0 writes none (mask null or maskOff &lt; 0).
    /// </summary>
    public static void Run(in DepthwiseParams p, byte[] x, int xOff, byte[] w, int wOff, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff, byte[] y, int yOff, byte[]? mask, int maskOff, int maskMode)
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
    public static void RunSimd(in DepthwiseParams p, byte[] x, int xOff, byte[] w, int wOff, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff, byte[] y, int yOff)
    {
        RunSimd(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, null, -1, 0);
    }

    /// <summary>The fast path, with the fused mask as in <c>Run</c>.</summary>
    public static void RunSimd(in DepthwiseParams p, byte[] x, int xOff, byte[] w, int wOff, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff, byte[] y, int yOff, byte[]? mask, int maskOff, int maskMode)
    {
        Check(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, mask, maskOff, maskMode);
        Simd(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, mask, maskOff, maskMode);
    }

    // Stack scratch of the fast path, in ints (16 KB).
    private const int ScratchInts = 4096;

    private static void Simd(in DepthwiseParams p, byte[] x, int xOff, byte[] w, int wOff, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff, byte[] y, int yOff, byte[]? mask, int maskOff, int maskMode)
    {
        // Rows shorter than a Vector256 would waste most of its lanes.
        if (SimdWidth.Wide && p.OW > Vector128<int>.Count)
        {
            SimdCore<Vector256<int>, Lanes256>(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, mask, maskOff, maskMode);
        }
        else
        {
            SimdCore<Vector128<int>, Lanes128>(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, mask, maskOff, maskMode);
        }
    }

    [SkipLocalsInit]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SimdCore<TV, L>(in DepthwiseParams p, byte[] x, int xOff, byte[] w, int wOff, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff, byte[] y, int yOff, byte[]? mask, int maskOff, int maskMode)
        where TV : struct
        where L : struct, ILanes<TV>
    {
        int n = L.Count;
        int k = p.Kernel;
        int s = p.Stride;
        int kk = k * k;
        int owr = ConvStrip.RoundUp(p.OW, n);
        int phaseWidth = ConvStrip.PhaseWidth(p.OW, n, k, s);
        int rowStride = s * phaseWidth;
        // R rows of output need ((R-1)*s + k) strip rows, plus the weights and tap offsets.
        long free = ScratchInts - 2L * kk - (long)(k - s) * rowStride;
        long perRow = (long)s * rowStride;
        if (free < perRow)
        {
            // A row too wide for the scratch: rare enough that the reference will do.
            Reference(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, mask, maskOff, maskMode);
            return;
        }
        int rowsPerStrip = (int)Math.Min(free / perRow, p.OH);
        Span<int> scratch = stackalloc int[ScratchInts];
        Span<int> strip = scratch.Slice(0, ((rowsPerStrip - 1) * s + k) * rowStride);
        Span<int> wk = scratch.Slice(strip.Length, kk);
        Span<int> taps = scratch.Slice(strip.Length + kk, kk);
        for (int ky = 0; ky < k; ky++)
        {
            for (int kx = 0; kx < k; kx++)
            {
                taps[ky * k + kx] = ky * rowStride + kx % s * phaseWidth + kx / s;
            }
        }
        ref byte xr = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(x), xOff);
        ref byte wr = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(w), wOff);
        ref byte yr = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(y), yOff);
        var fused = new FusedMask(mask, maskOff, maskMode, y, yOff, p.C * p.OH * p.OW);
        ref int stripr = ref MemoryMarshal.GetReference(strip);
        ref int wkr = ref MemoryMarshal.GetReference(wk);
        ref int tapr = ref MemoryMarshal.GetReference(taps);
        int plane = p.H * p.W;
        int oplane = p.OH * p.OW;
        for (int c = 0; c < p.C; c++)
        {
            int bias = biasOff >= 0 ? Quant.ReadInt32(biases, biasOff + 4 * c) : 0;
            int multiplier = Quant.ReadInt32(consts, multOff + 4 * c);
            int shift = Quant.ReadInt32(consts, shiftOff + 4 * c);
            for (int t = 0; t < kk; t++)
            {
                wk[t] = (sbyte)Unsafe.Add(ref wr, c * kk + t);
            }
            for (int oy0 = 0; oy0 < p.OH; oy0 += rowsPerStrip)
            {
                int rows = Math.Min(rowsPerStrip, p.OH - oy0);
                ConvStrip.Pack<TV, L>(ref Unsafe.Add(ref xr, c * plane), p.H, p.W, p.Pad, s, p.InputZeroPoint,
                    oy0 * s, (rows - 1) * s + k, phaseWidth, strip);
                for (int r = 0; r < rows; r++)
                {
                    Row<TV, L>(p, kk, owr, ref Unsafe.Add(ref stripr, r * s * rowStride), ref tapr, ref wkr, bias, multiplier, shift,
                        ref Unsafe.Add(ref yr, c * oplane + (oy0 + r) * p.OW), fused);
                }
            }
        }
    }

    // One output row: y[ox] = requantize(bias + sum over taps of strip[tap + ox] * w[tap]), two vectors at a time.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Row<TV, L>(in DepthwiseParams p, int kk, int owr, ref int src, ref int taps, ref int wk, int bias, int multiplier, int shift, ref byte y, in FusedMask mask)
        where TV : struct
        where L : struct, ILanes<TV>
    {
        int n = L.Count;
        int ox = 0;
        for (; ox + 2 * n <= owr; ox += 2 * n)
        {
            TV a = L.Splat(bias);
            TV b = a;
            for (int t = 0; t < kk; t++)
            {
                int xi = Unsafe.Add(ref taps, t) + ox;
                TV wv = L.Splat(Unsafe.Add(ref wk, t));
                a = L.Add(a, L.Multiply(L.Load(ref src, xi), wv));
                b = L.Add(b, L.Multiply(L.Load(ref src, xi + n), wv));
            }
            Store<TV, L>(p, a, multiplier, shift, ref y, ox, mask);
            Store<TV, L>(p, b, multiplier, shift, ref y, ox + n, mask);
        }
        if (ox < owr)
        {
            TV a = L.Splat(bias);
            for (int t = 0; t < kk; t++)
            {
                a = L.Add(a, L.Multiply(L.Load(ref src, Unsafe.Add(ref taps, t) + ox), L.Splat(Unsafe.Add(ref wk, t))));
            }
            Store<TV, L>(p, a, multiplier, shift, ref y, ox, mask);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store<TV, L>(in DepthwiseParams p, TV acc, int multiplier, int shift, ref byte y, int ox, in FusedMask mask)
        where TV : struct
        where L : struct, ILanes<TV>
    {
        if (mask.Mode != 0)
        {
            StoreMasked<TV, L>(p, acc, multiplier, shift, ref y, ox, mask);
            return;
        }
        TV v = L.Requantize(acc, multiplier, shift, p.OutputZeroPoint, p.ActMin, p.ActMax);
        if (ox + L.Count <= p.OW)
        {
            L.StoreInt8(v, ref y, ox);
        }
        else
        {
            L.StoreInt8Partial(v, ref y, ox, p.OW - ox);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreMasked<TV, L>(in DepthwiseParams p, TV acc, int multiplier, int shift, ref byte y, int ox, in FusedMask mask)
        where TV : struct
        where L : struct, ILanes<TV>
    {
        TV v = L.Requantize(acc, multiplier, shift, p.OutputZeroPoint, p.ActMin, p.ActMax, mask.Mode, out uint bits);
        int count = Math.Min(L.Count, p.OW - ox);
        if (count == L.Count)
        {
            L.StoreInt8(v, ref y, ox);
        }
        else
        {
            L.StoreInt8Partial(v, ref y, ox, count);
        }
        mask.Write(ref Unsafe.Add(ref y, ox), bits, count);
    }
}
