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

    // Scratch kept per thread, handed out last-in first-out (rents nest inside one corruption): after the
    // first calls on a thread, renting allocates nothing. (ArrayPool.Shared may drop its caches on a GC.)
    [ThreadStatic] private static double[][]? _scratch;
    [ThreadStatic] private static int _depth;

    /// <summary>Scratch of at least <paramref name="length"/> doubles; give it back with <see cref="Return"/>, last rented first.</summary>
    public static double[] Rent(int length)
    {
        _scratch ??= new double[8][];
        if (_depth == _scratch.Length) Array.Resize(ref _scratch, 2 * _scratch.Length);
        double[]? array = _scratch[_depth];
        if (array is null || array.Length < length) _scratch[_depth] = array = new double[Math.Max(length, 1024)];
        _depth++;
        return array;
    }

    public static void Return(double[] array)
    {
        if (_depth == 0 || !ReferenceEquals(_scratch![_depth - 1], array))
            throw new InvalidOperationException("Pixels.Return: scratch given back out of order");
        _depth--;
    }
}
