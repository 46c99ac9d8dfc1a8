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

    /// <summary>
    /// A fused ReLU mask request (<paramref name="maskMode"/> 0 none, 1 ReLU, 2 ReLU6). Mode 0 names no mask
    /// (null or <paramref name="maskOff"/> &lt; 0); modes 1 and 2 need ceil(count / 8) bytes that overlap none of
    /// the tensors the kernel reads or writes, since the kernels write the mask while they read them.
    /// </summary>
    public static void Mask(string op, byte[]? mask, int maskOff, int maskMode, long count,
        byte[] x, int xOff, long xLen, byte[] w, int wOff, long wLen, byte[] y, int yOff, long yLen)
    {
        if (maskMode < 0 || maskMode > 2)
        {
            throw new TinyTrainException($"{op}: maskMode is {maskMode}; it must be 0 (no mask), 1 (ReLU) or 2 (ReLU6).");
        }
        if (maskMode == 0)
        {
            if (mask != null && maskOff >= 0)
            {
                throw new TinyTrainException($"{op}: maskMode is 0 (no mask) but a mask at {maskOff} was given; pass null or maskOff -1, or maskMode 1 or 2.");
            }
            return;
        }
        if (mask == null || maskOff < 0)
        {
            throw new TinyTrainException($"{op}: maskMode {maskMode} needs a mask buffer and maskOff >= 0 (maskOff is {maskOff}).");
        }
        long maskLen = (count + 7) / 8;
        Range(op, "mask", mask, maskOff, maskLen);
        MaskApart(op, "x", x, xOff, xLen, mask, maskOff, maskLen);
        MaskApart(op, "w", w, wOff, wLen, mask, maskOff, maskLen);
        MaskApart(op, "y", y, yOff, yLen, mask, maskOff, maskLen);
    }

    private static void MaskApart(string op, string what, byte[] a, int aOff, long aLen, byte[] mask, int maskOff, long maskLen)
    {
        if (ReferenceEquals(a, mask) && aOff < maskOff + maskLen && maskOff < aOff + aLen)
        {
            throw new TinyTrainException(
                $"{op}: the mask [{maskOff}, {maskOff + maskLen}) overlaps {what} [{aOff}, {aOff + aLen}) in the same buffer; the planner must keep them apart.");
        }
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
