using System.Buffers;

namespace TinyTrain.Emulator.Corruptions;

/// <summary>Conversions between bytes and the [0, 1] doubles MNIST-C computes in, and pooled scratch.</summary>
internal static class Pixels
{
    /// <summary>A value on the 0..255 scale to a byte: clipped, then rounded half up (NaN gives 0).</summary>
    public static byte ToByte(double v)
    {
        if (!(v > 0)) return 0;
        if (v >= 254.5) return 255;
        return (byte)(v + 0.5);
    }

    /// <summary>A value in [0, 1] (clipped when outside) to a byte.</summary>
    public static byte UnitToByte(double v) => ToByte(v * 255.0);

    public static void ToUnit(ReadOnlySpan<byte> x, Span<double> unit)
    {
        for (int i = 0; i < x.Length; i++)
            unit[i] = x[i] / 255.0;
    }

    public static void FromUnit(ReadOnlySpan<double> unit, Span<byte> y)
    {
        for (int i = 0; i < y.Length; i++)
            y[i] = UnitToByte(unit[i]);
    }

    /// <summary>Scratch from the shared pool; after the first calls on a thread, renting allocates nothing.</summary>
    public static double[] Rent(int length) => ArrayPool<double>.Shared.Rent(length);

    public static void Return(double[] array) => ArrayPool<double>.Shared.Return(array);
}
