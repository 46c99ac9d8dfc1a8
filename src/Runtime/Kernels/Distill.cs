namespace TinyTrain.Runtime.Kernels;

/// <summary>
/// EcoTTA's self-distilled regularization (Song et al. 2023) at a meta network's join: the augmented output is the
/// frozen part's output x plus the meta network's output m, so the L1 distance between them is |m|, and its gradient
/// is a sign. Reference code only: plain loops over arrays and offsets; nothing allocates unless a check fails.
/// </summary>
public static class Distill
{
    /// <summary>
    /// m (count) int8 with zero point zeroPoint; dy, dm (count) float32. dm = dy + weight * sign(m - zeroPoint): the
    /// gradient of (loss + weight * sum |m|) w.r.t. m, where dy is the gradient the loss sends to the join's output.
    /// dm may be dy itself.
    /// </summary>
    public static void Gradient(byte[] m, int mOff, int zeroPoint, byte[] dy, int dyOff, int count, float weight, byte[] dm, int dmOff)
    {
        const string op = "Distill.Gradient";
        KernelChecks.Positive(op, "count", count);
        KernelChecks.Int8(op, "zeroPoint", zeroPoint);
        KernelChecks.Range(op, "m", m, mOff, count);
        TrainingChecks.Floats(op, "dy", dy, dyOff, count);
        TrainingChecks.Floats(op, "dm", dm, dmOff, count);
        TrainingChecks.SameOrApart(op, "dy", dy, dyOff, "dm", dm, dmOff, 4L * count);
        TrainingChecks.Apart(op, "m", m, mOff, count, "dm", dm, dmOff, 4L * count);

        for (int i = 0; i < count; i++)
        {
            int q = (sbyte)m[mOff + i] - zeroPoint;
            float g = FloatBits.Read(dy, dyOff + 4 * i);
            if (q > 0) g += weight;
            else if (q < 0) g -= weight;
            FloatBits.Write(dm, dmOff + 4 * i, g);
        }
    }
}
