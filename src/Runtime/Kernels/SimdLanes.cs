using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TinyTrain.Runtime.Kernels;

/// <summary>
/// The int32-lane operations the fast kernels are written against. Each fast kernel is one generic
/// method instantiated with <see cref="Lanes256"/> or <see cref="Lanes128"/>; both are structs, so the
/// JIT specialises the method and emits straight Vector256 or Vector128 code (AVX2 or SSE on x64,
/// AdvSimd on ARM) from the same source. Loads and stores take a ref and an index and check nothing:
/// each kernel's public entry has validated every range beforehand. The fast kernels' methods are
/// marked AggressiveOptimization: a plan runs each op once per inference, so tiered compilation would
/// leave them in unoptimised tier-0 code (several times slower) for many inferences.
/// </summary>
internal interface ILanes<TV> where TV : struct
{
    /// <summary>int32 lanes per vector.</summary>
    static abstract int Count { get; }

    static abstract TV Splat(int value);

    /// <summary>Count int8 values from src[index..], sign-extended to int32.</summary>
    static abstract TV LoadInt8(ref byte src, int index);

    /// <summary>2*Count int8 values from src[index..]: even-indexed ones into <paramref name="even"/>, odd into <paramref name="odd"/>.</summary>
    static abstract void LoadInt8Pairs(ref byte src, int index, out TV even, out TV odd);

    static abstract TV Load(ref int src, int index);

    static abstract void Store(TV value, ref int dst, int index);

    static abstract TV Add(TV a, TV b);

    static abstract TV Subtract(TV a, TV b);

    static abstract TV Multiply(TV a, TV b);

    static abstract TV ShiftLeft(TV a, int count);

    static abstract TV And(TV a, TV b);

    static abstract TV Or(TV a, TV b);

    /// <summary>
    /// acc + lo(x) * lo(w) + hi(x) * hi(w) in each int32 lane, lo and hi being the lane's signed int16 halves, wrapping:
    /// pmaddwd (or AVX-VNNI's vpdpwssd) where there is one, else the portable <c>MultiplyAddPairsPortable</c>. Both are
    /// exact modulo 2^32 (the one case pmaddwd wraps, four int16 minima, gives 2^31, which wraps the same way), so they agree.
    /// </summary>
    static abstract TV MultiplyAddPairs(TV acc, TV x, TV w);

    /// <summary>
    /// acc + the sum over the four bytes of each int32 lane of u's byte (unsigned) times w's byte (signed), wrapping:
    /// AVX-VNNI's vpdpbusd where there is one, else the portable <c>MultiplyAddQuadsPortable</c> (exact alike; each
    /// product fits in 16 bits and the instruction adds them to acc in 32).
    /// </summary>
    static abstract TV MultiplyAddQuads(TV acc, TV u, TV w);

    /// <summary>Wrapping sum of the lanes.</summary>
    static abstract int Sum(TV a);

    /// <summary>Lane-wise <see cref="Quant.MultiplyByQuantizedMultiplier"/>, bit for bit.</summary>
    static abstract TV MultiplyByQuantizedMultiplier(TV x, int multiplier, int shift);

    /// <summary>clamp(zeroPoint + MultiplyByQuantizedMultiplier(acc, multiplier, shift), actMin, actMax).</summary>
    static abstract TV Requantize(TV acc, int multiplier, int shift, int zeroPoint, int actMin, int actMax);

    /// <summary>One output channel's requantization constants as lanes, for the Requantize overloads that take them.</summary>
    static abstract Requant<TV> Prepare(int multiplier, int shift, int zeroPoint, int actMin, int actMax);

    /// <summary><see cref="Requantize(TV, int, int, int, int, int)"/> with the constants made once by <see cref="Prepare"/>.</summary>
    static abstract TV Requantize(TV acc, in Requant<TV> q);

    /// <summary>The masked <c>Requantize</c> with the constants made once by <see cref="Prepare"/>.</summary>
    static abstract TV Requantize(TV acc, in Requant<TV> q, int maskMode, out uint maskBits);

    /// <summary>
    /// <see cref="Requantize(TV, int, int, int, int, int)"/>, and the lanes' fused ReLU mask in <paramref name="maskBits"/>
    /// (bit i for lane i): acc &gt; 0 and, for <paramref name="maskMode"/> 2, zeroPoint + MBQM(acc) &lt; actMax before the clamp.
    /// </summary>
    static abstract TV Requantize(TV acc, int multiplier, int shift, int zeroPoint, int actMin, int actMax, int maskMode, out uint maskBits);

    /// <summary>Stores the Count lanes, already within [-128, 127], as int8 bytes at dst[index..].</summary>
    static abstract void StoreInt8(TV value, ref byte dst, int index);

    /// <summary>Stores the first <paramref name="count"/> (&lt; Count) lanes as int8 bytes.</summary>
    static abstract void StoreInt8Partial(TV value, ref byte dst, int index, int count);
}

/// <summary>
/// One output channel's requantization as lanes: everything the lane-wise MultiplyByQuantizedMultiplier and the clamp
/// need besides the accumulator, made once per channel so that a kernel storing many vectors of it does not redo it.
/// </summary>
internal readonly struct Requant<TV> where TV : struct
{
    /// <summary>The multiplier as an int64 in each pair of int32 lanes.</summary>
    public readonly TV Multiplier;
    /// <summary>2^right - 1 and half of it (rounded down): the rounding right shift's remainder mask and threshold.</summary>
    public readonly TV RoundMask, RoundHalf;
    public readonly TV ZeroPoint, ActMin, ActMax;
    public readonly int Left, Right;
    public readonly bool MinMultiplier;

    public Requant(TV multiplier, TV roundMask, TV roundHalf, TV zeroPoint, TV actMin, TV actMax, int left, int right, bool minMultiplier)
    {
        Multiplier = multiplier;
        RoundMask = roundMask;
        RoundHalf = roundHalf;
        ZeroPoint = zeroPoint;
        ActMin = actMin;
        ActMax = actMax;
        Left = left;
        Right = right;
        MinMultiplier = minMultiplier;
    }

    /// <summary>Shift counts masked to 0..31 exactly as C#'s scalar &lt;&lt; and &gt;&gt; mask them.</summary>
    public static int LeftOf(int shift) => shift > 0 ? shift & 31 : 0;

    public static int RightOf(int shift) => shift > 0 ? 0 : -shift & 31;
}

internal struct Lanes256 : ILanes<Vector256<int>>
{
    public static int Count => Vector256<int>.Count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Splat(int value) => Vector256.Create(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> LoadInt8(ref byte src, int index)
    {
        long bits = Unsafe.ReadUnaligned<long>(ref Unsafe.Add(ref src, index));
        Vector128<short> s = Vector128.WidenLower(Vector128.CreateScalarUnsafe(bits).AsSByte());
        return Vector256.WidenLower(s.ToVector256Unsafe());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void LoadInt8Pairs(ref byte src, int index, out Vector256<int> even, out Vector256<int> odd)
    {
        Vector128<sbyte> b = Vector128.LoadUnsafe(ref Unsafe.Add(ref src, index)).AsSByte();
        b = Vector128.Shuffle(b, Vector128.Create((sbyte)0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15));
        even = Vector256.WidenLower(Vector128.WidenLower(b).ToVector256Unsafe());
        odd = Vector256.WidenLower(Vector128.WidenUpper(b).ToVector256Unsafe());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Load(ref int src, int index) => Vector256.LoadUnsafe(ref Unsafe.Add(ref src, index));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector256<int> value, ref int dst, int index) => value.StoreUnsafe(ref Unsafe.Add(ref dst, index));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Add(Vector256<int> a, Vector256<int> b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Subtract(Vector256<int> a, Vector256<int> b) => a - b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Multiply(Vector256<int> a, Vector256<int> b) => a * b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> ShiftLeft(Vector256<int> a, int count) => Vector256.ShiftLeft(a, count);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> And(Vector256<int> a, Vector256<int> b) => a & b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Or(Vector256<int> a, Vector256<int> b) => a | b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> MultiplyAddPairs(Vector256<int> acc, Vector256<int> x, Vector256<int> w)
    {
        if (AvxVnni.IsSupported)
        {
            return AvxVnni.MultiplyWideningAndAdd(acc, x.AsInt16(), w.AsInt16());
        }
        if (Avx2.IsSupported)
        {
            return acc + Avx2.MultiplyAddAdjacent(x.AsInt16(), w.AsInt16());
        }
        return acc + MultiplyAddPairsPortable(x, w);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> MultiplyAddQuads(Vector256<int> acc, Vector256<int> u, Vector256<int> w)
    {
        if (AvxVnni.IsSupported)
        {
            return AvxVnni.MultiplyWideningAndAdd(acc, u.AsByte(), w.AsSByte());
        }
        return acc + MultiplyAddQuadsPortable(u, w);
    }

    /// <summary>The four bytes' products' sums with plain lane arithmetic (also what the tests hold the instruction to).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> MultiplyAddQuadsPortable(Vector256<int> u, Vector256<int> w)
    {
        Vector256<int> sum = Vector256<int>.Zero;
        Vector256<int> low = Vector256.Create(0xFF);
        for (int i = 0; i < 4; i++)
        {
            sum += (Vector256.ShiftRightLogical(u, 8 * i) & low) * Vector256.ShiftRightArithmetic(Vector256.ShiftLeft(w, 24 - 8 * i), 24);
        }
        return sum;
    }

    /// <summary>The pairwise products' sums with plain lane arithmetic (also what the tests hold the instructions to).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> MultiplyAddPairsPortable(Vector256<int> x, Vector256<int> w)
    {
        Vector256<int> xLo = Vector256.ShiftRightArithmetic(Vector256.ShiftLeft(x, 16), 16);
        Vector256<int> wLo = Vector256.ShiftRightArithmetic(Vector256.ShiftLeft(w, 16), 16);
        return xLo * wLo + Vector256.ShiftRightArithmetic(x, 16) * Vector256.ShiftRightArithmetic(w, 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Sum(Vector256<int> a) => Vector256.Sum(a);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> MultiplyByQuantizedMultiplier(Vector256<int> x, int multiplier, int shift)
    {
        int right = Requant<Vector256<int>>.RightOf(shift);
        int mask = (1 << right) - 1;
        return MultiplyByQuantizedMultiplier(x, Vector256.Create((long)multiplier).AsInt32(), multiplier == int.MinValue,
            Requant<Vector256<int>>.LeftOf(shift), right, Vector256.Create(mask), Vector256.Create(mask >> 1));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> MultiplyByQuantizedMultiplier(Vector256<int> x, Vector256<int> multiplier, bool minMultiplier, int left, int right,
        Vector256<int> roundMask, Vector256<int> roundHalf)
    {
        if (left != 0)
        {
            x = Vector256.ShiftLeft(x, left);
        }
        Vector256<int> r = RoundingHighMul(x, multiplier);
        // SaturatingRoundingDoublingHighMul saturates in one case only: x = m = int.MinValue.
        if (minMultiplier)
        {
            Vector256<int> min = Vector256.Create(int.MinValue);
            r = Vector256.ConditionalSelect(Vector256.Equals(x, min), Vector256.Create(int.MaxValue), r);
        }
        if (right != 0)
        {
            // Rounding divide by 2^right, ties away from zero. Comparisons give -1 for true: subtracting them adds 1.
            Vector256<int> remainder = r & roundMask;
            Vector256<int> threshold = roundHalf - Vector256.LessThan(r, Vector256<int>.Zero);
            r = Vector256.ShiftRightArithmetic(r, right) - Vector256.GreaterThan(remainder, threshold);
        }
        return r;
    }

    /// <summary>
    /// SaturatingRoundingDoublingHighMul without its saturation: floor((x*m + 2^30) / 2^31), the low 32 bits of the int64
    /// result (the low 32 bits of a logical shift equal those of the arithmetic one); m is the multiplier in each int64.
    /// AVX2 multiplies even and odd lanes (vpmuldq reads each int64's low half); else <see cref="RoundingHighMulPortable"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> RoundingHighMul(Vector256<int> x, Vector256<int> m)
    {
        if (Avx2.IsSupported)
        {
            Vector256<long> nudge = Vector256.Create(1L << 30);
            Vector256<long> even = Avx2.Multiply(x, m) + nudge;
            Vector256<long> odd = Avx2.Multiply(Avx2.ShiftRightLogical(x.AsInt64(), 32).AsInt32(), m) + nudge;
            // Bits 31..62: for the even lanes the low half after >> 31, for the odd ones the high half after << 1.
            return Avx2.Blend(Avx2.ShiftRightLogical(even, 31).AsInt32(), Avx2.ShiftLeftLogical(odd, 1).AsInt32(), 0b10101010);
        }
        return RoundingHighMulPortable(x, m);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> RoundingHighMulPortable(Vector256<int> x, Vector256<int> m)
    {
        Vector256<long> m64 = m.AsInt64();
        Vector256<long> nudge = Vector256.Create(1L << 30);
        Vector256<long> lo = Vector256.ShiftRightLogical(Vector256.WidenLower(x) * m64 + nudge, 31);
        Vector256<long> hi = Vector256.ShiftRightLogical(Vector256.WidenUpper(x) * m64 + nudge, 31);
        return Vector256.Narrow(lo, hi);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Requantize(Vector256<int> acc, int multiplier, int shift, int zeroPoint, int actMin, int actMax)
    {
        Vector256<int> v = MultiplyByQuantizedMultiplier(acc, multiplier, shift) + Vector256.Create(zeroPoint);
        return Vector256.Max(Vector256.Min(v, Vector256.Create(actMax)), Vector256.Create(actMin));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Requantize(Vector256<int> acc, int multiplier, int shift, int zeroPoint, int actMin, int actMax, int maskMode, out uint maskBits)
    {
        Vector256<int> v = MultiplyByQuantizedMultiplier(acc, multiplier, shift) + Vector256.Create(zeroPoint);
        maskBits = MaskBits(acc, v, maskMode, Vector256.Create(actMax));
        return Vector256.Max(Vector256.Min(v, Vector256.Create(actMax)), Vector256.Create(actMin));
    }

    public static Requant<Vector256<int>> Prepare(int multiplier, int shift, int zeroPoint, int actMin, int actMax)
    {
        int right = Requant<Vector256<int>>.RightOf(shift);
        int mask = (1 << right) - 1;
        return new Requant<Vector256<int>>(Vector256.Create((long)multiplier).AsInt32(), Vector256.Create(mask), Vector256.Create(mask >> 1),
            Vector256.Create(zeroPoint), Vector256.Create(actMin), Vector256.Create(actMax), Requant<Vector256<int>>.LeftOf(shift), right, multiplier == int.MinValue);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Requantize(Vector256<int> acc, in Requant<Vector256<int>> q)
    {
        Vector256<int> v = MultiplyByQuantizedMultiplier(acc, q.Multiplier, q.MinMultiplier, q.Left, q.Right, q.RoundMask, q.RoundHalf) + q.ZeroPoint;
        return Vector256.Max(Vector256.Min(v, q.ActMax), q.ActMin);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Requantize(Vector256<int> acc, in Requant<Vector256<int>> q, int maskMode, out uint maskBits)
    {
        Vector256<int> v = MultiplyByQuantizedMultiplier(acc, q.Multiplier, q.MinMultiplier, q.Left, q.Right, q.RoundMask, q.RoundHalf) + q.ZeroPoint;
        maskBits = MaskBits(acc, v, maskMode, q.ActMax);
        return Vector256.Max(Vector256.Min(v, q.ActMax), q.ActMin);
    }

    // The fused ReLU mask: acc > 0 and, for ReLU6, the unclamped value below the top.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint MaskBits(Vector256<int> acc, Vector256<int> unclamped, int maskMode, Vector256<int> actMax)
    {
        Vector256<int> passes = Vector256.GreaterThan(acc, Vector256<int>.Zero);
        if (maskMode == 2)
        {
            passes &= Vector256.LessThan(unclamped, actMax);
        }
        return passes.ExtractMostSignificantBits();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreInt8(Vector256<int> value, ref byte dst, int index)
    {
        Unsafe.WriteUnaligned(ref Unsafe.Add(ref dst, index), NarrowToInt8(value));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreInt8Partial(Vector256<int> value, ref byte dst, int index, int count)
    {
        long bits = NarrowToInt8(value);
        for (int k = 0; k < count; k++)
        {
            Unsafe.Add(ref dst, index + k) = (byte)(bits >> (8 * k));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static long NarrowToInt8(Vector256<int> value)
    {
        if (Avx512F.VL.IsSupported)
        {
            return Avx512F.VL.ConvertToVector128SByte(value).AsInt64().ToScalar();
        }
        Vector128<short> s = Vector128.Narrow(value.GetLower(), value.GetUpper());
        return Vector128.Narrow(s, s).AsInt64().ToScalar();
    }
}

internal struct Lanes128 : ILanes<Vector128<int>>
{
    public static int Count => Vector128<int>.Count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> Splat(int value) => Vector128.Create(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> LoadInt8(ref byte src, int index)
    {
        int bits = Unsafe.ReadUnaligned<int>(ref Unsafe.Add(ref src, index));
        return Vector128.WidenLower(Vector128.WidenLower(Vector128.CreateScalarUnsafe(bits).AsSByte()));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void LoadInt8Pairs(ref byte src, int index, out Vector128<int> even, out Vector128<int> odd)
    {
        long bits = Unsafe.ReadUnaligned<long>(ref Unsafe.Add(ref src, index));
        Vector128<sbyte> b = Vector128.CreateScalarUnsafe(bits).AsSByte();
        b = Vector128.Shuffle(b, Vector128.Create((sbyte)0, 2, 4, 6, 1, 3, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15));
        Vector128<short> s = Vector128.WidenLower(b);
        even = Vector128.WidenLower(s);
        odd = Vector128.WidenUpper(s);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> Load(ref int src, int index) => Vector128.LoadUnsafe(ref Unsafe.Add(ref src, index));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector128<int> value, ref int dst, int index) => value.StoreUnsafe(ref Unsafe.Add(ref dst, index));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> Add(Vector128<int> a, Vector128<int> b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> Subtract(Vector128<int> a, Vector128<int> b) => a - b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> Multiply(Vector128<int> a, Vector128<int> b) => a * b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> ShiftLeft(Vector128<int> a, int count) => Vector128.ShiftLeft(a, count);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> And(Vector128<int> a, Vector128<int> b) => a & b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> Or(Vector128<int> a, Vector128<int> b) => a | b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> MultiplyAddPairs(Vector128<int> acc, Vector128<int> x, Vector128<int> w)
    {
        if (AvxVnni.IsSupported)
        {
            return AvxVnni.MultiplyWideningAndAdd(acc, x.AsInt16(), w.AsInt16());
        }
        if (Sse2.IsSupported)
        {
            return acc + Sse2.MultiplyAddAdjacent(x.AsInt16(), w.AsInt16());
        }
        return acc + MultiplyAddPairsPortable(x, w);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> MultiplyAddQuads(Vector128<int> acc, Vector128<int> u, Vector128<int> w)
    {
        if (AvxVnni.IsSupported)
        {
            return AvxVnni.MultiplyWideningAndAdd(acc, u.AsByte(), w.AsSByte());
        }
        return acc + MultiplyAddQuadsPortable(u, w);
    }

    /// <summary>The four bytes' products' sums with plain lane arithmetic (also what the tests hold the instruction to).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> MultiplyAddQuadsPortable(Vector128<int> u, Vector128<int> w)
    {
        Vector128<int> sum = Vector128<int>.Zero;
        Vector128<int> low = Vector128.Create(0xFF);
        for (int i = 0; i < 4; i++)
        {
            sum += (Vector128.ShiftRightLogical(u, 8 * i) & low) * Vector128.ShiftRightArithmetic(Vector128.ShiftLeft(w, 24 - 8 * i), 24);
        }
        return sum;
    }

    /// <summary>The pairwise products' sums with plain lane arithmetic (also what the tests hold the instructions to).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> MultiplyAddPairsPortable(Vector128<int> x, Vector128<int> w)
    {
        Vector128<int> xLo = Vector128.ShiftRightArithmetic(Vector128.ShiftLeft(x, 16), 16);
        Vector128<int> wLo = Vector128.ShiftRightArithmetic(Vector128.ShiftLeft(w, 16), 16);
        return xLo * wLo + Vector128.ShiftRightArithmetic(x, 16) * Vector128.ShiftRightArithmetic(w, 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Sum(Vector128<int> a) => Vector128.Sum(a);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> MultiplyByQuantizedMultiplier(Vector128<int> x, int multiplier, int shift)
    {
        int right = Requant<Vector128<int>>.RightOf(shift);
        int mask = (1 << right) - 1;
        return MultiplyByQuantizedMultiplier(x, Vector128.Create((long)multiplier).AsInt32(), multiplier == int.MinValue,
            Requant<Vector128<int>>.LeftOf(shift), right, Vector128.Create(mask), Vector128.Create(mask >> 1));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> MultiplyByQuantizedMultiplier(Vector128<int> x, Vector128<int> multiplier, bool minMultiplier, int left, int right,
        Vector128<int> roundMask, Vector128<int> roundHalf)
    {
        if (left != 0)
        {
            x = Vector128.ShiftLeft(x, left);
        }
        Vector128<int> r = RoundingHighMul(x, multiplier);
        // SaturatingRoundingDoublingHighMul saturates in one case only: x = m = int.MinValue.
        if (minMultiplier)
        {
            Vector128<int> min = Vector128.Create(int.MinValue);
            r = Vector128.ConditionalSelect(Vector128.Equals(x, min), Vector128.Create(int.MaxValue), r);
        }
        if (right != 0)
        {
            // Rounding divide by 2^right, ties away from zero. Comparisons give -1 for true: subtracting them adds 1.
            Vector128<int> remainder = r & roundMask;
            Vector128<int> threshold = roundHalf - Vector128.LessThan(r, Vector128<int>.Zero);
            r = Vector128.ShiftRightArithmetic(r, right) - Vector128.GreaterThan(remainder, threshold);
        }
        return r;
    }

    /// <summary>Lanes256.RoundingHighMul on four lanes (SSE4.1's pmuldq).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> RoundingHighMul(Vector128<int> x, Vector128<int> m)
    {
        if (Sse41.IsSupported)
        {
            Vector128<long> nudge = Vector128.Create(1L << 30);
            Vector128<long> even = Sse41.Multiply(x, m) + nudge;
            Vector128<long> odd = Sse41.Multiply(Sse2.ShiftRightLogical(x.AsInt64(), 32).AsInt32(), m) + nudge;
            return Sse41.Blend(Sse2.ShiftRightLogical(even, 31).AsInt16(), Sse2.ShiftLeftLogical(odd, 1).AsInt16(), 0b11001100).AsInt32();
        }
        return RoundingHighMulPortable(x, m);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> RoundingHighMulPortable(Vector128<int> x, Vector128<int> m)
    {
        Vector128<long> m64 = m.AsInt64();
        Vector128<long> nudge = Vector128.Create(1L << 30);
        Vector128<long> lo = Vector128.ShiftRightLogical(Vector128.WidenLower(x) * m64 + nudge, 31);
        Vector128<long> hi = Vector128.ShiftRightLogical(Vector128.WidenUpper(x) * m64 + nudge, 31);
        return Vector128.Narrow(lo, hi);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> Requantize(Vector128<int> acc, int multiplier, int shift, int zeroPoint, int actMin, int actMax)
    {
        Vector128<int> v = MultiplyByQuantizedMultiplier(acc, multiplier, shift) + Vector128.Create(zeroPoint);
        return Vector128.Max(Vector128.Min(v, Vector128.Create(actMax)), Vector128.Create(actMin));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> Requantize(Vector128<int> acc, int multiplier, int shift, int zeroPoint, int actMin, int actMax, int maskMode, out uint maskBits)
    {
        Vector128<int> v = MultiplyByQuantizedMultiplier(acc, multiplier, shift) + Vector128.Create(zeroPoint);
        maskBits = MaskBits(acc, v, maskMode, Vector128.Create(actMax));
        return Vector128.Max(Vector128.Min(v, Vector128.Create(actMax)), Vector128.Create(actMin));
    }

    public static Requant<Vector128<int>> Prepare(int multiplier, int shift, int zeroPoint, int actMin, int actMax)
    {
        int right = Requant<Vector128<int>>.RightOf(shift);
        int mask = (1 << right) - 1;
        return new Requant<Vector128<int>>(Vector128.Create((long)multiplier).AsInt32(), Vector128.Create(mask), Vector128.Create(mask >> 1),
            Vector128.Create(zeroPoint), Vector128.Create(actMin), Vector128.Create(actMax), Requant<Vector128<int>>.LeftOf(shift), right, multiplier == int.MinValue);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> Requantize(Vector128<int> acc, in Requant<Vector128<int>> q)
    {
        Vector128<int> v = MultiplyByQuantizedMultiplier(acc, q.Multiplier, q.MinMultiplier, q.Left, q.Right, q.RoundMask, q.RoundHalf) + q.ZeroPoint;
        return Vector128.Max(Vector128.Min(v, q.ActMax), q.ActMin);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> Requantize(Vector128<int> acc, in Requant<Vector128<int>> q, int maskMode, out uint maskBits)
    {
        Vector128<int> v = MultiplyByQuantizedMultiplier(acc, q.Multiplier, q.MinMultiplier, q.Left, q.Right, q.RoundMask, q.RoundHalf) + q.ZeroPoint;
        maskBits = MaskBits(acc, v, maskMode, q.ActMax);
        return Vector128.Max(Vector128.Min(v, q.ActMax), q.ActMin);
    }

    // The fused ReLU mask: acc > 0 and, for ReLU6, the unclamped value below the top.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint MaskBits(Vector128<int> acc, Vector128<int> unclamped, int maskMode, Vector128<int> actMax)
    {
        Vector128<int> passes = Vector128.GreaterThan(acc, Vector128<int>.Zero);
        if (maskMode == 2)
        {
            passes &= Vector128.LessThan(unclamped, actMax);
        }
        return passes.ExtractMostSignificantBits();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreInt8(Vector128<int> value, ref byte dst, int index)
    {
        Unsafe.WriteUnaligned(ref Unsafe.Add(ref dst, index), NarrowToInt8(value));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreInt8Partial(Vector128<int> value, ref byte dst, int index, int count)
    {
        int bits = NarrowToInt8(value);
        for (int k = 0; k < count; k++)
        {
            Unsafe.Add(ref dst, index + k) = (byte)(bits >> (8 * k));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int NarrowToInt8(Vector128<int> value)
    {
        if (Avx512F.VL.IsSupported)
        {
            return Avx512F.VL.ConvertToVector128SByte(value).AsInt32().ToScalar();
        }
        Vector128<short> s = Vector128.Narrow(value, value);
        return Vector128.Narrow(s, s).AsInt32().ToScalar();
    }
}

/// <summary>
/// Where a fast path writes the fused ReLU mask (<see cref="Conv2D"/> and the others, maskMode 1 or 2): bit i,
/// LSB-first, belongs to output element i, so a store's bit index is its distance from y's first element and
/// no path has to carry indices. The constructor clears the mask's bytes, so writers only OR in ones: runs that
/// start mid-byte, tails and tails rewritten by an overlapping last vector need no clearing of their own.
/// Mode 0 holds null refs and must not be written to.
/// </summary>
internal readonly ref struct FusedMask
{
    private readonly ref byte _bits;
    private readonly ref byte _y;
    public readonly int Mode;

    /// <summary>For the <paramref name="count"/> outputs at y[yOff..]; the arguments have passed <see cref="KernelChecks.Mask"/>.</summary>
    public FusedMask(byte[]? mask, int maskOff, int maskMode, byte[] y, int yOff, int count)
    {
        Mode = maskMode;
        if (maskMode == 0 || mask == null)
        {
            Mode = 0;
            _bits = ref Unsafe.NullRef<byte>();
            _y = ref Unsafe.NullRef<byte>();
            return;
        }
        mask.AsSpan(maskOff, (count + 7) / 8).Clear();
        _bits = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(mask), maskOff);
        _y = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(y), yOff);
    }

    /// <summary>The scalar twin of the lanes' mask: the gradient of the fused activation passes.</summary>
    public static bool Passes(int maskMode, int acc, int unclamped, int actMax) => acc > 0 && (maskMode == 1 || unclamped < actMax);

    /// <summary>ORs in the low <paramref name="count"/> (1 to 8) <paramref name="bits"/> for the outputs from <paramref name="yAt"/> on.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Write(ref byte yAt, uint bits, int count)
    {
        nint i = Unsafe.ByteOffset(ref _y, ref yAt);
        uint v = (bits & ((1u << count) - 1)) << (int)(i & 7);
        ref byte b = ref Unsafe.Add(ref _bits, i >> 3);
        b |= (byte)v;
        // Only ones spill into the next byte, which therefore lies within the mask.
        if (v > 0xFF)
        {
            Unsafe.Add(ref b, 1) |= (byte)(v >> 8);
        }
    }

    /// <summary>Sets the bit of output element <paramref name="index"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Set(int index)
    {
        Unsafe.Add(ref _bits, index >> 3) |= (byte)(1 << (index & 7));
    }
}
