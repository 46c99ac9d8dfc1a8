namespace TinyTrain.Runtime.Ood;

using TinyTrain.Runtime.Kernels;

/// <summary>
/// The seeded random bipolar projection of int8 features to D dimensions: h_d = sum_j s_dj (x_j - zp) with
/// s_dj in {-1, +1}. The D x F signs are never stored (they would not fit a board): the 32 signs of one
/// projection word for one feature come from a counter-based generator, SplitMix32 (a Weyl step on the
/// counter word * F + feature + 1, offset by the seed, then MurmurHash3's 32-bit finalizer). So any word can be
/// computed alone, in any order, and features equal to their zero point cost nothing. Reference code:
/// arrays, offsets and ints; nothing allocates unless a check fails.
/// </summary>
public static class HdProjection
{
    /// <summary>Features beyond this could overflow an int32 accumulator (|x - zp| &lt;= 255 each).</summary>
    public const int MaxFeatures = int.MaxValue / 512;

    /// <summary>The signs of dimensions 32 word .. 32 word + 31 for one feature: bit b set = +1, clear = -1.</summary>
    public static uint Signs(uint seed, int word, int feature, int features)
    {
        uint z = seed + ((uint)word * (uint)features + (uint)feature + 1u) * 0x9E3779B9u;
        z = (z ^ (z >> 16)) * 0x85EBCA6Bu;
        z = (z ^ (z >> 13)) * 0xC2B2AE35u;
        return z ^ (z >> 16);
    }

    /// <summary>Scratch ints a projection word needs: 8 four-bit lanes x 16 sums (see <see cref="ProjectWord"/>).</summary>
    public const int BucketCount = 8 * 16;

    /// <summary>
    /// One projection word: h (32 int32 at hOff) = dimensions 32 word .. 32 word + 31 of the projection of x
    /// (features int8 at xOff, zero point zeroPoint); buckets is <see cref="BucketCount"/> ints of scratch.
    /// Returns how many features differ from the zero point.
    /// </summary>
    /// <remarks>
    /// Rather than 32 conditional adds per feature, each feature's value is added to one bucket per 4-bit lane,
    /// the one its 4 signs select (8 adds); each dimension's +1 part is then the sum of the 8 buckets of its lane
    /// whose index has its bit set, and h = 2 * that - total. Exact integer sums, so equal to the definition.
    /// </remarks>
    public static int ProjectWord(uint seed, int word, byte[] x, int xOff, int features, int zeroPoint, int[] buckets, int[] h, int hOff)
    {
        const string op = "HdProjection.ProjectWord";
        CheckFeatures(op, x, xOff, features, zeroPoint);
        if (word < 0)
        {
            throw new TinyTrainException($"{op}: word is {word}; it must be at least 0.");
        }
        CheckScratch(op, buckets, h, hOff, HdConfig.WordDimensions);
        return Word(seed, word, x, xOff, features, zeroPoint, buckets, h, hOff);
    }

    /// <summary>The whole projection: h (dimensions int32 at hOff), dimensions a positive multiple of 32.</summary>
    public static void Project(uint seed, int dimensions, byte[] x, int xOff, int features, int zeroPoint, int[] buckets, int[] h, int hOff)
    {
        const string op = "HdProjection.Project";
        CheckFeatures(op, x, xOff, features, zeroPoint);
        if (dimensions < HdConfig.WordDimensions || dimensions % HdConfig.WordDimensions != 0)
        {
            throw new TinyTrainException($"{op}: D is {dimensions}; it must be a positive multiple of {HdConfig.WordDimensions}.");
        }
        CheckScratch(op, buckets, h, hOff, dimensions);
        int words = dimensions / HdConfig.WordDimensions;
        for (int w = 0; w < words; w++)
        {
            Word(seed, w, x, xOff, features, zeroPoint, buckets, h, hOff + w * HdConfig.WordDimensions);
        }
    }

    // Checked by the caller.
    internal static int Word(uint seed, int word, byte[] x, int xOff, int features, int zeroPoint, int[] buckets, int[] h, int hOff)
    {
        for (int i = 0; i < BucketCount; i++)
        {
            buckets[i] = 0;
        }
        int total = 0, active = 0;
        for (int j = 0; j < features; j++)
        {
            int v = (sbyte)x[xOff + j] - zeroPoint;
            if (v == 0)
            {
                continue;
            }
            total += v;
            active++;
            uint s = Signs(seed, word, j, features);
            buckets[(int)(s & 15u)] += v;
            buckets[16 + (int)((s >> 4) & 15u)] += v;
            buckets[32 + (int)((s >> 8) & 15u)] += v;
            buckets[48 + (int)((s >> 12) & 15u)] += v;
            buckets[64 + (int)((s >> 16) & 15u)] += v;
            buckets[80 + (int)((s >> 20) & 15u)] += v;
            buckets[96 + (int)((s >> 24) & 15u)] += v;
            buckets[112 + (int)(s >> 28)] += v;
        }
        for (int lane = 0; lane < 8; lane++)
        {
            for (int bit = 0; bit < 4; bit++)
            {
                int positive = 0;
                for (int n = 0; n < 16; n++)
                {
                    if (((n >> bit) & 1) != 0)
                    {
                        positive += buckets[lane * 16 + n];
                    }
                }
                h[hOff + lane * 4 + bit] = 2 * positive - total;
            }
        }
        return active;
    }

    private static void CheckScratch(string op, int[] buckets, int[] h, int hOff, int dimensions)
    {
        if (buckets.Length < BucketCount)
        {
            throw new TinyTrainException($"{op}: buckets holds {buckets.Length} ints; it needs {BucketCount}.");
        }
        if (hOff < 0 || hOff > h.Length - dimensions)
        {
            throw new TinyTrainException($"{op}: h needs {dimensions} values from {hOff} but holds {h.Length}.");
        }
        if (ReferenceEquals(buckets, h))
        {
            throw new TinyTrainException($"{op}: buckets and h are the same array; pass separate ones.");
        }
    }

    internal static void CheckFeatures(string op, byte[] x, int xOff, int features, int zeroPoint)
    {
        KernelChecks.Positive(op, "features", features);
        if (features > MaxFeatures)
        {
            throw new TinyTrainException($"{op}: {features} features; at most {MaxFeatures} fit the int32 accumulators.");
        }
        KernelChecks.Int8(op, "zeroPoint", zeroPoint);
        KernelChecks.Range(op, "x", x, xOff, features);
    }
}
