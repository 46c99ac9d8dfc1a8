namespace TinyTrain.Runtime.Kernels;

/// <summary>
/// DepthwiseConv2D's backward kernels (<see cref="Plans.OpKind.DepthwiseBackwardInput"/>, <see cref="Plans.OpKind.DepthwiseUpdate"/>).
/// Reference code: plain loops, portable to nanoFramework; float32 gradients via <see cref="FloatBits"/>.
/// </summary>
public static partial class DepthwiseConv2D
{
    /// <summary>The scalar reference of <see cref="BackwardInput"/>, whatever <see cref="KernelMode"/> says.</summary>
    public static void BackwardInputReference(in DepthwiseParams p, byte[] dy, int dyOff, byte[] w, int wOff, byte[] scales, int scaleOff, byte[] dx, int dxOff, bool accumulate)
    {
        CheckBackwardInput(p, dy, dyOff, w, wOff, scales, scaleOff, dx, dxOff);
        BackwardInputReferenceCore(p, dy, dyOff, w, wOff, scales, scaleOff, dx, dxOff, accumulate);
    }

    private static void CheckBackwardInput(in DepthwiseParams p, byte[] dy, int dyOff, byte[] w, int wOff, byte[] scales, int scaleOff, byte[] dx, int dxOff)
    {
        const string op = "DepthwiseConv2D.BackwardInput";
        CheckShape(op, p);
        long dyCount = (long)p.C * p.OH * p.OW;
        long dxCount = (long)p.C * p.H * p.W;
        long wLen = (long)p.C * p.Kernel * p.Kernel;
        TrainingChecks.Floats(op, "dy", dy, dyOff, dyCount);
        KernelChecks.Range(op, "w", w, wOff, wLen);
        TrainingChecks.Floats(op, "scales", scales, scaleOff, p.C);
        TrainingChecks.Floats(op, "dx", dx, dxOff, dxCount);
        TrainingChecks.Apart(op, "dy", dy, dyOff, 4 * dyCount, "dx", dx, dxOff, 4 * dxCount);
        TrainingChecks.Apart(op, "w", w, wOff, wLen, "dx", dx, dxOff, 4 * dxCount);
        TrainingChecks.Apart(op, "scales", scales, scaleOff, 4L * p.C, "dx", dx, dxOff, 4 * dxCount);
    }

    private static void BackwardInputReferenceCore(in DepthwiseParams p, byte[] dy, int dyOff, byte[] w, int wOff, byte[] scales, int scaleOff, byte[] dx, int dxOff, bool accumulate)
    {
        int k = p.Kernel;
        for (int c = 0; c < p.C; c++)
        {
            int wTap = wOff + c * k * k;
            int dyPlane = dyOff + 4 * c * p.OH * p.OW;
            float sw = FloatBits.Read(scales, scaleOff + 4 * c);
            for (int iy = 0; iy < p.H; iy++)
            {
                for (int ix = 0; ix < p.W; ix++)
                {
                    float acc = 0f;
                    for (int ky = 0; ky < k; ky++)
                    {
                        int ty = iy + p.Pad - ky;
                        if (ty < 0)
                        {
                            break;
                        }
                        int oy = ty / p.Stride;
                        if (oy * p.Stride != ty || oy >= p.OH)
                        {
                            continue;
                        }
                        for (int kx = 0; kx < k; kx++)
                        {
                            int tx = ix + p.Pad - kx;
                            if (tx < 0)
                            {
                                break;
                            }
                            int ox = tx / p.Stride;
                            if (ox * p.Stride != tx || ox >= p.OW)
                            {
                                continue;
                            }
                            acc += FloatBits.Read(dy, dyPlane + 4 * (oy * p.OW + ox)) * (sbyte)w[wTap + ky * k + kx];
                        }
                    }
                    float sum = acc * sw;
                    int at = dxOff + 4 * ((c * p.H + iy) * p.W + ix);
                    FloatBits.Write(dx, at, accumulate ? FloatBits.Read(dx, at) + sum : sum);
                }
            }
        }
    }

    /// <summary>
    /// Computes and applies, one element at a time, the gradient of the filters of the first
    /// <paramref name="trainChannels"/> channels and of every channel's bias:
    ///   g[c, ky, kx] = s_x Σ_(oy,ox) dy[c, oy, ox] (x[c, iy, ix] - zp_x) (padded taps add nothing), g_b[c] = Σ dy[c, :, :],
    ///   each stepped by <see cref="UpdateRule"/> with stochastic rounding.
    ///   x (C, H, W) int8, dy (C, OH, OW) float32, w (C, 1, K, K) int8 written in place (wOff &lt; 0: not trained),
    ///   bias (C) int32 written in place (biasOff &lt; 0: not trained), scales (C) float32, state float32 momentum
    ///   (stateOff &lt; 0: none): the trained weights in order (c &lt; trainChannels, ky, kx), then the biases (C).
    /// Reads the shape fields and InputZeroPoint of <paramref name="p"/>; <paramref name="inputScale"/> is s_x.
    /// </summary>
    public static void Update(in DepthwiseParams p, byte[] x, int xOff, byte[] dy, int dyOff, byte[] w, int wOff, byte[] bias, int biasOff,
        byte[] scales, int scaleOff, float inputScale, int trainChannels, in UpdateRule rule, byte[] state, int stateOff, ref uint rng)
    {
        const string op = "DepthwiseConv2D.Update";
        int k = p.Kernel;
        CheckGradient(op, p, inputScale, trainChannels);
        TrainingChecks.Rule(op, rule);
        TrainingChecks.Rng(op, rng);
        long trainedWeights = (long)trainChannels * k * k;
        TrainingChecks.UpdateBuffers(op, x, xOff, (long)p.C * p.H * p.W, dy, dyOff, (long)p.C * p.OH * p.OW,
            scales, scaleOff, p.C, w, wOff, (long)p.C * k * k, bias, biasOff,
            state, stateOff, TrainingUpdate.StateCount(wOff, trainedWeights, biasOff, p.C));

        int biasState = wOff >= 0 ? (int)trainedWeights : 0;
        for (int c = 0; c < p.C; c++)
        {
            float sw = FloatBits.Read(scales, scaleOff + 4 * c);
            if (wOff >= 0 && c < trainChannels)
            {
                for (int ky = 0; ky < k; ky++)
                {
                    for (int kx = 0; kx < k; kx++)
                    {
                        float g = TapGradient(p, x, xOff, dy, dyOff, c, ky, kx) * inputScale;
                        int index = (c * k + ky) * k + kx;
                        TrainingUpdate.Weight(w, wOff + index, g, sw, rule, state, stateOff < 0 ? -1 : stateOff + 4 * index, ref rng);
                    }
                }
            }
            if (biasOff >= 0)
            {
                float gb = TrainingUpdate.Sum(dy, dyOff + 4 * c * p.OH * p.OW, p.OH * p.OW);
                TrainingUpdate.Bias(bias, biasOff + 4 * c, gb, inputScale * sw, rule, state, stateOff < 0 ? -1 : stateOff + 4 * (biasState + c), ref rng);
            }
        }
    }

    /// <summary>
    /// The real-units gradient that <see cref="Update"/> applies, written out instead: dw (trainChannels, K, K) and
    /// db (C), each optional (null: not wanted). For tests and the gradient probe; allocates nothing.
    /// </summary>
    public static void WeightGradient(in DepthwiseParams p, byte[] x, int xOff, byte[] dy, int dyOff, float inputScale, int trainChannels, float[]? dw, float[]? db)
    {
        const string op = "DepthwiseConv2D.WeightGradient";
        int k = p.Kernel;
        CheckGradient(op, p, inputScale, trainChannels);
        KernelChecks.Range(op, "x", x, xOff, (long)p.C * p.H * p.W);
        TrainingChecks.Floats(op, "dy", dy, dyOff, (long)p.C * p.OH * p.OW);
        if (dw != null && dw.Length < (long)trainChannels * k * k)
        {
            throw new TinyTrainException($"{op}: dw holds {dw.Length} floats; trainChannels * K * K = {(long)trainChannels * k * k} are needed.");
        }
        if (db != null && db.Length < p.C)
        {
            throw new TinyTrainException($"{op}: db holds {db.Length} floats; C = {p.C} are needed.");
        }

        for (int c = 0; c < p.C; c++)
        {
            if (dw != null && c < trainChannels)
            {
                for (int ky = 0; ky < k; ky++)
                {
                    for (int kx = 0; kx < k; kx++)
                    {
                        dw[(c * k + ky) * k + kx] = TapGradient(p, x, xOff, dy, dyOff, c, ky, kx) * inputScale;
                    }
                }
            }
            if (db != null)
            {
                db[c] = TrainingUpdate.Sum(dy, dyOff + 4 * c * p.OH * p.OW, p.OH * p.OW);
            }
        }
    }

    // Σ over output positions of dy[c, oy, ox] * (x[c, iy, ix] - zp_x) for one tap, in input units (times s_x: real).
    private static float TapGradient(in DepthwiseParams p, byte[] x, int xOff, byte[] dy, int dyOff, int c, int ky, int kx)
    {
        int xPlane = xOff + c * p.H * p.W;
        int dyPlane = dyOff + 4 * c * p.OH * p.OW;
        float sum = 0f;
        for (int oy = 0; oy < p.OH; oy++)
        {
            int iy = oy * p.Stride - p.Pad + ky;
            if (iy < 0 || iy >= p.H)
            {
                continue;
            }
            for (int ox = 0; ox < p.OW; ox++)
            {
                int ix = ox * p.Stride - p.Pad + kx;
                if (ix < 0 || ix >= p.W)
                {
                    continue;
                }
                sum += FloatBits.Read(dy, dyPlane + 4 * (oy * p.OW + ox)) * ((sbyte)x[xPlane + iy * p.W + ix] - p.InputZeroPoint);
            }
        }
        return sum;
    }

    private static void CheckGradient(string op, in DepthwiseParams p, float inputScale, int trainChannels)
    {
        CheckShape(op, p);
        KernelChecks.Int8(op, "InputZeroPoint", p.InputZeroPoint);
        TrainingChecks.Scale(op, "inputScale", inputScale);
        TrainingChecks.TrainChannels(op, trainChannels, p.C, "channels");
    }

    private static void CheckShape(string op, in DepthwiseParams p)
    {
        KernelChecks.Positive(op, "C", p.C);
        KernelChecks.Positive(op, "H", p.H);
        KernelChecks.Positive(op, "W", p.W);
        KernelChecks.Positive(op, "Kernel", p.Kernel);
        KernelChecks.Positive(op, "Stride", p.Stride);
        if (p.Pad < 0)
        {
            throw new TinyTrainException($"{op}: Pad is {p.Pad}; it must not be negative.");
        }
        KernelChecks.Positive(op, "OH", p.OH);
        KernelChecks.Positive(op, "OW", p.OW);
        KernelChecks.Output(op, "OH", p.OH, (p.H + 2 * p.Pad - p.Kernel) / p.Stride + 1, "(H + 2*Pad - Kernel) / Stride + 1");
        KernelChecks.Output(op, "OW", p.OW, (p.W + 2 * p.Pad - p.Kernel) / p.Stride + 1, "(W + 2*Pad - Kernel) / Stride + 1");
    }
}
