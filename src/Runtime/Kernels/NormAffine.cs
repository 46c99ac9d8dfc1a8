namespace TinyTrain.Runtime.Kernels;

/// <summary>Shapes and quantization of a <see cref="NormAffine"/> op: x = u int8 (C,H,W) -> y int8 (C,H,W).</summary>
public struct NormAffineParams
{
    public int C, H, W;
    public float InputScale;
    public int InputZeroPoint;
    public float OutputScale;
    public int OutputZeroPoint;
    public int ActMin, ActMax;
}

/// <summary>
/// A per-channel scale and shift beside a folded conv, trainable at test time (Tent, norm statistics) and usable
/// as a channel-wise adapter. The conv writes its pre-activation u in int8; this op maps each channel
///   v = scale[c] * (statScale[c] * u + statShift[c]) + shift[c]      (real units)
/// and quantizes activation(v) to the output. scale/shift (the "affine" block, float32 scale[C] then shift[C]) start
/// at 1 and 0, so a fresh plan computes exactly what the folded conv with a fused activation computed, up to one
/// more int8 rounding. The statistics correction (float32 statScale[C] then statShift[C], optional: offset &lt; 0)
/// is written by <see cref="Stats"/>. Kept as its own op (rather than folded into the conv's requantization) because
/// the running statistics need u before the activation clips it, and the gradient of scale needs u itself.
///
/// Reference code only (a handful of float ops per element, far below the conv's cost): plain loops over arrays and
/// offsets, no System.Math, portable to nanoFramework; nothing allocates unless a check fails.
/// </summary>
public static class NormAffine
{
    /// <summary>
    /// y = clamp(round(v / s_y) + zp_y, actMin, actMax). With maskMode 1 (ReLU) or 2 (ReLU6) also writes the gradient
    /// mask, bit = 1 where v &gt; 0 (and v &lt; 6). y may be x itself.
    /// </summary>
    public static void Forward(in NormAffineParams p, byte[] x, int xOff, byte[] affine, int affineOff, byte[]? stats, int statsOff,
        byte[] y, int yOff, byte[]? mask, int maskOff, int maskMode)
    {
        const string op = "NormAffine.Forward";
        int plane = Check(op, p, affine, affineOff, stats, statsOff);
        long count = (long)p.C * plane;
        KernelChecks.Range(op, "x", x, xOff, count);
        KernelChecks.Range(op, "y", y, yOff, count);
        KernelChecks.Activation(op, p.ActMin, p.ActMax);
        KernelChecks.Int8(op, "outputZeroPoint", p.OutputZeroPoint);
        TrainingChecks.Scale(op, "outputScale", p.OutputScale);
        TrainingChecks.SameOrApart(op, "x", x, xOff, "y", y, yOff, count);
        if (maskMode != 0)
        {
            KernelChecks.Mask(op, mask, maskOff, maskMode, count, x, xOff, count, affine, affineOff, 8L * p.C, y, yOff, count);
        }

        float inverse = 1f / p.OutputScale;
        int bits = 0, at = maskOff, i = 0;
        for (int c = 0; c < p.C; c++)
        {
            Effective(affine, affineOff, stats, statsOff, p.C, c, out float a, out float b);
            // v = k * q + o in real units, with the input's zero point and scale folded in once per channel.
            float k = a * p.InputScale;
            float o = b - k * p.InputZeroPoint;
            int start = xOff + c * plane, end = start + plane;
            for (int s = start; s < end; s++)
            {
                float v = k * (sbyte)x[s] + o;
                y[yOff + (s - xOff)] = (byte)(sbyte)Quantize(v * inverse, p.OutputZeroPoint, p.ActMin, p.ActMax);
                if (maskMode != 0)
                {
                    if (v > 0f && (maskMode == 1 || v < 6f))
                    {
                        bits |= 1 << (i & 7);
                    }
                    if ((i & 7) == 7 || i == count - 1)
                    {
                        mask![at] = (byte)bits;
                        at++;
                        bits = 0;
                    }
                }
                i++;
            }
        }
    }

    /// <summary>du = dv * scale[c] * statScale[c], float32 (C,H,W); du may be dv itself.</summary>
    public static void BackwardInput(int channels, int plane, byte[] dv, int dvOff, byte[] affine, int affineOff, byte[]? stats, int statsOff,
        byte[] du, int duOff)
    {
        const string op = "NormAffine.BackwardInput";
        KernelChecks.Positive(op, "channels", channels);
        KernelChecks.Positive(op, "plane", plane);
        long count = (long)channels * plane;
        TrainingChecks.Floats(op, "affine", affine, affineOff, 2L * channels);
        if (statsOff >= 0)
        {
            TrainingChecks.Floats(op, "stats", stats!, statsOff, 2L * channels);
        }
        TrainingChecks.Floats(op, "dv", dv, dvOff, count);
        TrainingChecks.Floats(op, "du", du, duOff, count);
        TrainingChecks.SameOrApart(op, "dv", dv, dvOff, "du", du, duOff, 4L * count);

        for (int c = 0; c < channels; c++)
        {
            float g = FloatBits.Read(affine, affineOff + 4 * c);
            if (statsOff >= 0)
            {
                g *= FloatBits.Read(stats!, statsOff + 4 * c);
            }
            int start = 4 * c * plane;
            for (int s = 0; s < plane; s++)
            {
                FloatBits.Write(du, duOff + start + 4 * s, FloatBits.Read(dv, dvOff + start + 4 * s) * g);
            }
        }
    }

    /// <summary>
    /// dScale[c] = sum over the plane of dv * (statScale u + statShift), dShift[c] = sum of dv, u = (x - zp) s_x; into
    /// two float arrays of C (for tests and probes; the update computes the same sums itself).
    /// </summary>
    public static void Gradient(in NormAffineParams p, byte[] x, int xOff, byte[] dv, int dvOff, byte[]? stats, int statsOff,
        float[] dScale, float[] dShift)
    {
        const string op = "NormAffine.Gradient";
        int plane = p.H * p.W;
        KernelChecks.Positive(op, "C", p.C);
        KernelChecks.Positive(op, "plane", plane);
        KernelChecks.Range(op, "x", x, xOff, (long)p.C * plane);
        TrainingChecks.Floats(op, "dv", dv, dvOff, (long)p.C * plane);
        if (statsOff >= 0)
        {
            TrainingChecks.Floats(op, "stats", stats!, statsOff, 2L * p.C);
        }
        if (dScale.Length < p.C || dShift.Length < p.C)
        {
            throw new TinyTrainException($"{op}: the gradient arrays hold {dScale.Length} and {dShift.Length} values; {p.C} are needed.");
        }
        for (int c = 0; c < p.C; c++)
        {
            float ds = 0f, dh = 0f;
            ChannelSums(p, x, xOff, dv, dvOff, stats, statsOff, plane, c, ref ds, ref dh);
            dScale[c] = ds;
            dShift[c] = dh;
        }
    }

    /// <summary>
    /// One SGD step of scale and shift from dv, applied at once: each change is -learningRate * (gradient + anchor *
    /// (value - source value)) clipped to +-maxStep, and scale stays in [minScale, maxScale]. The anchor term is the
    /// gradient of anchor/2 * |theta - theta_source|^2 (source: scale 1, shift 0), which keeps long runs from drifting
    /// away from the source model. A channel whose gradient is not finite is left as it was.
    /// </summary>
    public static void Update(in NormAffineParams p, byte[] x, int xOff, byte[] dv, int dvOff, byte[] affine, int affineOff, byte[]? stats, int statsOff,
        float learningRate, float maxStep, float minScale, float maxScale, float anchor = 0f)
    {
        const string op = "NormAffine.Update";
        int plane = Check(op, p, affine, affineOff, stats, statsOff);
        KernelChecks.Range(op, "x", x, xOff, (long)p.C * plane);
        TrainingChecks.Floats(op, "dv", dv, dvOff, (long)p.C * plane);
        if (!(learningRate >= 0 && learningRate <= float.MaxValue))
        {
            throw new TinyTrainException($"{op}: the learning rate is {learningRate}; it must be a finite number at or above 0.");
        }
        if (!(maxStep > 0 && maxStep <= float.MaxValue) || !(minScale > 0 && minScale <= 1f && maxScale >= 1f && maxScale <= float.MaxValue))
        {
            throw new TinyTrainException($"{op}: maxStep {maxStep}, scale range [{minScale}, {maxScale}]: the step must be positive and the range must hold 1.");
        }
        if (!(anchor >= 0 && anchor <= float.MaxValue))
        {
            throw new TinyTrainException($"{op}: the anchor weight is {anchor}; it must be a finite number at or above 0.");
        }
        for (int c = 0; c < p.C; c++)
        {
            float ds = 0f, dh = 0f;
            ChannelSums(p, x, xOff, dv, dvOff, stats, statsOff, plane, c, ref ds, ref dh);
            if (!IsFinite(ds) || !IsFinite(dh))
            {
                continue;
            }
            int sAt = affineOff + 4 * c, hAt = affineOff + 4 * (p.C + c);
            float scale = FloatBits.Read(affine, sAt), shift = FloatBits.Read(affine, hAt);
            scale += Clip(-learningRate * (ds + anchor * (scale - 1f)), maxStep);
            FloatBits.Write(affine, sAt, scale < minScale ? minScale : scale > maxScale ? maxScale : scale);
            FloatBits.Write(affine, hAt, shift + Clip(-learningRate * (dh + anchor * shift), maxStep));
        }
    }

    /// <summary>
    /// Running statistics of u at batch 1 and the correction they imply. running: float32 mean[C] then var[C];
    /// source: the same for the data the model was trained on; stats (written): statScale[C] then statShift[C].
    ///   mean' = (1 - m) mean + m mean_s,  var' = (1 - m) var + m (var_s + (1 - m) (mean_s - mean)^2)
    /// (mean_s, var_s: this sample's over the plane; var' is the variance of the mixture of the old estimate and the
    /// sample, so it keeps the between-sample spread that a batch would see). statScale = sqrt(varSrc / var') kept in [1/maxStatScale, maxStatScale], statShift = meanSrc -
    /// statScale * mean'. A sample whose plane is constant in a channel (var_s = 0) still moves the mean; a var of 0
    /// is never divided by.
    /// </summary>
    public static void Stats(in NormAffineParams p, byte[] x, int xOff, byte[] running, int runningOff, byte[] source, int sourceOff,
        byte[] stats, int statsOff, float momentum, float maxStatScale)
    {
        const string op = "NormAffine.Stats";
        int plane = p.H * p.W;
        KernelChecks.Positive(op, "C", p.C);
        KernelChecks.Positive(op, "plane", plane);
        KernelChecks.Range(op, "x", x, xOff, (long)p.C * plane);
        TrainingChecks.Floats(op, "running", running, runningOff, 2L * p.C);
        TrainingChecks.Floats(op, "source", source, sourceOff, 2L * p.C);
        TrainingChecks.Floats(op, "stats", stats, statsOff, 2L * p.C);
        TrainingChecks.Scale(op, "inputScale", p.InputScale);
        if (!(momentum > 0 && momentum <= 1) || !(maxStatScale >= 1 && maxStatScale <= float.MaxValue))
        {
            throw new TinyTrainException($"{op}: momentum {momentum} must lie in (0, 1] and maxStatScale {maxStatScale} must be at least 1.");
        }
        float inversePlane = 1f / plane;
        for (int c = 0; c < p.C; c++)
        {
            int start = xOff + c * plane;
            long sum = 0;
            for (int s = 0; s < plane; s++)
            {
                sum += (sbyte)x[start + s] - p.InputZeroPoint;
            }
            float meanQ = sum * inversePlane;
            float squares = 0f;
            for (int s = 0; s < plane; s++)
            {
                float d = (sbyte)x[start + s] - p.InputZeroPoint - meanQ;
                squares += d * d;
            }
            float sampleMean = meanQ * p.InputScale;
            float sampleVar = squares * inversePlane * p.InputScale * p.InputScale;

            int mAt = runningOff + 4 * c, vAt = runningOff + 4 * (p.C + c);
            float mean = FloatBits.Read(running, mAt), variance = FloatBits.Read(running, vAt);
            float gap = sampleMean - mean;
            mean += momentum * gap;
            variance = (1f - momentum) * variance + momentum * (sampleVar + (1f - momentum) * gap * gap);
            FloatBits.Write(running, mAt, mean);
            FloatBits.Write(running, vAt, variance);

            float sourceMean = FloatBits.Read(source, sourceOff + 4 * c), sourceVar = FloatBits.Read(source, sourceOff + 4 * (p.C + c));
            float ratio = variance > 0f ? sourceVar / variance : maxStatScale * maxStatScale;
            float statScale = ratio > 0f ? FloatMath.Exp(0.5f * FloatMath.Log(ratio)) : 1f / maxStatScale;
            float low = 1f / maxStatScale;
            statScale = statScale < low ? low : statScale > maxStatScale ? maxStatScale : statScale;
            FloatBits.Write(stats, statsOff + 4 * c, statScale);
            FloatBits.Write(stats, statsOff + 4 * (p.C + c), sourceMean - statScale * mean);
        }
    }

    private static void ChannelSums(in NormAffineParams p, byte[] x, int xOff, byte[] dv, int dvOff, byte[]? stats, int statsOff, int plane, int c,
        ref float dScale, ref float dShift)
    {
        float a = 1f, b = 0f;
        if (statsOff >= 0)
        {
            a = FloatBits.Read(stats!, statsOff + 4 * c);
            b = FloatBits.Read(stats!, statsOff + 4 * (p.C + c));
        }
        float k = a * p.InputScale, o = b - k * p.InputZeroPoint;
        int start = c * plane;
        for (int s = 0; s < plane; s++)
        {
            float g = FloatBits.Read(dv, dvOff + 4 * (start + s));
            dScale += g * (k * (sbyte)x[xOff + start + s] + o);
            dShift += g;
        }
    }

    // The map's effective per-channel factor and offset in real units: v = a u + b.
    private static void Effective(byte[] affine, int affineOff, byte[]? stats, int statsOff, int channels, int c, out float a, out float b)
    {
        float scale = FloatBits.Read(affine, affineOff + 4 * c), shift = FloatBits.Read(affine, affineOff + 4 * (channels + c));
        a = scale;
        b = shift;
        if (statsOff >= 0)
        {
            float statScale = FloatBits.Read(stats!, statsOff + 4 * c), statShift = FloatBits.Read(stats!, statsOff + 4 * (channels + c));
            a = scale * statScale;
            b = scale * statShift + shift;
        }
    }

    private static int Check(string op, in NormAffineParams p, byte[] affine, int affineOff, byte[]? stats, int statsOff)
    {
        KernelChecks.Positive(op, "C", p.C);
        KernelChecks.Positive(op, "H", p.H);
        KernelChecks.Positive(op, "W", p.W);
        KernelChecks.Int8(op, "inputZeroPoint", p.InputZeroPoint);
        TrainingChecks.Scale(op, "inputScale", p.InputScale);
        TrainingChecks.Floats(op, "affine", affine, affineOff, 2L * p.C);
        if (statsOff >= 0)
        {
            if (stats == null)
            {
                throw new TinyTrainException($"{op}: a statistics offset {statsOff} was given without its buffer.");
            }
            TrainingChecks.Floats(op, "stats", stats, statsOff, 2L * p.C);
        }
        return p.H * p.W;
    }

    // Round to nearest (ties away from zero) and clamp; the float is bounded first so the cast cannot overflow.
    private static int Quantize(float v, int zeroPoint, int actMin, int actMax)
    {
        if (!(v > -1000f))
        {
            return actMin;
        }
        if (v > 1000f)
        {
            return actMax;
        }
        int q = (int)(v >= 0 ? v + 0.5f : v - 0.5f) + zeroPoint;
        return q < actMin ? actMin : q > actMax ? actMax : q;
    }

    private static float Clip(float v, float limit) => v > limit ? limit : v < -limit ? -limit : v;

    private static bool IsFinite(float v) => !FloatBits.IsNaN(v) && v <= float.MaxValue && v >= -float.MaxValue;
}
