namespace TinyTrain.Runtime.Kernels;

/// <summary>
/// The elementwise training ops of a plan (<see cref="Plans.OpKind.SaveMask"/>, <see cref="Plans.OpKind.LossGradient"/>,
/// <see cref="Plans.OpKind.MaskGradient"/>, <see cref="Plans.OpKind.GradientAdd"/>). Gradients are float32, little-endian
/// in the arena (<see cref="FloatBits"/>), in real units: dL/d(dequantized value). Reference code only: plain
/// loops over arrays and offsets, portable to nanoFramework; nothing allocates unless a check fails.
/// </summary>
public static class Training
{
    /// <summary>
    /// y (count) int8, the output of a forward op with a fused activation; mask (ceil(count/8)) bits, LSB first in
    /// each byte: bit i = 1 where the gradient passes, lower &lt; y &amp;&amp; y &lt; upper (exclusive bounds; -129
    /// and 128 mean none). ReLU: lower = the output's real zero. The unused high bits of the last byte are 0.
    /// </summary>
    public static void SaveMask(byte[] y, int yOff, int count, int lower, int upper, byte[] mask, int maskOff)
    {
        const string op = "Training.SaveMask";
        KernelChecks.Positive(op, "count", count);
        if (lower < -129 || upper > 128 || lower >= upper)
            throw new TinyTrainException($"{op}: mask bounds {lower}..{upper} are not within -129..128 with lower < upper");
        long maskLen = ((long)count + 7) / 8;
        KernelChecks.Range(op, "y", y, yOff, count);
        KernelChecks.Range(op, "mask", mask, maskOff, maskLen);
        TrainingChecks.Apart(op, "y", y, yOff, count, "mask", mask, maskOff, maskLen);

        int bits = 0;
        int at = maskOff;
        for (int i = 0; i < count; i++)
        {
            int v = (sbyte)y[yOff + i];
            if (v > lower && v < upper)
            {
                bits |= 1 << (i & 7);
            }
            if ((i & 7) == 7 || i == count - 1)
            {
                mask[at] = (byte)bits;
                at++;
                bits = 0;
            }
        }
    }

    /// <summary>
    /// Softmax cross-entropy of the int8 logits (k) against <paramref name="label"/>, with z = (q - zp) * scale:
    /// writes dL/dz = softmax(z) - onehot(label) into d (k float32) and returns the loss -log softmax(z)[label].
    /// </summary>
    public static float LossGradient(byte[] logits, int off, int k, float scale, int zeroPoint, int label, byte[] d, int dOff)
    {
        const string op = "Training.LossGradient";
        KernelChecks.Positive(op, "k", k);
        TrainingChecks.Scale(op, "scale", scale);
        KernelChecks.Int8(op, "zeroPoint", zeroPoint);
        if (label < 0 || label >= k)
        {
            throw new TinyTrainException($"{op}: label is {label}; it must lie in [0, {k}) for a model with {k} classes.");
        }
        KernelChecks.Range(op, "logits", logits, off, k);
        TrainingChecks.Floats(op, "d", d, dOff, k);
        TrainingChecks.Apart(op, "logits", logits, off, k, "d", d, dOff, 4L * k);

        // The zero point cancels in z - max z; subtracting the max keeps every exponent at or below 0.
        int max = (sbyte)logits[off];
        for (int i = 1; i < k; i++)
        {
            int q = (sbyte)logits[off + i];
            if (q > max)
            {
                max = q;
            }
        }
        float sum = 0f;
        for (int i = 0; i < k; i++)
        {
            float e = FloatMath.Exp(((sbyte)logits[off + i] - max) * scale);
            FloatBits.Write(d, dOff + 4 * i, e);
            sum += e;
        }
        for (int i = 0; i < k; i++)
        {
            int at = dOff + 4 * i;
            float pi = FloatBits.Read(d, at) / sum;
            FloatBits.Write(d, at, i == label ? pi - 1f : pi);
        }
        return FloatMath.Log(sum) - ((sbyte)logits[off + label] - max) * scale;
    }

    /// <summary>dz (count float32) = dy (count float32) where the mask bit is 1, else 0. dz may be dy itself.</summary>
    public static void MaskGradient(byte[] mask, int maskOff, byte[] dy, int dyOff, int count, byte[] dz, int dzOff)
    {
        const string op = "Training.MaskGradient";
        KernelChecks.Positive(op, "count", count);
        long maskLen = ((long)count + 7) / 8;
        KernelChecks.Range(op, "mask", mask, maskOff, maskLen);
        TrainingChecks.Floats(op, "dy", dy, dyOff, count);
        TrainingChecks.Floats(op, "dz", dz, dzOff, count);
        TrainingChecks.Apart(op, "mask", mask, maskOff, maskLen, "dz", dz, dzOff, 4L * count);
        TrainingChecks.SameOrApart(op, "dy", dy, dyOff, "dz", dz, dzOff, 4L * count);

        for (int i = 0; i < count; i++)
        {
            bool pass = ((mask[maskOff + (i >> 3)] >> (i & 7)) & 1) != 0;
            FloatBits.Write(dz, dzOff + 4 * i, pass ? FloatBits.Read(dy, dyOff + 4 * i) : 0f);
        }
    }

    /// <summary>y = a + b, count float32 each; y may be a or b itself (the gradient of a tensor read twice).</summary>
    public static void GradientAdd(byte[] a, int aOff, byte[] b, int bOff, int count, byte[] y, int yOff)
    {
        const string op = "Training.GradientAdd";
        KernelChecks.Positive(op, "count", count);
        TrainingChecks.Floats(op, "a", a, aOff, count);
        TrainingChecks.Floats(op, "b", b, bOff, count);
        TrainingChecks.Floats(op, "y", y, yOff, count);
        TrainingChecks.SameOrApart(op, "a", a, aOff, "y", y, yOff, 4L * count);
        TrainingChecks.SameOrApart(op, "b", b, bOff, "y", y, yOff, 4L * count);

        for (int i = 0; i < count; i++)
        {
            FloatBits.Write(y, yOff + 4 * i, FloatBits.Read(a, aOff + 4 * i) + FloatBits.Read(b, bOff + 4 * i));
        }
    }
    /// <summary>
    /// A layer that trains only its bias: dy (channels, plane) float32 w.r.t. its (masked) output; for each channel
    /// g_b = sum of dy over the plane, applied at once with the update rule (s_b = inputScale * s_w[c]). Needs no input.
    /// </summary>
    public static void BiasUpdate(byte[] dy, int dyOff, int channels, int plane, byte[] bias, int biasOff, byte[] scales, int scaleOff,
        float inputScale, in UpdateRule rule, byte[] state, int stateOff, ref uint rng)
    {
        const string op = "Training.BiasUpdate";
        KernelChecks.Positive(op, "channels", channels);
        KernelChecks.Positive(op, "plane", plane);
        KernelChecks.Range(op, "dy", dy, dyOff, 4L * channels * plane);
        KernelChecks.Range(op, "bias", bias, biasOff, 4L * channels);
        KernelChecks.Range(op, "scales", scales, scaleOff, 4L * channels);
        if (!(inputScale > 0) || inputScale - inputScale != 0f)
            throw new TinyTrainException($"{op}: input scale {inputScale} is not a finite positive number");
        if (stateOff >= 0) KernelChecks.Range(op, "state", state, stateOff, 4L * channels);
        for (int c = 0; c < channels; c++)
        {
            float g = 0f;
            int at = dyOff + 4 * c * plane;
            for (int i = 0; i < plane; i++) g += FloatBits.Read(dy, at + 4 * i);
            float sw = FloatBits.Read(scales, scaleOff + 4 * c);
            TrainingUpdate.Bias(bias, biasOff + 4 * c, g, inputScale * sw, rule, state, stateOff < 0 ? -1 : stateOff + 4 * c, ref rng);
        }
    }

    /// <summary>The bias gradient BiasUpdate applies (real units), for tests and probes.</summary>
    public static void BiasGradient(byte[] dy, int dyOff, int channels, int plane, float[] db)
    {
        for (int c = 0; c < channels; c++)
        {
            float g = 0f;
            int at = dyOff + 4 * c * plane;
            for (int i = 0; i < plane; i++) g += FloatBits.Read(dy, at + 4 * i);
            db[c] = g;
        }
    }
}

/// <summary>
/// exp and log in float32 without System.Math, so that the loss compiles for nanoFramework: Cody-Waite range
/// reduction and a short polynomial, relative error below 1e-6 over the normal float range.
/// </summary>
public static class FloatMath
{
    // ln 2 split so that n * Ln2Hi is exact for |n| < 2^15 (Ln2Hi has 9 significant bits).
    private const float Ln2Hi = 0.693359375f;
    private const float Ln2Lo = -2.12194440e-4f;
    private const float Log2E = 1.44269504f;

    /// <summary>e^x: +infinity above 88.7228, 0 below -104 (past the smallest subnormal), NaN for NaN.</summary>
    public static float Exp(float x)
    {
        if (FloatBits.IsNaN(x))
        {
            return x;
        }
        if (x > 88.7228394f)
        {
            return float.PositiveInfinity;
        }
        if (x < -104f)
        {
            return 0f;
        }
        // x = n ln2 + r with |r| <= ln2 / 2; e^r by its Taylor series to r^7 (truncation below 6e-9).
        float t = x * Log2E;
        int n = (int)(t >= 0 ? t + 0.5f : t - 0.5f);
        float r = (x - n * Ln2Hi) - n * Ln2Lo;
        float p = 1f + r * (1f + r * (0.5f + r * (1f / 6f + r * (1f / 24f + r * (1f / 120f + r * (1f / 720f + r * (1f / 5040f)))))));
        // 2^n in two factors, so that n = 128 (near overflow) and n < -126 (subnormal results) need no special case.
        int half = n / 2;
        return p * PowerOfTwo(half) * PowerOfTwo(n - half);
    }

    /// <summary>The natural log: NaN for NaN or x &lt; 0, -infinity for 0, +infinity for +infinity.</summary>
    public static float Log(float x)
    {
        if (FloatBits.IsNaN(x) || x < 0)
        {
            return float.NaN;
        }
        if (x == 0)
        {
            return float.NegativeInfinity;
        }
        if (x > float.MaxValue)
        {
            return x;
        }
        int e = 0;
        int bits = FloatBits.ToBits(x);
        if ((bits >> 23) == 0)
        {
            // Subnormal: scale into the normal range first.
            bits = FloatBits.ToBits(x * 8388608f);
            e = -23;
        }
        // x = m 2^e with m in [sqrt(1/2), sqrt(2)); ln m = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.172.
        e += ((bits >> 23) & 0xFF) - 127;
        float m = FloatBits.FromBits((bits & 0x007FFFFF) | 0x3F800000);
        if (m > 1.41421356f)
        {
            m *= 0.5f;
            e++;
        }
        float s = (m - 1f) / (m + 1f);
        float s2 = s * s;
        float lnM = 2f * s * (1f + s2 * (1f / 3f + s2 * (1f / 5f + s2 * (1f / 7f + s2 * (1f / 9f + s2 * (1f / 11f))))));
        return e * Ln2Hi + (lnM + e * Ln2Lo);
    }

    private static float PowerOfTwo(int n)
    {
        // n lies in [-75, 64] here: always a normal float.
        return FloatBits.FromBits((n + 127) << 23);
    }

}
