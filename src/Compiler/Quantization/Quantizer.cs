namespace TinyTrain.Compiler.Quantization;

/// <summary>
/// Quantize: int8 exactly as TFLite specifies it. Weights symmetric per output channel in
/// [-127, 127] with zero point 0; activations asymmetric per tensor from the calibrated range; bias
/// int32 at scale s_x * s_w[c]; requantization multiplier s_x * s_w[c] / s_y as Q31 and shift.
/// The input is a pixel intensity in [0, 1]: scale 1/255, zero point -128, so q = pixel - 128 exactly.
/// </summary>
public static class Quantizer
{
    public const float InputScale = 1f / 255f;
    public const int InputZeroPoint = -128;
    public const int AddLeftShift = 20;

    public static void Run(QuantizedModel model)
    {
        QTensor input = model.Tensors[model.Input];
        input.Scale = InputScale;
        input.ZeroPoint = InputZeroPoint;

        foreach (QOp op in model.Ops)
        {
            QTensor x = model.Tensors[op.Inputs[0]], y = model.Tensors[op.Output];
            switch (op.Kind)
            {
                case QOpKind.AvgPool or QOpKind.GlobalAvgPool:
                    // TFLite's int8 pooling keeps the input's quantization.
                    y.Scale = x.Scale;
                    y.ZeroPoint = x.ZeroPoint;
                    break;
                default:
                    if (float.IsInfinity(y.Min))
                        throw new TinyTrainException($"tensor '{y.Name}' was never calibrated");
                    (y.Scale, y.ZeroPoint) = QuantMath.ActivationParameters(y.Min, y.Max);
                    break;
            }
            SetActivationRange(op, y);
            switch (op.Kind)
            {
                case QOpKind.Conv or QOpKind.DepthwiseConv or QOpKind.FullyConnected:
                    QuantizeWeights(op, x, y);
                    break;
                case QOpKind.Add:
                    QuantizeAdd(op, x, model.Tensors[op.Inputs[1]], y);
                    break;
            }
        }
    }

    private static void SetActivationRange(QOp op, QTensor y)
    {
        op.ActMin = -128;
        op.ActMax = 127;
        if (op.Activation == Activation.None) return;
        op.ActMin = Math.Max(-128, y.ZeroPoint);
        if (op.Activation == Activation.Relu6)
            op.ActMax = Math.Min(127, y.ZeroPoint + QuantMath.RoundToInt(6.0 / y.Scale));
    }

    private static void QuantizeWeights(QOp op, QTensor x, QTensor y)
    {
        float[] w = op.Weight!;
        int channels = op.OutChannels, perChannel = w.Length / channels;
        var wq = new sbyte[w.Length];
        var ws = new float[channels];
        var bq = new int[channels];
        var multiplier = new int[channels];
        var shift = new int[channels];
        for (int c = 0; c < channels; c++)
        {
            float maxAbs = 0f;
            for (int i = 0; i < perChannel; i++) maxAbs = Math.Max(maxAbs, Math.Abs(w[c * perChannel + i]));
            float scale = maxAbs > 0 ? maxAbs / 127f : 1f;
            if (op.WeightScaleFloor > 0) scale = Math.Max(maxAbs / 127f, op.WeightScaleFloor);
            ws[c] = scale;
            for (int i = 0; i < perChannel; i++)
                wq[c * perChannel + i] = (sbyte)Math.Clamp(QuantMath.RoundToInt(w[c * perChannel + i] / scale), -127, 127);
            double biasScale = (double)x.Scale * scale;
            double b = Math.Round(op.Bias![c] / biasScale, MidpointRounding.AwayFromZero);
            bq[c] = (int)Math.Clamp(b, int.MinValue + 1, int.MaxValue);
            (multiplier[c], shift[c]) = QuantMath.QuantizeMultiplier(biasScale / y.Scale);
        }
        op.WeightQ = wq;
        op.WeightScale = ws;
        op.BiasQ = bq;
        op.Multiplier = multiplier;
        op.Shift = shift;
    }

    // TFLite int8 Add (add.cc): both inputs are brought to a common scale 2*max(s0, s1) with 20 bits
    // of headroom, summed, and requantized to the output.
    private static void QuantizeAdd(QOp op, QTensor x0, QTensor x1, QTensor y)
    {
        double twiceMax = 2.0 * Math.Max(x0.Scale, x1.Scale);
        (int m0, int s0) = QuantMath.QuantizeMultiplier(x0.Scale / twiceMax);
        (int m1, int s1) = QuantMath.QuantizeMultiplier(x1.Scale / twiceMax);
        (int mo, int so) = QuantMath.QuantizeMultiplier(twiceMax / ((1 << AddLeftShift) * (double)y.Scale));
        op.AddParams = new[] { m0, s0, m1, s1, mo, so, AddLeftShift };
    }
}
