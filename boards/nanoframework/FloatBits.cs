namespace TinyTrain.Runtime.Kernels;

/// <summary>
/// nanoFramework's stand-in for src/Runtime/Kernels/FloatBits.cs, the one runtime file this build swaps: the
/// core library has no Int32BitsToSingle / SingleToInt32Bits, so the float32 bits go through the double ones it
/// does have. float to double is exact, and so is every double that came from a float back to float, so the
/// bits are the same as the desktop's for every value (NaN payloads included, as far as the FPU keeps them).
/// Allocates nothing; assumes a little-endian host, as every nanoFramework target (Cortex-M, ESP32) is.
/// </summary>
public static class FloatBits
{
    /// <summary>The little-endian float32 at <paramref name="offset"/>.</summary>
    public static float Read(byte[] b, int offset)
    {
        return FromBits(b[offset] | (b[offset + 1] << 8) | (b[offset + 2] << 16) | (b[offset + 3] << 24));
    }

    /// <summary>Stores <paramref name="value"/> little-endian at <paramref name="offset"/>.</summary>
    public static void Write(byte[] b, int offset, float value)
    {
        int bits = ToBits(value);
        b[offset] = (byte)bits;
        b[offset + 1] = (byte)(bits >> 8);
        b[offset + 2] = (byte)(bits >> 16);
        b[offset + 3] = (byte)(bits >> 24);
    }

    /// <summary>The float whose IEEE 754 bits are <paramref name="bits"/>.</summary>
    public static float FromBits(int bits)
    {
        long sign = (long)(bits >> 31 & 1) << 63;
        int exponent = (bits >> 23) & 0xFF;
        long mantissa = bits & 0x007FFFFF;
        long d;
        if (exponent == 0xFF)
        {
            d = sign | (0x7FFL << 52) | (mantissa << 29);
        }
        else if (exponent == 0)
        {
            if (mantissa == 0)
            {
                d = sign;
            }
            else
            {
                // Subnormal float, a normal double: shift the leading 1 up to bit 23 (the implicit bit).
                int e = -126;
                while ((mantissa & 0x00800000) == 0)
                {
                    mantissa <<= 1;
                    e--;
                }
                d = sign | ((long)(e + 1023) << 52) | ((mantissa & 0x007FFFFF) << 29);
            }
        }
        else
        {
            d = sign | ((long)(exponent - 127 + 1023) << 52) | (mantissa << 29);
        }
        return (float)BitConverter.Int64BitsToDouble(d);
    }

    /// <summary>The IEEE 754 bits of <paramref name="value"/>.</summary>
    public static int ToBits(float value)
    {
        long d = BitConverter.DoubleToInt64Bits(value);
        int sign = (int)((d >> 63) & 1) << 31;
        int exponent = (int)((d >> 52) & 0x7FF);
        long mantissa = d & 0x000FFFFFFFFFFFFFL;
        if (exponent == 0x7FF)
        {
            return sign | 0x7F800000 | (int)(mantissa >> 29);
        }
        if (exponent == 0)
        {
            return sign; // a float's double is never subnormal: this is a signed zero
        }
        int e = exponent - 1023 + 127;
        if (e >= 1)
        {
            return sign | (e << 23) | (int)(mantissa >> 29);
        }
        // Subnormal float: the implicit 1 becomes a stored bit, shifted right by 1 - e.
        return sign | (int)((mantissa | (1L << 52)) >> (29 + 1 - e));
    }

    /// <summary>Whether <paramref name="value"/> is NaN.</summary>
    public static bool IsNaN(float value)
    {
        return float.IsNaN(value);
    }
}
