namespace TinyTrain.Runtime.Kernels;

/// <summary>
/// Argument checks shared by the training kernels, on top of <see cref="KernelChecks"/>. They run once per
/// call, before any loop; nothing allocates unless a check fails.
/// </summary>
internal static class TrainingChecks
{
    /// <summary>The buffer holds <paramref name="count"/> float32 from <paramref name="offset"/>.</summary>
    public static void Floats(string op, string what, byte[] buffer, int offset, long count)
    {
        KernelChecks.Range(op, what, buffer, offset, 4 * count);
    }

    /// <summary>A quantization scale: positive and finite.</summary>
    public static void Scale(string op, string field, float value)
    {
        if (!(value > 0 && value <= float.MaxValue))
        {
            throw new TinyTrainException($"{op}: {field} is {value}; a quantization scale must be positive and finite.");
        }
    }

    /// <summary><paramref name="count"/> float32 weight scales, each positive and finite (QAS divides by them).</summary>
    public static void Scales(string op, byte[] scales, int offset, int count)
    {
        Floats(op, "scales", scales, offset, count);
        for (int i = 0; i < count; i++)
        {
            float s = FloatBits.Read(scales, offset + 4 * i);
            if (!(s > 0 && s <= float.MaxValue))
            {
                throw new TinyTrainException(
                    $"{op}: scales[{i}] is {s}; every weight scale must be positive and finite (check the Multiplier offset of the op).");
            }
        }
    }

    public static void Rule(string op, in UpdateRule rule)
    {
        if (!(rule.LearningRate >= 0 && rule.LearningRate <= float.MaxValue))
        {
            throw new TinyTrainException($"{op}: LearningRate is {rule.LearningRate}; it must be finite and not negative.");
        }
        if (!(rule.Momentum >= 0 && rule.Momentum < 1))
        {
            throw new TinyTrainException($"{op}: Momentum is {rule.Momentum}; it must lie in [0, 1).");
        }
    }

    public static void Rng(string op, uint rng)
    {
        if (rng == 0)
        {
            throw new TinyTrainException(
                $"{op}: rng is 0; xorshift32 would stay at 0 and round every update down. Seed it with StochasticRounding.DefaultSeed or any nonzero value.");
        }
    }

    /// <summary>First trained input channels (or inputs) per filter: 0 up to all of them.</summary>
    public static void TrainChannels(string op, int trainChannels, int available, string what)
    {
        if (trainChannels < 0 || trainChannels > available)
        {
            throw new TinyTrainException($"{op}: trainChannels is {trainChannels}; it must lie in [0, {available}] ({what}).");
        }
    }

    /// <summary>Refuses two regions of one buffer that overlap. An offset below 0 means the region is absent.</summary>
    public static void Apart(string op, string a, byte[] x, int xOff, long xLen, string b, byte[] y, int yOff, long yLen)
    {
        if (xOff >= 0 && yOff >= 0 && ReferenceEquals(x, y) && xOff < yOff + yLen && yOff < xOff + xLen)
        {
            throw new TinyTrainException(
                $"{op}: {b} [{yOff}, {yOff + yLen}) overlaps {a} [{xOff}, {xOff + xLen}) in the same buffer; the planner must keep them apart.");
        }
    }

    /// <summary>An elementwise output may sit exactly on its input (in place) or apart from it, never half over it.</summary>
    public static void SameOrApart(string op, string input, byte[] x, int xOff, string output, byte[] y, int yOff, long len)
    {
        if (ReferenceEquals(x, y) && xOff != yOff && xOff < yOff + len && yOff < xOff + len)
        {
            throw new TinyTrainException(
                $"{op}: {output} [{yOff}, {yOff + len}) partly overlaps {input} [{xOff}, {xOff + len}); it must be the same region (in place) or apart.");
        }
    }

    /// <summary>
    /// The buffers of a weight update: x (int8) and dy (float32) and scales are read; w (int8), bias (int32) and
    /// state (float32) are written when their offsets are not negative. Each must fit, and no written region may
    /// overlap another region.
    /// </summary>
    public static void UpdateBuffers(string op, byte[] x, int xOff, long xLen, byte[] dy, int dyOff, long dyCount,
        byte[] scales, int scaleOff, int channels, byte[] w, int wOff, long wLen, byte[] bias, int biasOff,
        byte[] state, int stateOff, long stateCount)
    {
        KernelChecks.Range(op, "x", x, xOff, xLen);
        Floats(op, "dy", dy, dyOff, dyCount);
        Scales(op, scales, scaleOff, channels);
        long dyLen = 4 * dyCount;
        long scalesLen = 4L * channels;
        long biasLen = 4L * channels;
        long stateLen = 4 * stateCount;
        if (wOff >= 0)
        {
            KernelChecks.Range(op, "w", w, wOff, wLen);
        }
        if (biasOff >= 0)
        {
            KernelChecks.Range(op, "bias", bias, biasOff, biasLen);
        }
        if (stateOff >= 0)
        {
            Floats(op, "state", state, stateOff, stateCount);
        }
        Written(op, "w", w, wOff, wLen, x, xOff, xLen, dy, dyOff, dyLen, scales, scaleOff, scalesLen);
        Written(op, "bias", bias, biasOff, biasLen, x, xOff, xLen, dy, dyOff, dyLen, scales, scaleOff, scalesLen);
        Written(op, "state", state, stateOff, stateLen, x, xOff, xLen, dy, dyOff, dyLen, scales, scaleOff, scalesLen);
        Apart(op, "w", w, wOff, wLen, "bias", bias, biasOff, biasLen);
        Apart(op, "w", w, wOff, wLen, "state", state, stateOff, stateLen);
        Apart(op, "bias", bias, biasOff, biasLen, "state", state, stateOff, stateLen);
    }

    private static void Written(string op, string what, byte[] y, int yOff, long yLen, byte[] x, int xOff, long xLen,
        byte[] dy, int dyOff, long dyLen, byte[] scales, int scaleOff, long scalesLen)
    {
        Apart(op, "x", x, xOff, xLen, what, y, yOff, yLen);
        Apart(op, "dy", dy, dyOff, dyLen, what, y, yOff, yLen);
        Apart(op, "scales", scales, scaleOff, scalesLen, what, y, yOff, yLen);
    }
}
