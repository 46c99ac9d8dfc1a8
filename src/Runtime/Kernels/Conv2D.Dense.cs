using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace TinyTrain.Runtime.Kernels;

// The fast path of dense convolutions other than the plain pointwise one (groups 1; any kernel, stride, padding):
// im2col, then the pointwise path's register blocking with int16 pairs of taps.
//   cols (K2, pp) int32, K2 = ceil(K / 2), K = InC*k*k taps in w's order (ic, ky, kx): lane px of row j holds
//   the int16 pair (x - zp under tap 2j, x - zp under tap 2j+1) of pixel px of the tile, 0 at padding;
//   wk (Block, K2) int32: the same pairs of one block of output channels' weights, 0 past K.
// One MultiplyAddPairs per loaded vector and channel then adds two taps' products: exactly the reference's int32 sum.
// A tile is whole output rows, or a chunk of one row when a row does not fit; either way its outputs are
// contiguous in each channel of y. Scratch is one bounded stackalloc; a layer whose smallest tile does not fit
// it (thousands of taps, or rows of thousands of pixels) takes the strip path instead.
public static partial class Conv2D
{
    // Stack scratch of the dense path, in ints (48 KB): weights of a block, one input channel's strip, the tile's cols.
    private const int DenseScratchInts = 12288;

    /// <summary>Runs the dense path; false (having written nothing) when its smallest tile does not fit the scratch.</summary>
    private static bool Dense(in ConvParams p, byte[] x, int xOff, byte[] w, int wOff, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff,
        byte[] y, int yOff, byte[]? mask, int maskOff, int maskMode)
    {
        // Lanes run over the flattened pixels of a tile, so only a plane smaller than a Vector256 would waste them.
        if (SimdWidth.Wide && p.OH * p.OW > Vector128<int>.Count)
        {
            return DenseCore<Vector256<int>, Lanes256>(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, mask, maskOff, maskMode);
        }
        return DenseCore<Vector128<int>, Lanes128>(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, mask, maskOff, maskMode);
    }

    [SkipLocalsInit]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static bool DenseCore<TV, L>(in ConvParams p, byte[] x, int xOff, byte[] w, int wOff, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff,
        byte[] y, int yOff, byte[]? mask, int maskOff, int maskMode)
        where TV : struct
        where L : struct, ILanes<TV>
    {
        int n = L.Count;
        int k = p.Kernel;
        int s = p.Stride;
        int taps = p.InC * k * k;
        int k2 = (taps + 1) / 2;
        int phaseWidth = ConvStrip.PhaseWidth(p.OW, n, k, s);
        int rowStride = s * phaseWidth;
        if (!DenseTiling(p, n, k2, rowStride, out int tileRows, out int tileWidth))
        {
            return false;
        }
        Span<int> scratch = stackalloc int[DenseScratchInts];
        Span<int> quant = stackalloc int[3 * Block];
        var requant = new BlockRequant<TV>();
        Span<int> wk = scratch.Slice(0, Block * k2);
        Span<int> strip = scratch.Slice(wk.Length, ((tileRows - 1) * s + k) * rowStride);
        ref int cols = ref scratch[wk.Length + strip.Length];
        ref byte xr = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(x), xOff);
        ref byte wr = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(w), wOff);
        ref byte yr = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(y), yOff);
        var fused = new FusedMask(mask, maskOff, maskMode, y, yOff, p.OutC * p.OH * p.OW);
        int oplane = p.OH * p.OW;
        for (int oy0 = 0; oy0 < p.OH; oy0 += tileRows)
        {
            int rows = Math.Min(tileRows, p.OH - oy0);
            for (int ox0 = 0; ox0 < p.OW; ox0 += tileWidth)
            {
                int width = Math.Min(tileWidth, p.OW - ox0);
                int count = rows * width;
                int pitch = ColsPitch(rows, width, n);
                Unfold<TV, L>(p, ref xr, oy0, rows, ox0, width, pitch, phaseWidth, strip, ref cols);
                for (int o0 = 0; o0 < p.OutC; o0 += Block)
                {
                    int nb = Math.Min(Block, p.OutC - o0);
                    PackWeightPairs(ref Unsafe.Add(ref wr, o0 * taps), taps, k2, nb, wk);
                    for (int b = 0; b < Block; b++)
                    {
                        LoadQuant(quant, b, b < nb, biases, biasOff, consts, multOff, shiftOff, o0 + b);
                        requant[b] = L.Prepare(quant[3 * b + 1], quant[3 * b + 2], p.OutputZeroPoint, p.ActMin, p.ActMax);
                    }
                    DenseBlock<TV, L>(k2, pitch, count, nb, ref cols, ref MemoryMarshal.GetReference(wk), quant, requant,
                        ref Unsafe.Add(ref yr, o0 * oplane + oy0 * p.OW + ox0), oplane, fused);
                }
            }
        }
        return true;
    }

    // Ints between rows of cols: whole vectors over the tile's pixels, and room for Unfold's last vector of its last row.
    private static int ColsPitch(int rows, int width, int lanes)
    {
        return ConvStrip.RoundUp((rows - 1) * width + ConvStrip.RoundUp(width, lanes), lanes);
    }

    // The largest tile that fits the scratch: whole output rows (balanced over the plane), else a chunk of one row
    // in whole vectors (so that Unfold's reads stay within the strip's phases).
    private static bool DenseTiling(in ConvParams p, int lanes, int k2, int rowStride, out int tileRows, out int tileWidth)
    {
        int k = p.Kernel;
        int s = p.Stride;
        long free = DenseScratchInts - (long)Block * k2;
        tileWidth = p.OW;
        for (tileRows = p.OH; tileRows > 0; tileRows--)
        {
            long need = (long)((tileRows - 1) * s + k) * rowStride + (long)k2 * ColsPitch(tileRows, p.OW, lanes);
            if (need <= free)
            {
                int tiles = (p.OH + tileRows - 1) / tileRows;
                tileRows = (p.OH + tiles - 1) / tiles;
                return true;
            }
        }
        tileRows = 1;
        long room = (free - (long)k * rowStride) / k2;
        tileWidth = (int)Math.Min(room / lanes * lanes, int.MaxValue);
        return tileWidth > 0;
    }

    // Fills cols for output rows [oy0, oy0 + rows) x columns [ox0, ox0 + width): each input channel's padded,
    // phase-split strip, then per tap a run of width ints from it per output row. Two taps of a channel make one
    // pass; a pair that spans two channels is written in two: the even tap writes whole lanes (the high half is
    // garbage until the odd tap replaces it; after an odd K's last tap the weight there is 0), then the odd tap
    // keeps the low half. Each row's last vector spills into the next row's first lanes, which that row then
    // rewrites, so the rows go in order.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Unfold<TV, L>(in ConvParams p, ref byte x, int oy0, int rows, int ox0, int width, int pitch, int phaseWidth, Span<int> strip, ref int cols)
        where TV : struct
        where L : struct, ILanes<TV>
    {
        int k = p.Kernel;
        int kk = k * k;
        int s = p.Stride;
        int rowStride = s * phaseWidth;
        int plane = p.H * p.W;
        ref int sr = ref MemoryMarshal.GetReference(strip);
        int t = 0;
        for (int ic = 0; ic < p.InC; ic++)
        {
            ConvStrip.Pack<TV, L>(ref Unsafe.Add(ref x, ic * plane), p.H, p.W, p.Pad, s, p.InputZeroPoint, oy0 * s, (rows - 1) * s + k, phaseWidth, strip);
            for (int tap = 0; tap < kk; tap++, t++)
            {
                ref int src = ref Unsafe.Add(ref sr, TapOffset(tap, k, s, phaseWidth) + ox0);
                ref int dst = ref Unsafe.Add(ref cols, (t >> 1) * pitch);
                // 0: the tap alone in the low half; 1: alone in the high half; 2: with the next tap.
                int kind = (t & 1) == 1 ? 1 : tap + 1 < kk ? 2 : 0;
                ref int next = ref Unsafe.Add(ref sr, kind == 2 ? TapOffset(tap + 1, k, s, phaseWidth) + ox0 : 0);
                UnfoldTap<TV, L>(kind, rows, width, s * rowStride, ref src, ref next, ref dst);
                if (kind == 2)
                {
                    tap++;
                    t++;
                }
            }
        }
    }

    // Where tap (ky, kx) of output column 0 reads in a strip.
    private static int TapOffset(int tap, int k, int s, int phaseWidth)
    {
        int ky = tap / k, kx = tap % k;
        return ky * s * phaseWidth + kx % s * phaseWidth + kx / s;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void UnfoldTap<TV, L>(int kind, int rows, int width, int srcRowStep, ref int src, ref int next, ref int dst)
        where TV : struct
        where L : struct, ILanes<TV>
    {
        int n = L.Count;
        TV low = L.Splat(0xFFFF);
        for (int r = 0; r < rows; r++)
        {
            for (int j = 0; j < width; j += n)
            {
                TV v = L.Load(ref src, j);
                if (kind == 2)
                {
                    v = L.Or(L.And(v, low), L.ShiftLeft(L.Load(ref next, j), 16));
                }
                else if (kind == 1)
                {
                    v = L.Or(L.And(L.Load(ref dst, j), low), L.ShiftLeft(v, 16));
                }
                L.Store(v, ref dst, j);
            }
            src = ref Unsafe.Add(ref src, srcRowStep);
            next = ref Unsafe.Add(ref next, srcRowStep);
            dst = ref Unsafe.Add(ref dst, width);
        }
    }

    // wk (Block, K2): the int16 weights of output channels [0, nb) from w (nb, taps), pairs read as int32; 0 past them.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackWeightPairs(ref byte w, int taps, int k2, int nb, Span<int> wk)
    {
        Span<short> halves = MemoryMarshal.Cast<int, short>(wk);
        for (int b = 0; b < Block; b++)
        {
            Span<short> row = halves.Slice(2 * k2 * b, 2 * k2);
            if (b >= nb)
            {
                row.Clear();
                continue;
            }
            ref byte src = ref Unsafe.Add(ref w, b * taps);
            ref short dst = ref MemoryMarshal.GetReference(row);
            int t = 0;
            for (; t + Vector128<sbyte>.Count <= taps; t += Vector128<sbyte>.Count)
            {
                (Vector128<short> lo, Vector128<short> hi) = Vector128.Widen(Vector128.LoadUnsafe(ref Unsafe.Add(ref src, t)).AsSByte());
                lo.StoreUnsafe(ref Unsafe.Add(ref dst, t));
                hi.StoreUnsafe(ref Unsafe.Add(ref dst, t + Vector128<short>.Count));
            }
            for (; t < 2 * k2; t++)
            {
                Unsafe.Add(ref dst, t) = t < taps ? (sbyte)Unsafe.Add(ref src, t) : (short)0;
            }
        }
    }

    // The requantization of a block's channels.
    [InlineArray(Block)]
    private struct BlockRequant<TV>
        where TV : struct
    {
        private Requant<TV> _channel;
    }

    // One block of output channels over the tile's count pixels: two vectors of pixels at a time, then one.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DenseBlock<TV, L>(int k2, int pitch, int count, int nb, ref int cols, ref int wk, Span<int> quant, in BlockRequant<TV> requant,
        ref byte y, int oplane, in FusedMask mask)
        where TV : struct
        where L : struct, ILanes<TV>
    {
        int n = L.Count;
        int px = 0;
        for (; px + n < count; px += 2 * n)
        {
            DenseTile2<TV, L>(k2, pitch, nb, count - px, ref Unsafe.Add(ref cols, px), ref wk, quant, requant, ref Unsafe.Add(ref y, px), oplane, mask);
        }
        if (px < count)
        {
            DenseTile1<TV, L>(k2, pitch, nb, count - px, ref Unsafe.Add(ref cols, px), ref wk, quant, requant, ref Unsafe.Add(ref y, px), oplane, mask);
        }
    }

    // Four channels by two vectors of pixels; left (> n) is how many of the pixels are the tile's.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DenseTile2<TV, L>(int k2, int pitch, int nb, int left, ref int cols, ref int wk, Span<int> quant, in BlockRequant<TV> requant,
        ref byte y, int oplane, in FusedMask mask)
        where TV : struct
        where L : struct, ILanes<TV>
    {
        int n = L.Count;
        TV a0 = L.Splat(quant[0]), b0 = a0;
        TV a1 = L.Splat(quant[3]), b1 = a1;
        TV a2 = L.Splat(quant[6]), b2 = a2;
        TV a3 = L.Splat(quant[9]), b3 = a3;
        ref int w0 = ref wk;
        ref int w1 = ref Unsafe.Add(ref wk, k2);
        ref int w2 = ref Unsafe.Add(ref wk, 2 * k2);
        ref int w3 = ref Unsafe.Add(ref wk, 3 * k2);
        ref int xi = ref cols;
        for (int j = 0; j < k2; j++)
        {
            TV xa = L.Load(ref xi, 0);
            TV xb = L.Load(ref xi, n);
            TV wv = L.Splat(Unsafe.Add(ref w0, j));
            a0 = L.MultiplyAddPairs(a0, xa, wv);
            b0 = L.MultiplyAddPairs(b0, xb, wv);
            wv = L.Splat(Unsafe.Add(ref w1, j));
            a1 = L.MultiplyAddPairs(a1, xa, wv);
            b1 = L.MultiplyAddPairs(b1, xb, wv);
            wv = L.Splat(Unsafe.Add(ref w2, j));
            a2 = L.MultiplyAddPairs(a2, xa, wv);
            b2 = L.MultiplyAddPairs(b2, xb, wv);
            wv = L.Splat(Unsafe.Add(ref w3, j));
            a3 = L.MultiplyAddPairs(a3, xa, wv);
            b3 = L.MultiplyAddPairs(b3, xb, wv);
            xi = ref Unsafe.Add(ref xi, pitch);
        }
        int rest = Math.Min(n, left - n);
        StoreDense<TV, L>(a0, requant[0], ref y, 0, n, mask);
        StoreDense<TV, L>(b0, requant[0], ref y, n, rest, mask);
        if (nb > 1)
        {
            StoreDense<TV, L>(a1, requant[1], ref y, oplane, n, mask);
            StoreDense<TV, L>(b1, requant[1], ref y, oplane + n, rest, mask);
        }
        if (nb > 2)
        {
            StoreDense<TV, L>(a2, requant[2], ref y, 2 * oplane, n, mask);
            StoreDense<TV, L>(b2, requant[2], ref y, 2 * oplane + n, rest, mask);
        }
        if (nb > 3)
        {
            StoreDense<TV, L>(a3, requant[3], ref y, 3 * oplane, n, mask);
            StoreDense<TV, L>(b3, requant[3], ref y, 3 * oplane + n, rest, mask);
        }
    }

    // Four channels by one vector of pixels (left of them the tile's): even and odd pairs of taps in separate
    // accumulators, so that the multiply-adds do not wait on each other.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DenseTile1<TV, L>(int k2, int pitch, int nb, int left, ref int cols, ref int wk, Span<int> quant, in BlockRequant<TV> requant,
        ref byte y, int oplane, in FusedMask mask)
        where TV : struct
        where L : struct, ILanes<TV>
    {
        TV a0 = L.Splat(quant[0]), b0 = L.Splat(0);
        TV a1 = L.Splat(quant[3]), b1 = b0;
        TV a2 = L.Splat(quant[6]), b2 = b0;
        TV a3 = L.Splat(quant[9]), b3 = b0;
        ref int w0 = ref wk;
        ref int w1 = ref Unsafe.Add(ref wk, k2);
        ref int w2 = ref Unsafe.Add(ref wk, 2 * k2);
        ref int w3 = ref Unsafe.Add(ref wk, 3 * k2);
        ref int xi = ref cols;
        int j = 0;
        for (; j + 1 < k2; j += 2)
        {
            TV xa = L.Load(ref xi, 0);
            TV xb = L.Load(ref xi, pitch);
            a0 = L.MultiplyAddPairs(a0, xa, L.Splat(Unsafe.Add(ref w0, j)));
            b0 = L.MultiplyAddPairs(b0, xb, L.Splat(Unsafe.Add(ref w0, j + 1)));
            a1 = L.MultiplyAddPairs(a1, xa, L.Splat(Unsafe.Add(ref w1, j)));
            b1 = L.MultiplyAddPairs(b1, xb, L.Splat(Unsafe.Add(ref w1, j + 1)));
            a2 = L.MultiplyAddPairs(a2, xa, L.Splat(Unsafe.Add(ref w2, j)));
            b2 = L.MultiplyAddPairs(b2, xb, L.Splat(Unsafe.Add(ref w2, j + 1)));
            a3 = L.MultiplyAddPairs(a3, xa, L.Splat(Unsafe.Add(ref w3, j)));
            b3 = L.MultiplyAddPairs(b3, xb, L.Splat(Unsafe.Add(ref w3, j + 1)));
            xi = ref Unsafe.Add(ref xi, 2 * pitch);
        }
        if (j < k2)
        {
            TV xa = L.Load(ref xi, 0);
            a0 = L.MultiplyAddPairs(a0, xa, L.Splat(Unsafe.Add(ref w0, j)));
            a1 = L.MultiplyAddPairs(a1, xa, L.Splat(Unsafe.Add(ref w1, j)));
            a2 = L.MultiplyAddPairs(a2, xa, L.Splat(Unsafe.Add(ref w2, j)));
            a3 = L.MultiplyAddPairs(a3, xa, L.Splat(Unsafe.Add(ref w3, j)));
        }
        int rest = Math.Min(L.Count, left);
        StoreDense<TV, L>(L.Add(a0, b0), requant[0], ref y, 0, rest, mask);
        if (nb > 1)
        {
            StoreDense<TV, L>(L.Add(a1, b1), requant[1], ref y, oplane, rest, mask);
        }
        if (nb > 2)
        {
            StoreDense<TV, L>(L.Add(a2, b2), requant[2], ref y, 2 * oplane, rest, mask);
        }
        if (nb > 3)
        {
            StoreDense<TV, L>(L.Add(a3, b3), requant[3], ref y, 3 * oplane, rest, mask);
        }
    }

    // Requantizes acc and stores its first count (1 to Count) lanes, and their mask bits when asked for.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreDense<TV, L>(TV acc, in Requant<TV> q, ref byte y, int index, int count, in FusedMask mask)
        where TV : struct
        where L : struct, ILanes<TV>
    {
        uint bits = 0;
        TV v = mask.Mode == 0 ? L.Requantize(acc, q) : L.Requantize(acc, q, mask.Mode, out bits);
        if (count == L.Count)
        {
            L.StoreInt8(v, ref y, index);
        }
        else
        {
            L.StoreInt8Partial(v, ref y, index, count);
        }
        if (mask.Mode != 0)
        {
            mask.Write(ref Unsafe.Add(ref y, index), bits, count);
        }
    }
}
