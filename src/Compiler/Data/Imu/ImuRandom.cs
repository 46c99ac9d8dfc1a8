namespace TinyTrain.Compiler.Data.Imu;

/// <summary>The IMU generator's random numbers: SplitMix64 with uniform and normal draws, so a seed gives one sequence everywhere.</summary>
public struct ImuRandom
{
    private ulong _state;

    public ImuRandom(ulong seed) => _state = seed;

    /// <summary>A seed for item <paramref name="index"/> of stream <paramref name="stream"/>, independent of the others.</summary>
    public static ulong Mix(ulong seed, ulong stream, ulong index)
    {
        var r = new ImuRandom(seed ^ (stream * 0xD1B54A32D192ED03UL) ^ (index * 0x9E3779B97F4A7C15UL));
        r.NextUInt64();
        return r.NextUInt64();
    }

    public ulong NextUInt64()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, 1).</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    public double Uniform(double low, double high) => low + (high - low) * NextDouble();

    /// <summary>Standard normal (Box-Muller, one of the pair).</summary>
    public double Gaussian()
    {
        double u1 = 1.0 - NextDouble(), u2 = NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
