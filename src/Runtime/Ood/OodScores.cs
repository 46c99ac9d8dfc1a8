namespace TinyTrain.Runtime.Ood;

using TinyTrain.Runtime.Kernels;

/// <summary>
/// Out-of-distribution scores of int8 logits, higher = more in-distribution. The logits are dequantized as
/// z = (q - zeroPoint) * scale. Reference code: plain loops over arrays and offsets, <see cref="FloatMath"/>
/// instead of System.Math, no allocation unless a check fails.
/// </summary>
public static class OodScores
{
    /// <summary>
    /// Maximum softmax probability (Hendrycks and Gimpel 2017): max_i softmax(z)_i = 1 / sum_i e^(z_i - max z),
    /// in (1/k, 1]. logits is k int8 values.
    /// </summary>
    public static float MaxSoftmax(byte[] logits, int offset, int k, float scale, int zeroPoint)
    {
        const string op = "OodScores.MaxSoftmax";
        Check(op, logits, offset, k, scale, zeroPoint);
        int max = Max(logits, offset, k);
        // The zero point cancels in z - max z; every exponent is at or below 0, so the sum lies in [1, k].
        float sum = 0f;
        for (int i = 0; i < k; i++)
        {
            sum += FloatMath.Exp(((sbyte)logits[offset + i] - max) * scale);
        }
        return 1f / sum;
    }

    /// <summary>
    /// The energy score (Liu et al. 2020) with its sign turned so that higher = more in-distribution:
    /// -E(z) = T log sum_i e^(z_i / T), computed as max z + T log sum_i e^((z_i - max z) / T).
    /// </summary>
    public static float Energy(byte[] logits, int offset, int k, float scale, int zeroPoint, float temperature)
    {
        const string op = "OodScores.Energy";
        Check(op, logits, offset, k, scale, zeroPoint);
        if (!(temperature > 0 && temperature <= float.MaxValue))
        {
            throw new TinyTrainException($"{op}: temperature is {temperature}; it must be positive and finite (1 is the usual choice).");
        }
        int max = Max(logits, offset, k);
        float step = scale / temperature;
        float sum = 0f;
        for (int i = 0; i < k; i++)
        {
            sum += FloatMath.Exp(((sbyte)logits[offset + i] - max) * step);
        }
        return (max - zeroPoint) * scale + temperature * FloatMath.Log(sum);
    }

    private static int Max(byte[] logits, int offset, int k)
    {
        int max = (sbyte)logits[offset];
        for (int i = 1; i < k; i++)
        {
            int q = (sbyte)logits[offset + i];
            if (q > max)
            {
                max = q;
            }
        }
        return max;
    }

    private static void Check(string op, byte[] logits, int offset, int k, float scale, int zeroPoint)
    {
        KernelChecks.Positive(op, "k", k);
        TrainingChecks.Scale(op, "scale", scale);
        KernelChecks.Int8(op, "zeroPoint", zeroPoint);
        KernelChecks.Range(op, "logits", logits, offset, k);
    }
}
