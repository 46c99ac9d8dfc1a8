namespace TinyTrain.Emulator.Corruptions;

/// <summary>
/// The corruptions' random numbers: SplitMix64 (Steele, Lea and Flood 2014; Vigna's constants), with its own uniform,
/// integer, normal and Poisson draws built only from integer and IEEE basic arithmetic and DeterministicMath, so a seed
/// gives the same draws on every machine and .NET version (System.Random and libm promise neither).
/// </summary>
internal struct SplitMix64
{
    private ulong _state;

    public SplitMix64(ulong seed) => _state = seed;

    public ulong NextUInt64()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, 1), a multiple of 2^-53.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in [low, high), as numpy.random.uniform.</summary>
    public double NextUniform(double low, double high) => low + (high - low) * NextDouble();

    /// <summary>Uniform integer in [low, high) (high exclusive, as numpy.random.randint), without modulo bias.</summary>
    public int NextInt(int low, int high)
    {
        if (high <= low)
            throw new ArgumentOutOfRangeException(nameof(high), $"Empty range [{low}, {high}).");
        ulong n = (ulong)((long)high - low);
        // Lemire's multiply-shift with rejection of the few low products that would bias the result.
        ulong hi = Math.BigMul(NextUInt64(), n, out ulong lo);
        if (lo < n)
        {
            ulong threshold = (0 - n) % n;
            while (lo < threshold)
                hi = Math.BigMul(NextUInt64(), n, out lo);
        }
        return (int)(low + (long)hi);
    }

    /// <summary>-1 or +1 with equal chance, as numpy.random.choice([-1, 1]).</summary>
    public int NextSign() => (NextUInt64() >> 63) == 0 ? -1 : 1;

    /// <summary>Standard normal by Box-Muller (one of the pair; the other is dropped so draws stay one per call).</summary>
    public double NextGaussian()
    {
        double u1 = 1.0 - NextDouble(); // (0, 1]: Log stays finite
        double u2 = NextDouble();
        return Math.Sqrt(-2.0 * DeterministicMath.Log(u1)) * DeterministicMath.Cos(2.0 * Math.PI * u2);
    }

    /// <summary>
    /// Poisson with the given mean: Knuth's product of uniforms below 30, else the normal approximation rounded and
    /// clipped at 0 (a mean that large only arises at severities near 0, where shot noise is faint anyway).
    /// </summary>
    public int NextPoisson(double mean)
    {
        if (!(mean > 0))
            return 0;
        if (mean < 30)
        {
            double limit = DeterministicMath.Exp(-mean);
            int k = 0;
            double product = NextDouble();
            while (product > limit)
            {
                k++;
                product *= NextDouble();
            }
            return k;
        }
        double v = mean + Math.Sqrt(mean) * NextGaussian();
        return v <= 0 ? 0 : (int)Math.Floor(v + 0.5);
    }
}
