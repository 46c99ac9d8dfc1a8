namespace TinyTrain.Runtime.Kernels;

/// <summary>
/// float32 values stored little-endian in a byte[] (gradients in the arena, weight scales in Constants,
/// optimizer state). The one place that turns bits into floats, so that a nanoFramework build, which lacks
/// BitConverter's Int32BitsToSingle, can swap this file alone.
/// </summary>
public static class FloatBits
{
    /// <summary>The little-endian float32 at <paramref name="offset"/> (any host endianness).</summary>
    public static float Read(byte[] b, int offset)
    {
        int bits = b[offset] | (b[offset + 1] << 8) | (b[offset + 2] << 16) | (b[offset + 3] << 24);
        return BitConverter.Int32BitsToSingle(bits);
    }

    /// <summary>Stores <paramref name="value"/> little-endian at <paramref name="offset"/>.</summary>
    public static void Write(byte[] b, int offset, float value)
    {
        int bits = BitConverter.SingleToInt32Bits(value);
        b[offset] = (byte)bits;
        b[offset + 1] = (byte)(bits >> 8);
        b[offset + 2] = (byte)(bits >> 16);
        b[offset + 3] = (byte)(bits >> 24);
    }

    /// <summary>The float whose IEEE 754 bits are <paramref name="bits"/>.</summary>
    public static float FromBits(int bits)
    {
        return BitConverter.Int32BitsToSingle(bits);
    }

    /// <summary>The IEEE 754 bits of <paramref name="value"/>.</summary>
    public static int ToBits(float value)
    {
        return BitConverter.SingleToInt32Bits(value);
    }

    /// <summary>Whether <paramref name="value"/> is NaN, from its bits (no Single.IsNaN needed).</summary>
    public static bool IsNaN(float value)
    {
        return (BitConverter.SingleToInt32Bits(value) & 0x7FFFFFFF) > 0x7F800000;
    }
}
