namespace TinyTrain.Runtime.Kernels;

/// <summary>
/// TFLite's fixed-point requantization (gemmlowp's SaturatingRoundingDoublingHighMul and
/// RoundingDivideByPOT) and the little-endian read of the plan's int32 constants. Portable: ints and
/// longs only, so it compiles for nanoFramework together with the reference kernels.
/// </summary>
public static class Quant
{
    /// <summary>The little-endian int32 at <paramref name="offset"/>, assembled byte by byte (any host endianness).</summary>
    public static int ReadInt32(byte[] b, int offset)
    {
        return b[offset] | (b[offset + 1] << 8) | (b[offset + 2] << 16) | (b[offset + 3] << 24);
    }

    /// <summary>
    /// round(a * b / 2^31), the high half of the doubled product; ties round toward +infinity (the same
    /// as ARM's VQRDMULH). The one product that does not fit, int.MinValue * int.MinValue, saturates.
    /// </summary>
    public static int SaturatingRoundingDoublingHighMul(int a, int b)
    {
        if (a == int.MinValue && b == int.MinValue)
        {
            return int.MaxValue;
        }
        long ab = (long)a * b;
        long nudge = ab >= 0 ? (1L << 30) : (1L - (1L << 30));
        return (int)((ab + nudge) / (1L << 31));
    }

    /// <summary>x / 2^exponent rounded to nearest, ties away from zero; exponent in [0, 31].</summary>
    public static int RoundingDivideByPOT(int x, int exponent)
    {
        int mask = (1 << exponent) - 1;
        int remainder = x & mask;
        int threshold = (mask >> 1) + (x < 0 ? 1 : 0);
        return (x >> exponent) + (remainder > threshold ? 1 : 0);
    }

    /// <summary>
    /// x * multiplier * 2^(shift - 31), TFLite's way: a left shift (shift &gt; 0) before the Q31 multiply,
    /// a rounding right shift (shift &lt; 0) after it. Overflow of the left shift wraps, as in C.
    /// </summary>
    public static int MultiplyByQuantizedMultiplier(int x, int multiplier, int shift)
    {
        int leftShift = shift > 0 ? shift : 0;
        int rightShift = shift > 0 ? 0 : -shift;
        return RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x * (1 << leftShift), multiplier), rightShift);
    }
}
