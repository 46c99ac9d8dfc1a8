namespace TinyTrain.Runtime.Kernels;

/// <summary>
/// The entropy objective of test-time adaptation (Tent, Wang et al. 2021): no label, the model is pushed towards
/// confident predictions. Reference code: plain loops, <see cref="FloatMath"/>, no allocation unless a check fails.
/// </summary>
public static class Entropy
{
    /// <summary>
    /// H = -sum_i p_i log p_i of p = softmax(z), z = (q - zp) * scale over k int8 logits; writes dH/dz_i = -p_i (log p_i + H)
    /// into d (k float32) and returns H. When H is above <paramref name="threshold"/> (EATA's filter of unreliable
    /// samples; +infinity = no filter) d is all zeros instead.
    /// </summary>
    public static float Gradient(byte[] logits, int off, int k, float scale, int zeroPoint, float threshold, byte[] d, int dOff)
    {
        const string op = "Entropy.Gradient";
        KernelChecks.Positive(op, "k", k);
        TrainingChecks.Scale(op, "scale", scale);
        KernelChecks.Int8(op, "zeroPoint", zeroPoint);
        KernelChecks.Range(op, "logits", logits, off, k);
        TrainingChecks.Floats(op, "d", d, dOff, k);
        TrainingChecks.Apart(op, "logits", logits, off, k, "d", d, dOff, 4L * k);

        int max = (sbyte)logits[off];
        for (int i = 1; i < k; i++)
        {
            int q = (sbyte)logits[off + i];
            if (q > max)
            {
                max = q;
            }
        }
        // log p_i = t_i - log sum, t_i = (q_i - max) * scale <= 0.
        float sum = 0f;
        for (int i = 0; i < k; i++)
        {
            sum += FloatMath.Exp(((sbyte)logits[off + i] - max) * scale);
        }
        float logSum = FloatMath.Log(sum);
        float h = 0f;
        for (int i = 0; i < k; i++)
        {
            float logP = ((sbyte)logits[off + i] - max) * scale - logSum;
            float p = FloatMath.Exp(logP);
            FloatBits.Write(d, dOff + 4 * i, logP);
            h -= p * logP;
        }
        bool skip = h > threshold;
        for (int i = 0; i < k; i++)
        {
            int at = dOff + 4 * i;
            float logP = FloatBits.Read(d, at);
            FloatBits.Write(d, at, skip ? 0f : -FloatMath.Exp(logP) * (logP + h));
        }
        return h;
    }
}
