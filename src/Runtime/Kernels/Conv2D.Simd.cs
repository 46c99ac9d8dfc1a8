using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace TinyTrain.Runtime.Kernels;

// The fast path. Accumulates exactly in int32 (wrapping, like the reference, so reordering the sum
// changes nothing) and requantizes with the lane-wise twin of Quant.MultiplyByQuantizedMultiplier:
// the result equals the reference bit for bit. Scratch is one bounded stackalloc; nothing else.
// A fused mask, when asked for, takes each stored vector's compare bits from the same accumulators (FusedMask).
public static partial class Conv2D
{
    // Run dispatches to the fast path or to the reference (in Conv2D.Reference.cs); it lives here, beside the
    // fast path, so that the portable files alone compile for nanoFramework (which calls RunReference).
    public static void Run(in ConvParams p, byte[] x, int xOff, byte[] w, int wOff, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff, byte[] y, int yOff)
    {
        Run(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, null, -1, 0);
    }

    /// <summary>
    /// Also writes the fused activation's mask when <paramref name="maskMode"/> is 1 (ReLU: bit = acc &gt; 0) or
    /// 2 (ReLU6: also zp_y + MBQM(acc) &lt; ActMax before the clamp), acc being the exact int32 accumulator with the
    /// bias: one bit per output in y's order, LSB-first, in ceil(count / 8) bytes at mask[maskOff..], high bits 0.
    /// Mode 0 writes none (mask null or maskOff &lt; 0).
    /// </summary>
    public static void Run(in ConvParams p, byte[] x, int xOff, byte[] w, int wOff, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff, byte[] y, int yOff, byte[]? mask, int maskOff, int maskMode)
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
    public static void RunSimd(in ConvParams p, byte[] x, int xOff, byte[] w, int wOff, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff, byte[] y, int yOff)
    {
        RunSimd(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, null, -1, 0);
    }

    /// <summary>The fast path, with the fused mask as in <c>Run</c>.</summary>
    public static void RunSimd(in ConvParams p, byte[] x, int xOff, byte[] w, int wOff, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff, byte[] y, int yOff, byte[]? mask, int maskOff, int maskMode)
    {
        Check(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, mask, maskOff, maskMode);
        Simd(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, mask, maskOff, maskMode);
    }

    // Stack scratch of the fast path, in ints (16 KB).
    private const int ScratchInts = 4096;
    // Output channels computed together, so that every loaded input vector feeds four accumulators.
    private const int Block = 4;

    private static void Simd(in ConvParams p, byte[] x, int xOff, byte[] w, int wOff, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff, byte[] y, int yOff, byte[]? mask, int maskOff, int maskMode)
    {
        bool pointwise = p.Kernel == 1 && p.Stride == 1 && p.Pad == 0;
        // Dense: im2col tiles (Conv2D.Dense.cs), pointwise too where its packed multiply-adds win (PointwiseTakesDense);
        // the paths below only where a tile does not fit.
        if (p.Groups == 1 && (!pointwise || PointwiseTakesDense(p))
            && Dense(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, mask, maskOff, maskMode))
        {
            return;
        }
        // Rows (or, pointwise, planes) shorter than a Vector256 would waste most of its lanes.
        int run = pointwise ? p.H * p.W : p.OW;
        if (SimdWidth.Wide && run > Vector128<int>.Count)
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
    private static void SimdCore<TV, L>(in ConvParams p, byte[] x, int xOff, byte[] w, int wOff, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff, byte[] y, int yOff, byte[]? mask, int maskOff, int maskMode)
        where TV : struct
        where L : struct, ILanes<TV>
    {
        Span<int> scratch = stackalloc int[ScratchInts];
        // Per channel of a block: start value (bias), multiplier, shift.
        Span<int> quant = stackalloc int[3 * Block];
        ref byte xr = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(x), xOff);
        ref byte wr = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(w), wOff);
        ref byte yr = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(y), yOff);
        var fused = new FusedMask(mask, maskOff, maskMode, y, yOff, p.OutC * p.OH * p.OW);
        int icg = p.InC / p.Groups;
        int ocg = p.OutC / p.Groups;
        if (p.Kernel == 1 && p.Stride == 1 && p.Pad == 0 && Block * icg <= ScratchInts)
        {
            int plane = p.H * p.W;
            for (int g = 0; g < p.Groups; g++)
            {
                Pointwise<TV, L>(p, icg, ocg, plane, ref Unsafe.Add(ref xr, g * icg * plane), ref Unsafe.Add(ref wr, g * ocg * icg),
                    biases, biasOff, consts, multOff, shiftOff, g * ocg, ref Unsafe.Add(ref yr, g * ocg * plane), scratch, quant, fused);
            }
            return;
        }
        if (!Spatial<TV, L>(p, ref xr, ref wr, biases, biasOff, consts, multOff, shiftOff, ref yr, scratch, quant, fused))
        {
            // A row too wide for the scratch: rare enough that the reference will do.
            Reference(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, mask, maskOff, maskMode);
        }
    }

    private static void LoadQuant(Span<int> quant, int b, bool valid, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff, int channel)
    {
        quant[3 * b] = valid && biasOff >= 0 ? Quant.ReadInt32(biases, biasOff + 4 * channel) : 0;
        quant[3 * b + 1] = valid ? Quant.ReadInt32(consts, multOff + 4 * channel) : 0;
        quant[3 * b + 2] = valid ? Quant.ReadInt32(consts, shiftOff + 4 * channel) : 0;
    }

    // ---- Pointwise: 1x1, stride 1, no padding. y (oc, P) = w (oc, ic) . (x (ic, P) - zp), P = H*W. ----

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Pointwise<TV, L>(in ConvParams p, int ic, int oc, int plane, ref byte x, ref byte w, byte[] biases,
        int biasOff, byte[] consts, int multOff, int shiftOff, int channel0, ref byte y, Span<int> scratch, Span<int> quant, in FusedMask mask)
        where TV : struct
        where L : struct, ILanes<TV>
    {
        int n = L.Count;
        // Weights of the block as int32, [ic][Block], zero for channels past the end.
        ref int wp = ref MemoryMarshal.GetReference(scratch);
        for (int o0 = 0; o0 < oc; o0 += Block)
        {
            int nb = Math.Min(Block, oc - o0);
            for (int b = 0; b < Block; b++)
            {
                int wsum = 0;
                for (int i = 0; i < ic; i++)
                {
                    int wv = b < nb ? (sbyte)Unsafe.Add(ref w, (o0 + b) * ic + i) : 0;
                    Unsafe.Add(ref wp, i * Block + b) = wv;
                    wsum += wv;
                }
                LoadQuant(quant, b, b < nb, biases, biasOff, consts, multOff, shiftOff, channel0 + o0 + b);
                // Folding -zp * sum(w) into the start value spares a subtraction per loaded vector.
                quant[3 * b] -= p.InputZeroPoint * wsum;
            }
            ref byte yb = ref Unsafe.Add(ref y, o0 * plane);
            int px = 0;
            for (; px + 2 * n <= plane; px += 2 * n)
            {
                PointwiseTile2<TV, L>(p, ic, plane, nb, ref Unsafe.Add(ref x, px), ref wp, quant, ref Unsafe.Add(ref yb, px), mask);
            }
            for (; px + n <= plane; px += n)
            {
                PointwiseTile1<TV, L>(p, ic, plane, nb, ref Unsafe.Add(ref x, px), ref wp, quant, ref Unsafe.Add(ref yb, px), mask);
            }
            if (px < plane)
            {
                if (plane >= n)
                {
                    // The last full vector: it rewrites some outputs with the values they already hold.
                    PointwiseTile1<TV, L>(p, ic, plane, nb, ref Unsafe.Add(ref x, plane - n), ref wp, quant, ref Unsafe.Add(ref yb, plane - n), mask);
                }
                else
                {
                    PointwiseScalar(p, ic, plane, nb, px, ref x, ref wp, quant, ref yb, mask);
                }
            }
        }
    }

    // Four channels by two vectors of pixels: eight accumulators, each loaded input feeds four of them.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PointwiseTile2<TV, L>(in ConvParams p, int ic, int plane, int nb, ref byte x, ref int wp, Span<int> quant, ref byte y, in FusedMask mask)
        where TV : struct
        where L : struct, ILanes<TV>
    {
        int n = L.Count;
        TV a0 = L.Splat(quant[0]), b0 = a0;
        TV a1 = L.Splat(quant[3]), b1 = a1;
        TV a2 = L.Splat(quant[6]), b2 = a2;
        TV a3 = L.Splat(quant[9]), b3 = a3;
        ref byte xi = ref x;
        ref int wi = ref wp;
        for (int i = 0; i < ic; i++)
        {
            TV xa = L.LoadInt8(ref xi, 0);
            TV xb = L.LoadInt8(ref xi, n);
            TV wv = L.Splat(wi);
            a0 = L.Add(a0, L.Multiply(xa, wv));
            b0 = L.Add(b0, L.Multiply(xb, wv));
            wv = L.Splat(Unsafe.Add(ref wi, 1));
            a1 = L.Add(a1, L.Multiply(xa, wv));
            b1 = L.Add(b1, L.Multiply(xb, wv));
            wv = L.Splat(Unsafe.Add(ref wi, 2));
            a2 = L.Add(a2, L.Multiply(xa, wv));
            b2 = L.Add(b2, L.Multiply(xb, wv));
            wv = L.Splat(Unsafe.Add(ref wi, 3));
            a3 = L.Add(a3, L.Multiply(xa, wv));
            b3 = L.Add(b3, L.Multiply(xb, wv));
            xi = ref Unsafe.Add(ref xi, plane);
            wi = ref Unsafe.Add(ref wi, Block);
        }
        StoreInt8<TV, L>(p, a0, quant, 0, ref y, 0, mask);
        StoreInt8<TV, L>(p, b0, quant, 0, ref y, n, mask);
        if (nb > 1)
        {
            StoreInt8<TV, L>(p, a1, quant, 1, ref y, plane, mask);
            StoreInt8<TV, L>(p, b1, quant, 1, ref y, plane + n, mask);
        }
        if (nb > 2)
        {
            StoreInt8<TV, L>(p, a2, quant, 2, ref y, 2 * plane, mask);
            StoreInt8<TV, L>(p, b2, quant, 2, ref y, 2 * plane + n, mask);
        }
        if (nb > 3)
        {
            StoreInt8<TV, L>(p, a3, quant, 3, ref y, 3 * plane, mask);
            StoreInt8<TV, L>(p, b3, quant, 3, ref y, 3 * plane + n, mask);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PointwiseTile1<TV, L>(in ConvParams p, int ic, int plane, int nb, ref byte x, ref int wp, Span<int> quant, ref byte y, in FusedMask mask)
        where TV : struct
        where L : struct, ILanes<TV>
    {
        TV a0 = L.Splat(quant[0]);
        TV a1 = L.Splat(quant[3]);
        TV a2 = L.Splat(quant[6]);
        TV a3 = L.Splat(quant[9]);
        ref byte xi = ref x;
        ref int wi = ref wp;
        for (int i = 0; i < ic; i++)
        {
            TV xa = L.LoadInt8(ref xi, 0);
            a0 = L.Add(a0, L.Multiply(xa, L.Splat(wi)));
            a1 = L.Add(a1, L.Multiply(xa, L.Splat(Unsafe.Add(ref wi, 1))));
            a2 = L.Add(a2, L.Multiply(xa, L.Splat(Unsafe.Add(ref wi, 2))));
            a3 = L.Add(a3, L.Multiply(xa, L.Splat(Unsafe.Add(ref wi, 3))));
            xi = ref Unsafe.Add(ref xi, plane);
            wi = ref Unsafe.Add(ref wi, Block);
        }
        StoreInt8<TV, L>(p, a0, quant, 0, ref y, 0, mask);
        if (nb > 1)
        {
            StoreInt8<TV, L>(p, a1, quant, 1, ref y, plane, mask);
        }
        if (nb > 2)
        {
            StoreInt8<TV, L>(p, a2, quant, 2, ref y, 2 * plane, mask);
        }
        if (nb > 3)
        {
            StoreInt8<TV, L>(p, a3, quant, 3, ref y, 3 * plane, mask);
        }
    }

    // Planes smaller than one vector (1x1, 2x2 ...).
    private static void PointwiseScalar(in ConvParams p, int ic, int plane, int nb, int px0, ref byte x, ref int wp, Span<int> quant, ref byte y, in FusedMask mask)
    {
        for (int px = px0; px < plane; px++)
        {
            for (int b = 0; b < nb; b++)
            {
                int acc = quant[3 * b];
                for (int i = 0; i < ic; i++)
                {
                    acc += Unsafe.Add(ref wp, i * Block + b) * (sbyte)Unsafe.Add(ref x, i * plane + px);
                }
                int v = p.OutputZeroPoint + Quant.MultiplyByQuantizedMultiplier(acc, quant[3 * b + 1], quant[3 * b + 2]);
                ref byte yAt = ref Unsafe.Add(ref y, b * plane + px);
                yAt = (byte)Math.Clamp(v, p.ActMin, p.ActMax);
                if (mask.Mode != 0 && FusedMask.Passes(mask.Mode, acc, v, p.ActMax))
                {
                    mask.Write(ref yAt, 1, 1);
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreInt8<TV, L>(in ConvParams p, TV acc, Span<int> quant, int b, ref byte y, int index, in FusedMask mask)
        where TV : struct
        where L : struct, ILanes<TV>
    {
        if (mask.Mode == 0)
        {
            L.StoreInt8(L.Requantize(acc, quant[3 * b + 1], quant[3 * b + 2], p.OutputZeroPoint, p.ActMin, p.ActMax), ref y, index);
        }
        else
        {
            TV v = L.Requantize(acc, quant[3 * b + 1], quant[3 * b + 2], p.OutputZeroPoint, p.ActMin, p.ActMax, mask.Mode, out uint bits);
            L.StoreInt8(v, ref y, index);
            mask.Write(ref Unsafe.Add(ref y, index), bits, L.Count);
        }
    }

    // ---- Spatial: any kernel, stride, padding, groups (dense convolutions take Conv2D.Dense.cs unless its tile does not fit). ----
    // Per block of four output channels and strip of output rows: accumulate one input channel at a
    // time into int32 rows (acc[b][r][ox]), reading the channel's padded, phase-split strip, then
    // requantize the rows. Returns false when one output row does not fit the scratch.

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static bool Spatial<TV, L>(in ConvParams p, ref byte x, ref byte w, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff,
        ref byte y, Span<int> scratch, Span<int> quant, in FusedMask mask)
        where TV : struct
        where L : struct, ILanes<TV>
    {
        int n = L.Count;
        int k = p.Kernel;
        int s = p.Stride;
        int kk = k * k;
        int icg = p.InC / p.Groups;
        int ocg = p.OutC / p.Groups;
        int owr = ConvStrip.RoundUp(p.OW, n);
        int phaseWidth = ConvStrip.PhaseWidth(p.OW, n, k, s);
        int rowStride = s * phaseWidth;
        // R rows of output need Block*R*owr accumulators and ((R-1)*s + k) strip rows, plus weights and tap offsets.
        long free = ScratchInts - (Block + 1) * (long)kk - (long)(k - s) * rowStride;
        long perRow = (long)Block * owr + (long)s * rowStride;
        if (free < perRow)
        {
            return false;
        }
        int rowsPerStrip = (int)Math.Min(free / perRow, p.OH);
        int accStride = rowsPerStrip * owr;
        Span<int> acc = scratch.Slice(0, Block * accStride);
        Span<int> strip = scratch.Slice(acc.Length, ((rowsPerStrip - 1) * s + k) * rowStride);
        Span<int> wk = scratch.Slice(acc.Length + strip.Length, Block * kk);
        Span<int> taps = scratch.Slice(acc.Length + strip.Length + wk.Length, kk);
        for (int ky = 0; ky < k; ky++)
        {
            for (int kx = 0; kx < k; kx++)
            {
                taps[ky * k + kx] = ky * rowStride + kx % s * phaseWidth + kx / s;
            }
        }
        ref int accr = ref MemoryMarshal.GetReference(acc);
        ref int stripr = ref MemoryMarshal.GetReference(strip);
        ref int wkr = ref MemoryMarshal.GetReference(wk);
        ref int tapr = ref MemoryMarshal.GetReference(taps);
        int plane = p.H * p.W;
        int oplane = p.OH * p.OW;
        for (int g = 0; g < p.Groups; g++)
        {
            for (int o0 = 0; o0 < ocg; o0 += Block)
            {
                int nb = Math.Min(Block, ocg - o0);
                int oc0 = g * ocg + o0;
                for (int b = 0; b < Block; b++)
                {
                    LoadQuant(quant, b, b < nb, biases, biasOff, consts, multOff, shiftOff, oc0 + b);
                }
                for (int oy0 = 0; oy0 < p.OH; oy0 += rowsPerStrip)
                {
                    int rows = Math.Min(rowsPerStrip, p.OH - oy0);
                    for (int b = 0; b < Block; b++)
                    {
                        acc.Slice(b * accStride, rows * owr).Fill(quant[3 * b]);
                    }
                    for (int ic = 0; ic < icg; ic++)
                    {
                        ConvStrip.Pack<TV, L>(ref Unsafe.Add(ref x, (g * icg + ic) * plane), p.H, p.W, p.Pad, s, p.InputZeroPoint,
                            oy0 * s, (rows - 1) * s + k, phaseWidth, strip);
                        for (int t = 0; t < kk; t++)
                        {
                            for (int b = 0; b < Block; b++)
                            {
                                wk[t * Block + b] = b < nb ? (sbyte)Unsafe.Add(ref w, ((oc0 + b) * icg + ic) * kk + t) : 0;
                            }
                        }
                        for (int r = 0; r < rows; r++)
                        {
                            SpatialRow<TV, L>(kk, owr, ref Unsafe.Add(ref stripr, r * s * rowStride), ref tapr, ref wkr,
                                ref Unsafe.Add(ref accr, r * owr), accStride);
                        }
                    }
                    for (int b = 0; b < nb; b++)
                    {
                        for (int r = 0; r < rows; r++)
                        {
                            RequantizeRow<TV, L>(p, ref Unsafe.Add(ref accr, b * accStride + r * owr), quant[3 * b + 1], quant[3 * b + 2],
                                ref Unsafe.Add(ref y, (oc0 + b) * oplane + (oy0 + r) * p.OW), mask);
                        }
                    }
                }
            }
        }
        return true;
    }

    // One output row of four channels: acc[b * accStride + ox] += sum over taps of strip[tap + ox] * w[tap][b].
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SpatialRow<TV, L>(int kk, int owr, ref int src, ref int taps, ref int wk, ref int acc, int accStride)
        where TV : struct
        where L : struct, ILanes<TV>
    {
        int n = L.Count;
        int ox = 0;
        for (; ox + 2 * n <= owr; ox += 2 * n)
        {
            TV a0 = L.Load(ref acc, ox), b0 = L.Load(ref acc, ox + n);
            TV a1 = L.Load(ref acc, accStride + ox), b1 = L.Load(ref acc, accStride + ox + n);
            TV a2 = L.Load(ref acc, 2 * accStride + ox), b2 = L.Load(ref acc, 2 * accStride + ox + n);
            TV a3 = L.Load(ref acc, 3 * accStride + ox), b3 = L.Load(ref acc, 3 * accStride + ox + n);
            ref int wt = ref wk;
            for (int t = 0; t < kk; t++)
            {
                int xi = Unsafe.Add(ref taps, t) + ox;
                TV xa = L.Load(ref src, xi);
                TV xb = L.Load(ref src, xi + n);
                TV wv = L.Splat(wt);
                a0 = L.Add(a0, L.Multiply(xa, wv));
                b0 = L.Add(b0, L.Multiply(xb, wv));
                wv = L.Splat(Unsafe.Add(ref wt, 1));
                a1 = L.Add(a1, L.Multiply(xa, wv));
                b1 = L.Add(b1, L.Multiply(xb, wv));
                wv = L.Splat(Unsafe.Add(ref wt, 2));
                a2 = L.Add(a2, L.Multiply(xa, wv));
                b2 = L.Add(b2, L.Multiply(xb, wv));
                wv = L.Splat(Unsafe.Add(ref wt, 3));
                a3 = L.Add(a3, L.Multiply(xa, wv));
                b3 = L.Add(b3, L.Multiply(xb, wv));
                wt = ref Unsafe.Add(ref wt, Block);
            }
            L.Store(a0, ref acc, ox);
            L.Store(b0, ref acc, ox + n);
            L.Store(a1, ref acc, accStride + ox);
            L.Store(b1, ref acc, accStride + ox + n);
            L.Store(a2, ref acc, 2 * accStride + ox);
            L.Store(b2, ref acc, 2 * accStride + ox + n);
            L.Store(a3, ref acc, 3 * accStride + ox);
            L.Store(b3, ref acc, 3 * accStride + ox + n);
        }
        if (ox < owr)
        {
            TV a0 = L.Load(ref acc, ox);
            TV a1 = L.Load(ref acc, accStride + ox);
            TV a2 = L.Load(ref acc, 2 * accStride + ox);
            TV a3 = L.Load(ref acc, 3 * accStride + ox);
            ref int wt = ref wk;
            for (int t = 0; t < kk; t++)
            {
                TV xa = L.Load(ref src, Unsafe.Add(ref taps, t) + ox);
                a0 = L.Add(a0, L.Multiply(xa, L.Splat(wt)));
                a1 = L.Add(a1, L.Multiply(xa, L.Splat(Unsafe.Add(ref wt, 1))));
                a2 = L.Add(a2, L.Multiply(xa, L.Splat(Unsafe.Add(ref wt, 2))));
                a3 = L.Add(a3, L.Multiply(xa, L.Splat(Unsafe.Add(ref wt, 3))));
                wt = ref Unsafe.Add(ref wt, Block);
            }
            L.Store(a0, ref acc, ox);
            L.Store(a1, ref acc, accStride + ox);
            L.Store(a2, ref acc, 2 * accStride + ox);
            L.Store(a3, ref acc, 3 * accStride + ox);
        }
    }

    // Requantizes one int32 row (padded to whole vectors) into ow int8 outputs.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RequantizeRow<TV, L>(in ConvParams p, ref int acc, int multiplier, int shift, ref byte y, in FusedMask mask)
        where TV : struct
        where L : struct, ILanes<TV>
    {
        int n = L.Count;
        int ox = 0;
        if (mask.Mode != 0)
        {
            for (; ox < p.OW; ox += n)
            {
                TV v = L.Requantize(L.Load(ref acc, ox), multiplier, shift, p.OutputZeroPoint, p.ActMin, p.ActMax, mask.Mode, out uint bits);
                int count = Math.Min(n, p.OW - ox);
                if (count == n)
                {
                    L.StoreInt8(v, ref y, ox);
                }
                else
                {
                    L.StoreInt8Partial(v, ref y, ox, count);
                }
                mask.Write(ref Unsafe.Add(ref y, ox), bits, count);
            }
            return;
        }
        for (; ox + n <= p.OW; ox += n)
        {
            L.StoreInt8(L.Requantize(L.Load(ref acc, ox), multiplier, shift, p.OutputZeroPoint, p.ActMin, p.ActMax), ref y, ox);
        }
        if (ox < p.OW)
        {
            L.StoreInt8Partial(L.Requantize(L.Load(ref acc, ox), multiplier, shift, p.OutputZeroPoint, p.ActMin, p.ActMax), ref y, ox, p.OW - ox);
        }
    }
}
