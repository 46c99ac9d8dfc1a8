namespace TinyTrain.Runtime.Kernels;

/// <summary>
/// FullyConnected's backward kernels (<see cref="Plans.OpKind.FullyConnectedBackwardInput"/>, <see cref="Plans.OpKind.FullyConnectedUpdate"/>).
/// Reference code: plain loops, portable to nanoFramework; float32 gradients via <see cref="FloatBits"/>.
/// </summary>
public static partial class FullyConnected
{
    /// <summary>
    /// dx = W^T dy with the dequantized weights: dx[i] = Σ_o dy[o] * w_q[o, i] * s_w[o].
    ///   dy (Out) float32, w (Out, In) int8, scales (Out) float32, dx (In) float32.
    /// accumulate: dx += the result instead of dx = it. Reads only In and Out of <paramref name="p"/>.
    /// </summary>
    public static void BackwardInput(in FullyConnectedParams p, byte[] dy, int dyOff, byte[] w, int wOff, byte[] scales, int scaleOff, byte[] dx, int dxOff, bool accumulate)
    {
        const string op = "FullyConnected.BackwardInput";
        KernelChecks.Positive(op, "In", p.In);
        KernelChecks.Positive(op, "Out", p.Out);
        long wLen = (long)p.Out * p.In;
        TrainingChecks.Floats(op, "dy", dy, dyOff, p.Out);
        KernelChecks.Range(op, "w", w, wOff, wLen);
        TrainingChecks.Floats(op, "scales", scales, scaleOff, p.Out);
        TrainingChecks.Floats(op, "dx", dx, dxOff, p.In);
        TrainingChecks.Apart(op, "dy", dy, dyOff, 4L * p.Out, "dx", dx, dxOff, 4L * p.In);
        TrainingChecks.Apart(op, "w", w, wOff, wLen, "dx", dx, dxOff, 4L * p.In);
        TrainingChecks.Apart(op, "scales", scales, scaleOff, 4L * p.Out, "dx", dx, dxOff, 4L * p.In);

        for (int i = 0; i < p.In; i++)
        {
            float sum = 0f;
            for (int o = 0; o < p.Out; o++)
            {
                sum += FloatBits.Read(dy, dyOff + 4 * o) * FloatBits.Read(scales, scaleOff + 4 * o) * (sbyte)w[wOff + o * p.In + i];
            }
            int at = dxOff + 4 * i;
            FloatBits.Write(dx, at, accumulate ? FloatBits.Read(dx, at) + sum : sum);
        }
    }

    /// <summary>
    /// Computes and applies, one element at a time, the gradient of the first <paramref name="trainChannels"/>
    /// inputs of every output row and of the bias: g[o, i] = s_x dy[o] (x[i] - zp_x), g_b[o] = dy[o], each stepped
    /// by <see cref="UpdateRule"/> with stochastic rounding.
    ///   x (In) int8, dy (Out) float32, w (Out, In) int8 written in place (wOff &lt; 0: not trained), bias (Out) int32
    ///   written in place (biasOff &lt; 0: not trained), scales (Out) float32, state float32 momentum (stateOff &lt; 0:
    ///   none): the trained weights in order (o, i &lt; trainChannels), then the biases (Out).
    /// Reads In, Out and InputZeroPoint of <paramref name="p"/>; <paramref name="inputScale"/> is s_x.
    /// </summary>
    public static void Update(in FullyConnectedParams p, byte[] x, int xOff, byte[] dy, int dyOff, byte[] w, int wOff, byte[] bias, int biasOff,
        byte[] scales, int scaleOff, float inputScale, int trainChannels, in UpdateRule rule, byte[] state, int stateOff, ref uint rng)
    {
        const string op = "FullyConnected.Update";
        CheckGradient(op, p, inputScale, trainChannels);
        TrainingChecks.Rule(op, rule);
        TrainingChecks.Rng(op, rng);
        long trainedWeights = (long)p.Out * trainChannels;
        TrainingChecks.UpdateBuffers(op, x, xOff, p.In, dy, dyOff, p.Out, scales, scaleOff, p.Out, w, wOff, (long)p.Out * p.In,
            bias, biasOff, state, stateOff, TrainingUpdate.StateCount(wOff, trainedWeights, biasOff, p.Out));

        int biasState = wOff >= 0 ? (int)trainedWeights : 0;
        for (int o = 0; o < p.Out; o++)
        {
            float sw = FloatBits.Read(scales, scaleOff + 4 * o);
            if (wOff >= 0)
            {
                for (int i = 0; i < trainChannels; i++)
                {
                    float g = Gradient(p, x, xOff, dy, dyOff, o, i) * inputScale;
                    int index = o * trainChannels + i;
                    TrainingUpdate.Weight(w, wOff + o * p.In + i, g, sw, rule, state, stateOff < 0 ? -1 : stateOff + 4 * index, ref rng);
                }
            }
            if (biasOff >= 0)
            {
                float gb = FloatBits.Read(dy, dyOff + 4 * o);
                TrainingUpdate.Bias(bias, biasOff + 4 * o, gb, inputScale * sw, rule, state, stateOff < 0 ? -1 : stateOff + 4 * (biasState + o), ref rng);
            }
        }
    }

    /// <summary>
    /// The real-units gradient that <see cref="Update"/> applies, written out instead: dw (Out, trainChannels) and
    /// db (Out), each optional (null: not wanted). For tests and the gradient probe; allocates nothing.
    /// </summary>
    public static void WeightGradient(in FullyConnectedParams p, byte[] x, int xOff, byte[] dy, int dyOff, float inputScale, int trainChannels, float[]? dw, float[]? db)
    {
        const string op = "FullyConnected.WeightGradient";
        CheckGradient(op, p, inputScale, trainChannels);
        KernelChecks.Range(op, "x", x, xOff, p.In);
        TrainingChecks.Floats(op, "dy", dy, dyOff, p.Out);
        if (dw != null && dw.Length < (long)p.Out * trainChannels)
        {
            throw new TinyTrainException($"{op}: dw holds {dw.Length} floats; Out * trainChannels = {(long)p.Out * trainChannels} are needed.");
        }
        if (db != null && db.Length < p.Out)
        {
            throw new TinyTrainException($"{op}: db holds {db.Length} floats; Out = {p.Out} are needed.");
        }

        for (int o = 0; o < p.Out; o++)
        {
            if (dw != null)
            {
                for (int i = 0; i < trainChannels; i++)
                {
                    dw[o * trainChannels + i] = Gradient(p, x, xOff, dy, dyOff, o, i) * inputScale;
                }
            }
            if (db != null)
            {
                db[o] = FloatBits.Read(dy, dyOff + 4 * o);
            }
        }
    }

    // dy[o] * (x[i] - zp_x): one weight's gradient in input units (times s_x: real).
    private static float Gradient(in FullyConnectedParams p, byte[] x, int xOff, byte[] dy, int dyOff, int o, int i)
    {
        return FloatBits.Read(dy, dyOff + 4 * o) * ((sbyte)x[xOff + i] - p.InputZeroPoint);
    }

    private static void CheckGradient(string op, in FullyConnectedParams p, float inputScale, int trainChannels)
    {
        KernelChecks.Positive(op, "In", p.In);
        KernelChecks.Positive(op, "Out", p.Out);
        KernelChecks.Int8(op, "InputZeroPoint", p.InputZeroPoint);
        TrainingChecks.Scale(op, "inputScale", inputScale);
        TrainingChecks.TrainChannels(op, trainChannels, p.In, "inputs per output row");
    }
}
