namespace TinyTrain.Compiler.Quantization;

/// <summary>Compile-time quantization arithmetic, as TFLite's quantization_util defines it.</summary>
public static class QuantMath
{
    /// <summary>real = multiplier * 2^(shift - 31), multiplier in [2^30, 2^31) (Q31); shift > 0 means a left shift.</summary>
    public static (int Multiplier, int Shift) QuantizeMultiplier(double real)
    {
        if (!(real > 0) || !double.IsFinite(real)) return (0, 0);
        int exponent = Math.ILogB(real) + 1;              // real = q * 2^exponent, q in [0.5, 1)
        double q = Math.ScaleB(real, -exponent);
        long qFixed = (long)Math.Round(q * (1L << 31), MidpointRounding.AwayFromZero);
        if (qFixed == 1L << 31)
        {
            qFixed /= 2;
            exponent++;
        }
        if (exponent < -31) return (0, 0);
        if (exponent > 30) return (int.MaxValue, 30);
        return ((int)qFixed, exponent);
    }

    /// <summary>Asymmetric int8 parameters for a real range, nudged so that 0 is exactly representable.</summary>
    public static (float Scale, int ZeroPoint) ActivationParameters(float min, float max)
    {
        min = Math.Min(min, 0f);
        max = Math.Max(max, 0f);
        float scale = (max - min) / 255f;
        if (!(scale > 0) || !float.IsFinite(scale)) return (1f / 255f, -128);
        int zeroPoint = (int)Math.Round(-128 - min / scale, MidpointRounding.AwayFromZero);
        return (scale, Math.Clamp(zeroPoint, -128, 127));
    }

    public static int RoundToInt(double v) => (int)Math.Round(v, MidpointRounding.AwayFromZero);
}
