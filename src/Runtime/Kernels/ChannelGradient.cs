namespace TinyTrain.Runtime.Kernels;

/// <summary>
/// The parts of a 1x1 conv's input gradient and of a mask gradient that touch one channel plane, for a
/// <see cref="Plans.OpKind.ChannelStage"/>: each computes exactly the values (and float sums in exactly the
/// order) of <see cref="Conv2D.BackwardInputReference"/> and <see cref="Training.MaskGradient"/> on the whole
/// tensors, restricted to channel c. Reference code only: plain loops, portable to nanoFramework.
/// </summary>
public static class ChannelGradient
{
    /// <summary>
    /// Plane c of a 1x1 conv's input gradient: dx[c, i] = Σ over o ascending of (0 + dy[o, i] * w_q[o, c]) * s_w[o],
    /// the sum starting at +0, as the whole kernel sums it.
    ///   dy (outC, plane) float32, w (outC, inC) int8, scales (outC) float32, dx: one plane (plane) float32.
    /// </summary>
    public static void Column(byte[] dy, int dyOff, int outC, int plane, byte[] w, int wOff, int inC, int c, byte[] scales, int scaleOff,
        byte[] dx, int dxOff)
    {
        const string op = "ChannelGradient.Column";
        CheckSizes(op, outC, inC, plane, c, inC);
        TrainingChecks.Floats(op, "dy", dy, dyOff, (long)outC * plane);
        KernelChecks.Range(op, "w", w, wOff, (long)outC * inC);
        TrainingChecks.Floats(op, "scales", scales, scaleOff, outC);
        TrainingChecks.Floats(op, "dx", dx, dxOff, plane);
        TrainingChecks.Apart(op, "dy", dy, dyOff, 4L * outC * plane, "dx", dx, dxOff, 4L * plane);
        for (int i = 0; i < plane; i++)
        {
            float sum = 0f;
            for (int o = 0; o < outC; o++)
            {
                float acc = 0f;
                acc += FloatBits.Read(dy, dyOff + 4 * (o * plane + i)) * (sbyte)w[wOff + o * inC + c];
                sum += acc * FloatBits.Read(scales, scaleOff + 4 * o);
            }
            FloatBits.Write(dx, dxOff + 4 * i, sum);
        }
    }

    /// <summary>
    /// Row c's part of a 1x1 conv's input gradient: dx[ic, i] (+)= (0 + dy_c[i] * w_q[c, ic]) * s_w[c] for every ic, the
    /// term of output channel c in the whole kernel's sum over o ascending. first (c = 0): dx = +0 + term (the sum's start).
    ///   dy_c: plane c (plane) float32, w (outC, inC) int8 with row c at wOff + c * inC, dx (inC, plane) float32.
    /// </summary>
    public static void Row(byte[] dy, int dyOff, int plane, byte[] w, int wOff, int inC, int c, byte[] scales, int scaleOff,
        byte[] dx, int dxOff, bool first)
    {
        const string op = "ChannelGradient.Row";
        CheckSizes(op, 1, inC, plane, c, int.MaxValue);
        TrainingChecks.Floats(op, "dy", dy, dyOff, plane);
        KernelChecks.Range(op, "w", w, wOff + c * inC, inC);
        TrainingChecks.Floats(op, "scales", scales, scaleOff + 4 * c, 1);
        TrainingChecks.Floats(op, "dx", dx, dxOff, (long)inC * plane);
        TrainingChecks.Apart(op, "dy", dy, dyOff, 4L * plane, "dx", dx, dxOff, 4L * inC * plane);
        float s = FloatBits.Read(scales, scaleOff + 4 * c);
        for (int ic = 0; ic < inC; ic++)
        {
            int wq = (sbyte)w[wOff + c * inC + ic];
            for (int i = 0; i < plane; i++)
            {
                float acc = 0f;
                acc += FloatBits.Read(dy, dyOff + 4 * i) * wq;
                int at = dxOff + 4 * (ic * plane + i);
                float sum = first ? 0f : FloatBits.Read(dx, at);
                sum += acc * s;
                FloatBits.Write(dx, at, sum);
            }
        }
    }

    /// <summary>
    /// dz = dy * mask for one plane whose mask bits start at bit firstBit of the mask (LSB first in each byte), as
    /// <see cref="Training.MaskGradient"/> does for the whole tensor; dz may be dy itself.
    /// </summary>
    public static void Mask(byte[] mask, int maskOff, long firstBit, byte[] dy, int dyOff, int plane, byte[] dz, int dzOff)
    {
        const string op = "ChannelGradient.Mask";
        KernelChecks.Positive(op, "plane", plane);
        if (firstBit < 0)
        {
            throw new TinyTrainException($"{op}: first bit {firstBit} is negative.");
        }
        KernelChecks.Range(op, "mask", mask, maskOff, (firstBit + plane + 7) / 8);
        TrainingChecks.Floats(op, "dy", dy, dyOff, plane);
        TrainingChecks.Floats(op, "dz", dz, dzOff, plane);
        TrainingChecks.SameOrApart(op, "dy", dy, dyOff, "dz", dz, dzOff, 4L * plane);
        for (int i = 0; i < plane; i++)
        {
            long bit = firstBit + i;
            bool pass = ((mask[maskOff + (int)(bit >> 3)] >> (int)(bit & 7)) & 1) != 0;
            FloatBits.Write(dz, dzOff + 4 * i, pass ? FloatBits.Read(dy, dyOff + 4 * i) : 0f);
        }
    }

    private static void CheckSizes(string op, int outC, int inC, int plane, int c, int channels)
    {
        KernelChecks.Positive(op, "outC", outC);
        KernelChecks.Positive(op, "inC", inC);
        KernelChecks.Positive(op, "plane", plane);
        if (c < 0 || c >= channels)
        {
            throw new TinyTrainException($"{op}: channel {c} is outside 0..{channels - 1}.");
        }
    }
}
