namespace TinyTrain.Runtime.Kernels;

/// <summary>
/// Argument checks shared by the kernels' public entries. They run once per call, before any loop, so
/// that the fast paths may read and write without per-element bounds checks. Nothing allocates unless
/// a check fails.
/// </summary>
internal static class KernelChecks
{
    public static void Positive(string op, string field, int value)
    {
        if (value < 1)
        {
            throw new TinyTrainException($"{op}: {field} is {value}; it must be at least 1.");
        }
    }

    public static void Int8(string op, string field, int value)
    {
        if (value < -128 || value > 127)
        {
            throw new TinyTrainException($"{op}: {field} is {value}; an int8 value must lie in [-128, 127].");
        }
    }

    public static void Activation(string op, int actMin, int actMax)
    {
        Int8(op, "ActMin", actMin);
        Int8(op, "ActMax", actMax);
        if (actMin > actMax)
        {
            throw new TinyTrainException($"{op}: ActMin {actMin} is above ActMax {actMax}; the clamp range is empty.");
        }
    }

    public static void Output(string op, string field, int given, int expected, string formula)
    {
        if (given != expected)
        {
            throw new TinyTrainException($"{op}: {field} is {given} but {formula} gives {expected}; the plan's shapes disagree.");
        }
    }

    /// <summary>The buffer holds bytes [offset, offset + length).</summary>
    public static void Range(string op, string what, byte[] buffer, int offset, long length)
    {
        if (offset < 0 || offset + length > buffer.Length)
        {
            throw new TinyTrainException(
                $"{op}: {what} needs bytes [{offset}, {offset + length}) but its buffer holds {buffer.Length}; check the offset and the shape.");
        }
    }

    /// <summary>Bias (optional, offset &lt; 0 = none), multiplier and shift: <paramref name="channels"/> int32 each.</summary>
    public static void Constants(string op, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff, int channels)
    {
        long bytes = 4L * channels;
        if (biasOff >= 0)
        {
            Range(op, "bias", biases, biasOff, bytes);
        }
        Range(op, "multiplier", consts, multOff, bytes);
        Range(op, "shift", consts, shiftOff, bytes);
    }

    /// <summary>Refuses an output that overlaps an input: the kernels read inputs after writing outputs.</summary>
    public static void Disjoint(string op, string input, byte[] x, int xOff, long xLen, byte[] y, int yOff, long yLen)
    {
        if (ReferenceEquals(x, y) && xOff < yOff + yLen && yOff < xOff + xLen)
        {
            throw new TinyTrainException(
                $"{op}: the output [{yOff}, {yOff + yLen}) overlaps {input} [{xOff}, {xOff + xLen}) in the same buffer; the planner must keep them apart.");
        }
    }
}
