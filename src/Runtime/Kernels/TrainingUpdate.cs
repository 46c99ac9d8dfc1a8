namespace TinyTrain.Runtime.Kernels;

/// <summary>
/// How a trained tensor is stepped: plain SGD on the int8 / int32 values, optionally with momentum and
/// Quantization-Aware Scaling. With QAS the weight gradient in the int8 domain is scaled by s_w^-2 (the bias
/// gradient by s_b^-2, s_b = s_x s_w), so the change in real units is -LearningRate * (real gradient), as in
/// float SGD; without it the int8 domain is stepped directly and the real change shrinks by s_w^2.
/// </summary>
public struct UpdateRule
{
    public float LearningRate;
    /// <summary>0: no momentum. Otherwise v = Momentum * v + g, in the state region (an op's state offset).</summary>
    public float Momentum;
    /// <summary>Quantization-Aware Scaling (the plan's qas arg).</summary>
    public bool Qas;
}

/// <summary>
/// The step of one weight or bias element, shared by every *.Update kernel: the gradient of one element is
/// computed, scaled, fed to momentum, stochastically rounded and applied at once, so no gradient tensor exists.
/// </summary>
internal static class TrainingUpdate
{
    /// <summary>
    /// w[at] (int8) += round(-lr * (v or g~)), g~ = QAS ? g / s_w : g * s_w, g = dL/dw in real units;
    /// clamped to [-127, 127]. stateAt &lt; 0: no momentum.
    /// </summary>
    public static void Weight(byte[] w, int at, float g, float sw, in UpdateRule rule, byte[] state, int stateAt, ref uint rng)
    {
        float step = Momentum(rule.Qas ? g / sw : g * sw, rule, state, stateAt);
        int q = (sbyte)w[at] + StochasticRounding.Round(-rule.LearningRate * step, ref rng);
        if (q > 127)
        {
            q = 127;
        }
        if (q < -127)
        {
            q = -127;
        }
        w[at] = (byte)q;
    }

    /// <summary>
    /// bias[at] (int32 little-endian) += round(-lr * (v or g~)), g~ = QAS ? g / s_b : g * s_b, g = dL/db in
    /// real units, s_b = s_x s_w; saturating. stateAt &lt; 0: no momentum.
    /// </summary>
    public static void Bias(byte[] bias, int at, float g, float sb, in UpdateRule rule, byte[] state, int stateAt, ref uint rng)
    {
        float step = Momentum(rule.Qas ? g / sb : g * sb, rule, state, stateAt);
        long q = (long)Quant.ReadInt32(bias, at) + StochasticRounding.Round(-rule.LearningRate * step, ref rng);
        if (q > int.MaxValue)
        {
            q = int.MaxValue;
        }
        if (q < int.MinValue)
        {
            q = int.MinValue;
        }
        int v = (int)q;
        bias[at] = (byte)v;
        bias[at + 1] = (byte)(v >> 8);
        bias[at + 2] = (byte)(v >> 16);
        bias[at + 3] = (byte)(v >> 24);
    }

    /// <summary>The sum of count float32 from offset: a bias gradient, Σ dy over one output channel.</summary>
    public static float Sum(byte[] dy, int offset, int count)
    {
        float sum = 0f;
        for (int i = 0; i < count; i++)
        {
            sum += FloatBits.Read(dy, offset + 4 * i);
        }
        return sum;
    }

    /// <summary>The number of float32 momentum entries an update op keeps: its trained weights, then its biases.</summary>
    public static long StateCount(int wOff, long trainedWeights, int biasOff, int channels)
    {
        return (wOff >= 0 ? trainedWeights : 0) + (biasOff >= 0 ? channels : 0);
    }

    private static float Momentum(float g, in UpdateRule rule, byte[] state, int stateAt)
    {
        if (stateAt < 0)
        {
            return g;
        }
        float v = rule.Momentum * FloatBits.Read(state, stateAt) + g;
        FloatBits.Write(state, stateAt, v);
        return v;
    }
}
