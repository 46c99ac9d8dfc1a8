using TinyTrain.Runtime.Kernels;

namespace TinyTrain.Runtime.Tests.Kernels;

/// <summary>Kernel tests flip the global <see cref="KernelMode"/> switches, so they never run in parallel with each other.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class KernelModeCollection
{
    public const string Name = "KernelMode";
}

/// <summary>Every way a kernel can be dispatched; each must give the reference's bytes.</summary>
public enum KernelPath
{
    Reference,
    Simd256,
    Simd128,
    RunFast,
    RunReference,
}

/// <summary>Sets <see cref="KernelMode"/> for a scope and restores the defaults after it.</summary>
public readonly struct KernelModeScope : IDisposable
{
    public KernelModeScope(bool useFast, bool useVector256)
    {
        KernelMode.UseFast = useFast;
        KernelMode.UseVector256 = useVector256;
    }

    public void Dispose()
    {
        KernelMode.UseFast = true;
        KernelMode.UseVector256 = true;
    }
}

internal static class KernelTest
{
    public static readonly KernelPath[] AllPaths =
        [KernelPath.Reference, KernelPath.Simd256, KernelPath.Simd128, KernelPath.RunFast, KernelPath.RunReference];

    /// <summary>
    /// Runs <paramref name="exec"/> once per path on a fresh copy of the output buffer and asserts that every
    /// path leaves the whole buffer (output and the bytes around it) exactly as the reference does.
    /// exec(path, buffer) must call RunReference for Reference, RunSimd for Simd*, Run otherwise.
    /// </summary>
    public static byte[] AssertPathsAgree(byte[] initial, Action<KernelPath, byte[]> exec, string what)
    {
        byte[]? expected = null;
        foreach (KernelPath path in AllPaths)
        {
            byte[] buffer = (byte[])initial.Clone();
            using (Mode(path))
            {
                exec(path, buffer);
            }
            if (expected == null)
            {
                expected = buffer;
                continue;
            }
            int diff = FirstDifference(expected, buffer);
            if (diff >= 0)
            {
                Assert.Fail($"{what}: path {path} differs from the reference at byte {diff}: {(sbyte)buffer[diff]} vs {(sbyte)expected[diff]}");
            }
        }
        return expected!;
    }

    public static KernelModeScope Mode(KernelPath path) => path switch
    {
        KernelPath.Simd128 => new KernelModeScope(useFast: true, useVector256: false),
        KernelPath.RunReference => new KernelModeScope(useFast: false, useVector256: true),
        _ => new KernelModeScope(useFast: true, useVector256: true),
    };

    public static int FirstDifference(byte[] a, byte[] b)
    {
        for (int i = 0; i < a.Length; i++)
        {
            if (a[i] != b[i])
            {
                return i;
            }
        }
        return -1;
    }

    public static byte[] RandomBytes(Random rng, int length)
    {
        var b = new byte[length];
        rng.NextBytes(b);
        return b;
    }

    /// <summary>int8 weights in [-127, 127] (TFLite's symmetric range), now and then -128 too.</summary>
    public static void FillWeights(Random rng, byte[] buffer, int offset, int count)
    {
        bool allowMin = rng.Next(4) == 0;
        for (int i = 0; i < count; i++)
        {
            buffer[offset + i] = (byte)(sbyte)rng.Next(allowMin ? -128 : -127, 128);
        }
    }

    public static int ZeroPoint(Random rng) => rng.Next(4) switch
    {
        0 => -128,
        1 => 0,
        _ => rng.Next(-128, 128),
    };

    /// <summary>A Q31 multiplier as TFLite makes them, in [2^30, 2^31); now and then any int (negative, int.MinValue).</summary>
    public static int Multiplier(Random rng, bool anyInt = false)
    {
        if (anyInt && rng.Next(3) == 0)
        {
            return rng.Next(4) == 0 ? int.MinValue : rng.Next(int.MinValue, int.MaxValue);
        }
        return rng.Next(1 << 30, int.MaxValue) + rng.Next(2);
    }

    public static int Shift(Random rng) => rng.Next(-12, 2);

    /// <summary>[ActMin, ActMax]: mostly the full int8 range, sometimes a ReLU-like or random sub-range.</summary>
    public static (int Min, int Max) Activation(Random rng, int zeroPoint)
    {
        switch (rng.Next(5))
        {
            case 0:
                return (zeroPoint, 127);
            case 1:
                int a = rng.Next(-128, 128), b = rng.Next(-128, 128);
                return (Math.Min(a, b), Math.Max(a, b));
            default:
                return (-128, 127);
        }
    }

    /// <summary>Writes bias (optional), multiplier and shift arrays for <paramref name="channels"/> into a fresh constants image.</summary>
    public static byte[] Constants(Random rng, int channels, bool withBias, bool wideBias, bool anyMultiplier,
        out int biasOff, out int multOff, out int shiftOff)
    {
        int lead = rng.Next(0, 9);
        biasOff = withBias ? lead : -1;
        multOff = lead + 4 * channels + rng.Next(0, 5);
        shiftOff = multOff + 4 * channels + rng.Next(0, 5);
        var consts = RandomBytes(rng, shiftOff + 4 * channels + rng.Next(0, 5));
        for (int c = 0; c < channels; c++)
        {
            if (withBias)
            {
                WriteInt32(consts, biasOff + 4 * c, wideBias ? rng.Next(int.MinValue, int.MaxValue) : rng.Next(-40000, 40001));
            }
            WriteInt32(consts, multOff + 4 * c, Multiplier(rng, anyMultiplier));
            WriteInt32(consts, shiftOff + 4 * c, Shift(rng));
        }
        return consts;
    }

    public static byte[] Constants(int[]? bias, int[] multiplier, int[] shift, out int biasOff, out int multOff, out int shiftOff)
    {
        int n = multiplier.Length;
        biasOff = bias == null ? -1 : 0;
        multOff = 4 * n;
        shiftOff = 8 * n;
        var consts = new byte[12 * n];
        for (int c = 0; c < n; c++)
        {
            if (bias != null)
            {
                WriteInt32(consts, biasOff + 4 * c, bias[c]);
            }
            WriteInt32(consts, multOff + 4 * c, multiplier[c]);
            WriteInt32(consts, shiftOff + 4 * c, shift[c]);
        }
        return consts;
    }

    public static void WriteInt32(byte[] b, int offset, int value)
    {
        b[offset] = (byte)value;
        b[offset + 1] = (byte)(value >> 8);
        b[offset + 2] = (byte)(value >> 16);
        b[offset + 3] = (byte)(value >> 24);
    }

    public static byte[] Int8(params int[] values)
    {
        var b = new byte[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            b[i] = (byte)(sbyte)values[i];
        }
        return b;
    }

    public static int[] ReadInt8(byte[] b, int offset, int count)
    {
        var v = new int[count];
        for (int i = 0; i < count; i++)
        {
            v[i] = (sbyte)b[offset + i];
        }
        return v;
    }

    /// <summary>
    /// TFLite's QuantizeMultiplier: real = q * 2^shift with q in [0.5, 1) (frexp), multiplier = round(q * 2^31),
    /// renormalised when rounding reaches 2^31; below 2^-31 the multiplier is 0.
    /// </summary>
    public static (int Multiplier, int Shift) QuantizeMultiplier(double real)
    {
        if (real == 0)
        {
            return (0, 0);
        }
        int shift = Math.ILogB(real) + 1;
        double q = Math.ScaleB(real, -shift);
        long fixedPoint = (long)Math.Round(q * (1L << 31), MidpointRounding.AwayFromZero);
        if (fixedPoint == (1L << 31))
        {
            fixedPoint /= 2;
            shift++;
        }
        if (shift < -31)
        {
            return (0, 0);
        }
        return ((int)fixedPoint, shift);
    }
}
