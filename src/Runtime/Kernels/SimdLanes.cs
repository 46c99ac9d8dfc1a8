using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

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

    /// <summary>Wrapping sum of the lanes.</summary>
    static abstract int Sum(TV a);

    /// <summary>Lane-wise <see cref="Quant.MultiplyByQuantizedMultiplier"/>, bit for bit.</summary>
    static abstract TV MultiplyByQuantizedMultiplier(TV x, int multiplier, int shift);

    /// <summary>clamp(zeroPoint + MultiplyByQuantizedMultiplier(acc, multiplier, shift), actMin, actMax).</summary>
    static abstract TV Requantize(TV acc, int multiplier, int shift, int zeroPoint, int actMin, int actMax);

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
    public static int Sum(Vector256<int> a) => Vector256.Sum(a);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> MultiplyByQuantizedMultiplier(Vector256<int> x, int multiplier, int shift)
    {
        // Shift counts are masked to 0..31 exactly as C#'s scalar << and >> mask them.
        int left = shift > 0 ? shift & 31 : 0;
        int right = shift > 0 ? 0 : -shift & 31;
        if (left != 0)
        {
            x = Vector256.ShiftLeft(x, left);
        }
        // SaturatingRoundingDoublingHighMul == floor((x*m + 2^30) / 2^31) whenever it does not saturate;
        // the low 32 bits of a logical shift equal those of the arithmetic one.
        Vector256<long> m = Vector256.Create((long)multiplier);
        Vector256<long> nudge = Vector256.Create(1L << 30);
        Vector256<long> lo = Vector256.ShiftRightLogical(Vector256.WidenLower(x) * m + nudge, 31);
        Vector256<long> hi = Vector256.ShiftRightLogical(Vector256.WidenUpper(x) * m + nudge, 31);
        Vector256<int> r = Vector256.Narrow(lo, hi);
        if (multiplier == int.MinValue)
        {
            Vector256<int> min = Vector256.Create(int.MinValue);
            r = Vector256.ConditionalSelect(Vector256.Equals(x, min), Vector256.Create(int.MaxValue), r);
        }
        if (right != 0)
        {
            Vector256<int> mask = Vector256.Create((1 << right) - 1);
            Vector256<int> remainder = r & mask;
            // Comparisons give -1 for true: subtracting them adds 1.
            Vector256<int> threshold = Vector256.ShiftRightArithmetic(mask, 1) - Vector256.LessThan(r, Vector256<int>.Zero);
            r = Vector256.ShiftRightArithmetic(r, right) - Vector256.GreaterThan(remainder, threshold);
        }
        return r;
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
        Vector256<int> passes = Vector256.GreaterThan(acc, Vector256<int>.Zero);
        if (maskMode == 2)
        {
            passes &= Vector256.LessThan(v, Vector256.Create(actMax));
        }
        maskBits = passes.ExtractMostSignificantBits();
        return Vector256.Max(Vector256.Min(v, Vector256.Create(actMax)), Vector256.Create(actMin));
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
    public static int Sum(Vector128<int> a) => Vector128.Sum(a);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> MultiplyByQuantizedMultiplier(Vector128<int> x, int multiplier, int shift)
    {
        // Same algorithm as Lanes256.MultiplyByQuantizedMultiplier; see the comments there.
        int left = shift > 0 ? shift & 31 : 0;
        int right = shift > 0 ? 0 : -shift & 31;
        if (left != 0)
        {
            x = Vector128.ShiftLeft(x, left);
        }
        Vector128<long> m = Vector128.Create((long)multiplier);
        Vector128<long> nudge = Vector128.Create(1L << 30);
        Vector128<long> lo = Vector128.ShiftRightLogical(Vector128.WidenLower(x) * m + nudge, 31);
        Vector128<long> hi = Vector128.ShiftRightLogical(Vector128.WidenUpper(x) * m + nudge, 31);
        Vector128<int> r = Vector128.Narrow(lo, hi);
        if (multiplier == int.MinValue)
        {
            Vector128<int> min = Vector128.Create(int.MinValue);
            r = Vector128.ConditionalSelect(Vector128.Equals(x, min), Vector128.Create(int.MaxValue), r);
        }
        if (right != 0)
        {
            Vector128<int> mask = Vector128.Create((1 << right) - 1);
            Vector128<int> remainder = r & mask;
            Vector128<int> threshold = Vector128.ShiftRightArithmetic(mask, 1) - Vector128.LessThan(r, Vector128<int>.Zero);
            r = Vector128.ShiftRightArithmetic(r, right) - Vector128.GreaterThan(remainder, threshold);
        }
        return r;
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
        Vector128<int> passes = Vector128.GreaterThan(acc, Vector128<int>.Zero);
        if (maskMode == 2)
        {
            passes &= Vector128.LessThan(v, Vector128.Create(actMax));
        }
        maskBits = passes.ExtractMostSignificantBits();
        return Vector128.Max(Vector128.Min(v, Vector128.Create(actMax)), Vector128.Create(actMin));
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
