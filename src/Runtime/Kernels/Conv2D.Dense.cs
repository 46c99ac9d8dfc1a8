using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TinyTrain.Runtime.Kernels;

// The fast path of dense convolutions (groups 1; any kernel, stride, padding; plain pointwise ones per PointwiseTakesDense):
// im2col, then the pointwise path's register blocking, with several taps in each int32 lane.
//   K = InC*k*k taps in w's order (ic, ky, kx); G taps share a lane, KL = ceil(K / G) lane rows.
//   cols (KL, pitch) int32: lane px of row j holds taps G*j .. G*j+G-1 of pixel px of the tile;
//   wk (Block, KL) int32: the same taps of one block of output channels' weights, 0 past K.
// Two packings (ITapPacking), each exact in int32 like the reference's sum:
//   Int16Pairs (G 2): int16 x - zp (0 at padding) times int16 w, one pmaddwd per lane (MultiplyAddPairs);
//   UInt8Quads (G 4): uint8 x + 128 (zp + 128 at padding, so that x - zp is 0 there) times int8 w, one AVX-VNNI
//   vpdpbusd per lane (MultiplyAddQuads), the start value taking (zp + 128) * sum(w) off: sum (x + 128 - zp - 128) * w.
// A tile is whole output rows, or a chunk of one row when a row does not fit; either way its outputs are
// contiguous in each channel of y. Scratch is one bounded stackalloc; a layer whose smallest tile does not fit
// it (thousands of taps, or rows of thousands of pixels) takes the strip path instead.
public static partial class Conv2D
{
    // Stack scratch of the dense path, in ints (48 KB): weights of a block, one input channel's strip, the tile's cols.
    private const int DenseScratchInts = 12288;

    /// <summary>
    /// Whether the dense path packs four uint8 taps per lane (where AVX-VNNI multiplies them) rather than two int16 ones.
    /// Both give the same bytes; tests switch it to cover the pairs on machines that have VNNI.
    /// </summary>
    internal static bool DenseQuads { get; set; } = AvxVnni.IsSupported;

    /// <summary>Whether dense pointwise convolutions may take the dense path (PointwiseTakesDense); tests switch it off to cover the pointwise path.</summary>
    internal static bool DensePointwise { get; set; } = true;

    // A plain pointwise conv (1x1, stride 1, no padding, groups 1) takes the dense path unless it has fewer than 4
    // input channels: from 4 up the packed multiply-adds beat the pointwise path's (1.3-13x on mbv2's pointwise
    // shapes, ties on 1x1 planes of a few channels); below, most of each lane's taps would be padding.
    private static bool PointwiseTakesDense(in ConvParams p)
    {
        return DensePointwise && p.InC >= 4;
    }

    /// <summary>Runs the dense path; false (having written nothing) when its smallest tile does not fit the scratch.</summary>
    private static bool Dense(in ConvParams p, byte[] x, int xOff, byte[] w, int wOff, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff,
        byte[] y, int yOff, byte[]? mask, int maskOff, int maskMode)
    {
        // Lanes run over the flattened pixels of a tile, so only a plane smaller than a Vector256 would waste them.
        bool wide = SimdWidth.Wide && p.OH * p.OW > Vector128<int>.Count;
        if (p.Kernel == 1 && p.Stride == 1 && p.Pad == 0)
        {
            return (wide, DenseQuads) switch
            {
                (true, true) => DensePointwiseCore<Vector256<int>, Lanes256, UInt8Quads>(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, mask, maskOff, maskMode),
                (true, false) => DensePointwiseCore<Vector256<int>, Lanes256, Int16Pairs>(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, mask, maskOff, maskMode),
                (false, true) => DensePointwiseCore<Vector128<int>, Lanes128, UInt8Quads>(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, mask, maskOff, maskMode),
                (false, false) => DensePointwiseCore<Vector128<int>, Lanes128, Int16Pairs>(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, mask, maskOff, maskMode),
            };
        }
        return (wide, DenseQuads) switch
        {
            (true, true) => DenseCore<Vector256<int>, Lanes256, UInt8Quads>(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, mask, maskOff, maskMode),
            (true, false) => DenseCore<Vector256<int>, Lanes256, Int16Pairs>(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, mask, maskOff, maskMode),
            (false, true) => DenseCore<Vector128<int>, Lanes128, UInt8Quads>(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, mask, maskOff, maskMode),
            (false, false) => DenseCore<Vector128<int>, Lanes128, Int16Pairs>(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, mask, maskOff, maskMode),
        };
    }

    /// <summary>How taps share an int32 lane of cols and wk, and the multiply-add that consumes them.</summary>
    private interface ITapPacking
    {
        static abstract int TapsPerLane { get; }

        static abstract TV MultiplyAdd<TV, L>(TV acc, TV x, TV w)
            where TV : struct
            where L : struct, ILanes<TV>;
    }

    private struct Int16Pairs : ITapPacking
    {
        public static int TapsPerLane => 2;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TV MultiplyAdd<TV, L>(TV acc, TV x, TV w)
            where TV : struct
            where L : struct, ILanes<TV> => L.MultiplyAddPairs(acc, x, w);
    }

    private struct UInt8Quads : ITapPacking
    {
        public static int TapsPerLane => 4;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TV MultiplyAdd<TV, L>(TV acc, TV x, TV w)
            where TV : struct
            where L : struct, ILanes<TV> => L.MultiplyAddQuads(acc, x, w);
    }

    [SkipLocalsInit]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static bool DenseCore<TV, L, D>(in ConvParams p, byte[] x, int xOff, byte[] w, int wOff, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff,
        byte[] y, int yOff, byte[]? mask, int maskOff, int maskMode)
        where TV : struct
        where L : struct, ILanes<TV>
        where D : struct, ITapPacking
    {
        int n = L.Count;
        int k = p.Kernel;
        int s = p.Stride;
        int taps = p.InC * k * k;
        int kl = (taps + D.TapsPerLane - 1) / D.TapsPerLane;
        int phaseWidth = ConvStrip.PhaseWidth(p.OW, n, k, s);
        int rowStride = s * phaseWidth;
        if (!DenseTiling(p, n, kl, rowStride, out int tileRows, out int tileWidth))
        {
            return false;
        }
        Span<int> scratch = stackalloc int[DenseScratchInts];
        Span<int> quant = stackalloc int[3 * Block];
        var requant = new BlockRequant<TV>();
        Span<int> wk = scratch.Slice(0, Block * kl);
        Span<int> tapOffsets = scratch.Slice(wk.Length, k * k);
        Span<int> strip = scratch.Slice(wk.Length + tapOffsets.Length, ((tileRows - 1) * s + k) * rowStride);
        ref int cols = ref scratch[wk.Length + tapOffsets.Length + strip.Length];
        for (int tap = 0; tap < k * k; tap++)
        {
            // Where tap (ky, kx) of output column 0 reads in a strip.
            int ky = tap / k, kx = tap % k;
            tapOffsets[tap] = (ky * s + kx % s) * phaseWidth + kx / s;
        }
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
                Unfold<TV, L, D>(p, ref xr, oy0, rows, ox0, width, pitch, phaseWidth, strip, tapOffsets, ref cols);
                for (int o0 = 0; o0 < p.OutC; o0 += Block)
                {
                    int nb = Math.Min(Block, p.OutC - o0);
                    for (int b = 0; b < Block; b++)
                    {
                        int wsum = PackWeights<D>(ref Unsafe.Add(ref wr, b < nb ? (o0 + b) * taps : 0), b < nb ? taps : 0, wk.Slice(b * kl, kl));
                        LoadQuant(quant, b, b < nb, biases, biasOff, consts, multOff, shiftOff, o0 + b);
                        if (D.TapsPerLane == 4)
                        {
                            quant[3 * b] -= (p.InputZeroPoint + 128) * wsum;
                        }
                        requant[b] = L.Prepare(quant[3 * b + 1], quant[3 * b + 2], p.OutputZeroPoint, p.ActMin, p.ActMax);
                    }
                    DenseBlock<TV, L, D>(kl, pitch, count, nb, ref cols, ref MemoryMarshal.GetReference(wk), quant, requant,
                        ref Unsafe.Add(ref yr, o0 * oplane + oy0 * p.OW + ox0), oplane, fused);
                }
            }
        }
        return true;
    }

    // Pointwise (1x1, stride 1, no padding): the plane's pixels are contiguous, so a tile is a run of them and
    // cols come straight from x's bytes (UnfoldPointwise), no strip.
    [SkipLocalsInit]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static bool DensePointwiseCore<TV, L, D>(in ConvParams p, byte[] x, int xOff, byte[] w, int wOff, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff,
        byte[] y, int yOff, byte[]? mask, int maskOff, int maskMode)
        where TV : struct
        where L : struct, ILanes<TV>
        where D : struct, ITapPacking
    {
        int n = L.Count;
        int taps = p.InC;
        int kl = (taps + D.TapsPerLane - 1) / D.TapsPerLane;
        int plane = p.H * p.W;
        // The longest run in whole vectors that fits beside the weights, balanced over the plane.
        long room = (DenseScratchInts - (long)Block * kl) / kl / n * n;
        if (room <= 0)
        {
            return false;
        }
        int tiles = (int)((plane + room - 1) / room);
        int tileCount = ConvStrip.RoundUp((plane + tiles - 1) / tiles, n);
        Span<int> scratch = stackalloc int[DenseScratchInts];
        Span<int> quant = stackalloc int[3 * Block];
        var requant = new BlockRequant<TV>();
        Span<int> wk = scratch.Slice(0, Block * kl);
        ref int cols = ref scratch[wk.Length];
        ref byte xr = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(x), xOff);
        ref byte wr = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(w), wOff);
        ref byte yr = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(y), yOff);
        var fused = new FusedMask(mask, maskOff, maskMode, y, yOff, p.OutC * plane);
        for (int px0 = 0; px0 < plane; px0 += tileCount)
        {
            int count = Math.Min(tileCount, plane - px0);
            int pitch = ConvStrip.RoundUp(count, n);
            UnfoldPointwise<TV, L, D>(p.InC, plane, p.InputZeroPoint, ref Unsafe.Add(ref xr, px0), count, pitch, ref cols);
            for (int o0 = 0; o0 < p.OutC; o0 += Block)
            {
                int nb = Math.Min(Block, p.OutC - o0);
                for (int b = 0; b < Block; b++)
                {
                    int wsum = PackWeights<D>(ref Unsafe.Add(ref wr, b < nb ? (o0 + b) * taps : 0), b < nb ? taps : 0, wk.Slice(b * kl, kl));
                    LoadQuant(quant, b, b < nb, biases, biasOff, consts, multOff, shiftOff, o0 + b);
                    if (D.TapsPerLane == 4)
                    {
                        quant[3 * b] -= (p.InputZeroPoint + 128) * wsum;
                    }
                    requant[b] = L.Prepare(quant[3 * b + 1], quant[3 * b + 2], p.OutputZeroPoint, p.ActMin, p.ActMax);
                }
                DenseBlock<TV, L, D>(kl, pitch, count, nb, ref cols, ref MemoryMarshal.GetReference(wk), quant, requant,
                    ref Unsafe.Add(ref yr, o0 * plane + px0), plane, fused);
            }
        }
        return true;
    }

    // cols for count pixels of every channel of x (channel stride plane): lane row j packs channels G*j .. G*j+G-1
    // (the last channel again past InC: its weights there are 0), as x + 128 bytes (quads) or x - zp int16 (pairs).
    // Whole vectors where they stay within the run, then the last lanes one by one (0 past count), so that no
    // read passes the end of x.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void UnfoldPointwise<TV, L, D>(int inC, int plane, int zeroPoint, ref byte x, int count, int pitch, ref int cols)
        where TV : struct
        where L : struct, ILanes<TV>
        where D : struct, ITapPacking
    {
        int n = L.Count;
        int g = D.TapsPerLane;
        int bits = 32 / g;
        int kl = (inC + g - 1) / g;
        int offset = g == 2 ? zeroPoint : -128;
        TV off = L.Splat(offset);
        TV field = L.Splat((1 << bits) - 1);
        int whole = count / n * n;
        for (int j = 0; j < kl; j++)
        {
            int c0 = g * j;
            ref byte x0 = ref Unsafe.Add(ref x, c0 * plane);
            ref byte x1 = ref Unsafe.Add(ref x, Math.Min(c0 + 1, inC - 1) * plane);
            ref int dst = ref Unsafe.Add(ref cols, j * pitch);
            if (g == 2)
            {
                for (int px = 0; px < whole; px += n)
                {
                    TV a = L.And(L.Subtract(L.LoadInt8(ref x0, px), off), field);
                    TV b = L.ShiftLeft(L.Subtract(L.LoadInt8(ref x1, px), off), 16);
                    L.Store(L.Or(a, b), ref dst, px);
                }
                for (int px = whole; px < pitch; px++)
                {
                    Unsafe.Add(ref dst, px) = px < count
                        ? (((sbyte)Unsafe.Add(ref x0, px) - offset) & 0xFFFF) | (((sbyte)Unsafe.Add(ref x1, px) - offset) << 16)
                        : 0;
                }
            }
            else
            {
                ref byte x2 = ref Unsafe.Add(ref x, Math.Min(c0 + 2, inC - 1) * plane);
                ref byte x3 = ref Unsafe.Add(ref x, Math.Min(c0 + 3, inC - 1) * plane);
                for (int px = 0; px < whole; px += n)
                {
                    // x + 128 is 0 .. 255: no masking.
                    TV v = L.Subtract(L.LoadInt8(ref x0, px), off);
                    v = L.Or(v, L.ShiftLeft(L.Subtract(L.LoadInt8(ref x1, px), off), 8));
                    v = L.Or(v, L.ShiftLeft(L.Subtract(L.LoadInt8(ref x2, px), off), 16));
                    v = L.Or(v, L.ShiftLeft(L.Subtract(L.LoadInt8(ref x3, px), off), 24));
                    L.Store(v, ref dst, px);
                }
                for (int px = whole; px < pitch; px++)
                {
                    Unsafe.Add(ref dst, px) = px < count
                        ? (Unsafe.Add(ref x0, px) ^ 0x80) | (Unsafe.Add(ref x1, px) ^ 0x80) << 8 | (Unsafe.Add(ref x2, px) ^ 0x80) << 16 | (Unsafe.Add(ref x3, px) ^ 0x80) << 24
                        : 0;
                }
            }
        }
    }

    // Ints between rows of cols: whole vectors over the tile's pixels, and room for Unfold's last vector of its last row.
    private static int ColsPitch(int rows, int width, int lanes)
    {
        return ConvStrip.RoundUp((rows - 1) * width + ConvStrip.RoundUp(width, lanes), lanes);
    }

    // The largest tile that fits the scratch: whole output rows (balanced over the plane), else a chunk of one row
    // in whole vectors (so that Unfold's reads stay within the strip's phases).
    private static bool DenseTiling(in ConvParams p, int lanes, int kl, int rowStride, out int tileRows, out int tileWidth)
    {
        int k = p.Kernel;
        int s = p.Stride;
        long free = DenseScratchInts - (long)Block * kl - (long)k * k;
        tileWidth = p.OW;
        for (tileRows = p.OH; tileRows > 0; tileRows--)
        {
            long need = (long)((tileRows - 1) * s + k) * rowStride + (long)kl * ColsPitch(tileRows, p.OW, lanes);
            if (need <= free)
            {
                int tiles = (p.OH + tileRows - 1) / tileRows;
                tileRows = (p.OH + tiles - 1) / tiles;
                return true;
            }
        }
        tileRows = 1;
        long room = (free - (long)k * rowStride) / kl;
        tileWidth = (int)Math.Min(room / lanes * lanes, int.MaxValue);
        return tileWidth > 0;
    }

    // Fills cols for output rows [oy0, oy0 + rows) x columns [ox0, ox0 + width): each input channel's padded,
    // phase-split strip (as the packing wants its values), then per run of taps of the channel that share a lane
    // row, one pass over the tile's pixels that reads a run of width ints per tap and output row. A pass that does
    // not start the lanes keeps their lower taps (written by the previous channel's last pass). Each row's last
    // vector spills into the next row's first lanes, which that row then rewrites, so the rows go in order.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Unfold<TV, L, D>(in ConvParams p, ref byte x, int oy0, int rows, int ox0, int width, int pitch, int phaseWidth, Span<int> strip,
        ReadOnlySpan<int> tapOffsets, ref int cols)
        where TV : struct
        where L : struct, ILanes<TV>
        where D : struct, ITapPacking
    {
        int g = D.TapsPerLane;
        int k = p.Kernel;
        int kk = k * k;
        int s = p.Stride;
        int rowStride = s * phaseWidth;
        int plane = p.H * p.W;
        // Pairs hold x - zp, 0 at padding; quads x + 128, zp + 128 at padding.
        int offset = g == 2 ? p.InputZeroPoint : -128;
        int padding = g == 2 ? 0 : p.InputZeroPoint + 128;
        ref int sr = ref MemoryMarshal.GetReference(strip);
        int t = 0;
        for (int ic = 0; ic < p.InC; ic++)
        {
            ConvStrip.Pack<TV, L>(ref Unsafe.Add(ref x, ic * plane), p.H, p.W, p.Pad, s, offset, padding, oy0 * s, (rows - 1) * s + k, phaseWidth, strip);
            for (int tap = 0; tap < kk;)
            {
                int first = t % g;
                int run = Math.Min(g - first, kk - tap);
                int at = tapOffsets[tap];
                UnfoldPass<TV, L, D>(first, run, rows, width, s * rowStride, ref Unsafe.Add(ref sr, at + ox0),
                    run > 1 ? tapOffsets[tap + 1] - at : 0,
                    run > 2 ? tapOffsets[tap + 2] - at : 0,
                    run > 3 ? tapOffsets[tap + 3] - at : 0,
                    ref Unsafe.Add(ref cols, t / g * pitch));
                tap += run;
                t += run;
            }
        }
    }

    // Taps first .. first + run - 1 of the lanes from src, src + d1, ...: each but the last masked to its field (int16
    // pairs may be negative; a last field's high garbage is shifted out or replaced by the lane's next pass).
    // Dispatched on run and first so that each loop is straight code.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void UnfoldPass<TV, L, D>(int first, int run, int rows, int width, int srcRowStep, ref int src, int d1, int d2, int d3, ref int dst)
        where TV : struct
        where L : struct, ILanes<TV>
        where D : struct, ITapPacking
    {
        if (first != 0)
        {
            switch (run)
            {
                case 1:
                    UnfoldRows<TV, L, D>(first, 1, rows, width, srcRowStep, ref src, d1, d2, d3, ref dst);
                    break;
                case 2:
                    UnfoldRows<TV, L, D>(first, 2, rows, width, srcRowStep, ref src, d1, d2, d3, ref dst);
                    break;
                default:
                    UnfoldRows<TV, L, D>(first, 3, rows, width, srcRowStep, ref src, d1, d2, d3, ref dst);
                    break;
            }
            return;
        }
        switch (run)
        {
            case 1:
                UnfoldRows<TV, L, D>(0, 1, rows, width, srcRowStep, ref src, d1, d2, d3, ref dst);
                break;
            case 2:
                UnfoldRows<TV, L, D>(0, 2, rows, width, srcRowStep, ref src, d1, d2, d3, ref dst);
                break;
            case 3:
                UnfoldRows<TV, L, D>(0, 3, rows, width, srcRowStep, ref src, d1, d2, d3, ref dst);
                break;
            default:
                UnfoldRows<TV, L, D>(0, 4, rows, width, srcRowStep, ref src, d1, d2, d3, ref dst);
                break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void UnfoldRows<TV, L, D>(int first, int run, int rows, int width, int srcRowStep, ref int src, int d1, int d2, int d3, ref int dst)
        where TV : struct
        where L : struct, ILanes<TV>
        where D : struct, ITapPacking
    {
        int n = L.Count;
        int bits = 32 / D.TapsPerLane;
        TV field = L.Splat((1 << bits) - 1);
        TV keep = L.Splat((1 << (bits * first)) - 1);
        for (int r = 0; r < rows; r++)
        {
            for (int j = 0; j < width; j += n)
            {
                TV v = L.Load(ref src, j);
                if (run > 1)
                {
                    v = L.Or(D.TapsPerLane == 2 ? L.And(v, field) : v, L.ShiftLeft(L.Load(ref src, j + d1), bits));
                }
                if (run > 2)
                {
                    v = L.Or(v, L.ShiftLeft(L.Load(ref src, j + d2), 2 * bits));
                }
                if (run > 3)
                {
                    v = L.Or(v, L.ShiftLeft(L.Load(ref src, j + d3), 3 * bits));
                }
                if (first != 0)
                {
                    v = L.Or(L.And(L.Load(ref dst, j), keep), L.ShiftLeft(v, bits * first));
                }
                L.Store(v, ref dst, j);
            }
            src = ref Unsafe.Add(ref src, srcRowStep);
            dst = ref Unsafe.Add(ref dst, width);
        }
    }

    // One output channel's weights w (taps) into its row of wk as the packing lays them out, 0 past them (all 0
    // for a channel past the block's end: taps 0); returns their sum for the quads' start value (0 for pairs).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int PackWeights<D>(ref byte w, int taps, Span<int> row)
        where D : struct, ITapPacking
    {
        int t = 0;
        if (D.TapsPerLane == 2)
        {
            ref short dst = ref Unsafe.As<int, short>(ref MemoryMarshal.GetReference(row));
            for (; t + Vector128<sbyte>.Count <= taps; t += Vector128<sbyte>.Count)
            {
                (Vector128<short> lo, Vector128<short> hi) = Vector128.Widen(Vector128.LoadUnsafe(ref Unsafe.Add(ref w, t)).AsSByte());
                lo.StoreUnsafe(ref Unsafe.Add(ref dst, t));
                hi.StoreUnsafe(ref Unsafe.Add(ref dst, t + Vector128<short>.Count));
            }
            for (; t < 2 * row.Length; t++)
            {
                Unsafe.Add(ref dst, t) = t < taps ? (sbyte)Unsafe.Add(ref w, t) : (short)0;
            }
            return 0;
        }
        ref byte bytes = ref Unsafe.As<int, byte>(ref MemoryMarshal.GetReference(row));
        Vector128<int> sums = Vector128<int>.Zero;
        for (; t + Vector128<sbyte>.Count <= taps; t += Vector128<sbyte>.Count)
        {
            Vector128<sbyte> v = Vector128.LoadUnsafe(ref Unsafe.Add(ref w, t)).AsSByte();
            v.AsByte().StoreUnsafe(ref Unsafe.Add(ref bytes, t));
            (Vector128<short> lo, Vector128<short> hi) = Vector128.Widen(v);
            Vector128<short> pair = lo + hi;
            sums += Vector128.WidenLower(pair) + Vector128.WidenUpper(pair);
        }
        int sum = Vector128.Sum(sums);
        for (; t < 4 * row.Length; t++)
        {
            sbyte v = t < taps ? (sbyte)Unsafe.Add(ref w, t) : (sbyte)0;
            Unsafe.Add(ref bytes, t) = (byte)v;
            sum += v;
        }
        return sum;
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
    private static void DenseBlock<TV, L, D>(int kl, int pitch, int count, int nb, ref int cols, ref int wk, Span<int> quant, in BlockRequant<TV> requant,
        ref byte y, int oplane, in FusedMask mask)
        where TV : struct
        where L : struct, ILanes<TV>
        where D : struct, ITapPacking
    {
        int n = L.Count;
        int px = 0;
        for (; px + n < count; px += 2 * n)
        {
            DenseTile2<TV, L, D>(kl, pitch, nb, count - px, ref Unsafe.Add(ref cols, px), ref wk, quant, requant, ref Unsafe.Add(ref y, px), oplane, mask);
        }
        if (px < count)
        {
            DenseTile1<TV, L, D>(kl, pitch, nb, count - px, ref Unsafe.Add(ref cols, px), ref wk, quant, requant, ref Unsafe.Add(ref y, px), oplane, mask);
        }
    }

    // Four channels by two vectors of pixels; left (> n) is how many of the pixels are the tile's.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DenseTile2<TV, L, D>(int kl, int pitch, int nb, int left, ref int cols, ref int wk, Span<int> quant, in BlockRequant<TV> requant,
        ref byte y, int oplane, in FusedMask mask)
        where TV : struct
        where L : struct, ILanes<TV>
        where D : struct, ITapPacking
    {
        int n = L.Count;
        TV a0 = L.Splat(quant[0]), b0 = a0;
        TV a1 = L.Splat(quant[3]), b1 = a1;
        TV a2 = L.Splat(quant[6]), b2 = a2;
        TV a3 = L.Splat(quant[9]), b3 = a3;
        ref int w0 = ref wk;
        ref int w1 = ref Unsafe.Add(ref wk, kl);
        ref int w2 = ref Unsafe.Add(ref wk, 2 * kl);
        ref int w3 = ref Unsafe.Add(ref wk, 3 * kl);
        ref int xi = ref cols;
        for (int j = 0; j < kl; j++)
        {
            TV xa = L.Load(ref xi, 0);
            TV xb = L.Load(ref xi, n);
            TV wv = L.Splat(Unsafe.Add(ref w0, j));
            a0 = D.MultiplyAdd<TV, L>(a0, xa, wv);
            b0 = D.MultiplyAdd<TV, L>(b0, xb, wv);
            wv = L.Splat(Unsafe.Add(ref w1, j));
            a1 = D.MultiplyAdd<TV, L>(a1, xa, wv);
            b1 = D.MultiplyAdd<TV, L>(b1, xb, wv);
            wv = L.Splat(Unsafe.Add(ref w2, j));
            a2 = D.MultiplyAdd<TV, L>(a2, xa, wv);
            b2 = D.MultiplyAdd<TV, L>(b2, xb, wv);
            wv = L.Splat(Unsafe.Add(ref w3, j));
            a3 = D.MultiplyAdd<TV, L>(a3, xa, wv);
            b3 = D.MultiplyAdd<TV, L>(b3, xb, wv);
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

    // Four channels by one vector of pixels (left of them the tile's): even and odd lane rows in separate
    // accumulators, so that the multiply-adds do not wait on each other.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DenseTile1<TV, L, D>(int kl, int pitch, int nb, int left, ref int cols, ref int wk, Span<int> quant, in BlockRequant<TV> requant,
        ref byte y, int oplane, in FusedMask mask)
        where TV : struct
        where L : struct, ILanes<TV>
        where D : struct, ITapPacking
    {
        TV a0 = L.Splat(quant[0]), b0 = L.Splat(0);
        TV a1 = L.Splat(quant[3]), b1 = b0;
        TV a2 = L.Splat(quant[6]), b2 = b0;
        TV a3 = L.Splat(quant[9]), b3 = b0;
        ref int w0 = ref wk;
        ref int w1 = ref Unsafe.Add(ref wk, kl);
        ref int w2 = ref Unsafe.Add(ref wk, 2 * kl);
        ref int w3 = ref Unsafe.Add(ref wk, 3 * kl);
        ref int xi = ref cols;
        int j = 0;
        for (; j + 1 < kl; j += 2)
        {
            TV xa = L.Load(ref xi, 0);
            TV xb = L.Load(ref xi, pitch);
            a0 = D.MultiplyAdd<TV, L>(a0, xa, L.Splat(Unsafe.Add(ref w0, j)));
            b0 = D.MultiplyAdd<TV, L>(b0, xb, L.Splat(Unsafe.Add(ref w0, j + 1)));
            a1 = D.MultiplyAdd<TV, L>(a1, xa, L.Splat(Unsafe.Add(ref w1, j)));
            b1 = D.MultiplyAdd<TV, L>(b1, xb, L.Splat(Unsafe.Add(ref w1, j + 1)));
            a2 = D.MultiplyAdd<TV, L>(a2, xa, L.Splat(Unsafe.Add(ref w2, j)));
            b2 = D.MultiplyAdd<TV, L>(b2, xb, L.Splat(Unsafe.Add(ref w2, j + 1)));
            a3 = D.MultiplyAdd<TV, L>(a3, xa, L.Splat(Unsafe.Add(ref w3, j)));
            b3 = D.MultiplyAdd<TV, L>(b3, xb, L.Splat(Unsafe.Add(ref w3, j + 1)));
            xi = ref Unsafe.Add(ref xi, 2 * pitch);
        }
        if (j < kl)
        {
            TV xa = L.Load(ref xi, 0);
            a0 = D.MultiplyAdd<TV, L>(a0, xa, L.Splat(Unsafe.Add(ref w0, j)));
            a1 = D.MultiplyAdd<TV, L>(a1, xa, L.Splat(Unsafe.Add(ref w1, j)));
            a2 = D.MultiplyAdd<TV, L>(a2, xa, L.Splat(Unsafe.Add(ref w2, j)));
            a3 = D.MultiplyAdd<TV, L>(a3, xa, L.Splat(Unsafe.Add(ref w3, j)));
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
