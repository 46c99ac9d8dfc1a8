namespace TinyTrain.Runtime.Kernels;

/// <summary>
/// Rounds an update to an integer at random, up with probability equal to its fraction, so that the
/// expected applied step equals the real one: int8 weights then keep learning from updates smaller than
/// one quantization step (the point of the 256 KB paper's update rule). The generator is xorshift32
/// (Marsaglia, shifts 13, 17, 5): one uint of state, never 0, seeded with <see cref="DefaultSeed"/> unless
/// the caller picks another.
/// </summary>
public static class StochasticRounding
{
    /// <summary>The seed a runtime starts from (2^32 / golden ratio); any nonzero value works.</summary>
    public const uint DefaultSeed = 0x9E3779B9u;

    /// <summary>Results are saturated to +-2^30, far beyond any int8 or int32 step that matters.</summary>
    public const int Limit = 1 << 30;

    /// <summary>Advances the xorshift32 state and returns it. A zero state (which would stay 0) restarts at <see cref="DefaultSeed"/>.</summary>
    public static uint Next(ref uint state)
    {
        uint s = state == 0 ? DefaultSeed : state;
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        state = s;
        return s;
    }

    /// <summary>
    /// floor(v + u) in distribution, u uniform in [0, 1): floor(v) or floor(v) + 1 with E = v. Computed on |v|
    /// as trunc(|v|) + (x &lt; ceil(frac(|v|) * 2^32)) with a 32-bit draw x, so that fractions down to 2^-32
    /// round up as often as they should, for either sign. NaN gives 0; |v| &gt;= 2^30 saturates. Draws once per call.
    /// </summary>
    public static int Round(float v, ref uint state)
    {
        uint x = Next(ref state);
        if (FloatBits.IsNaN(v))
        {
            return 0;
        }
        bool negative = v < 0;
        float m = negative ? -v : v;
        if (m >= Limit)
        {
            return negative ? -Limit : Limit;
        }
        int whole = (int)m;
        float fraction = m - whole;
        // fraction * 2^32 is exact (a power-of-two scale) and below 2^32; its ceiling is how many of the
        // 2^32 draws round up.
        float scaled = fraction * 4294967296f;
        long threshold = (long)scaled;
        if (threshold < scaled)
        {
            threshold++;
        }
        int r = whole + (x < threshold ? 1 : 0);
        return negative ? -r : r;
    }
}
