namespace TinyTrain.Runtime.Kernels;

/// <summary>
/// Conv2D's backward kernels (<see cref="Plans.OpKind.Conv2DBackwardInput"/>, <see cref="Plans.OpKind.Conv2DUpdate"/>).
/// Reference code: plain loops, portable to nanoFramework; float32 gradients via <see cref="FloatBits"/>.
/// </summary>
public static partial class Conv2D
{
    /// <summary>The scalar reference of <see cref="BackwardInput"/>, whatever <see cref="KernelMode"/> says.</summary>
    public static void BackwardInputReference(in ConvParams p, byte[] dy, int dyOff, byte[] w, int wOff, byte[] scales, int scaleOff, byte[] dx, int dxOff, bool accumulate)
    {
        CheckBackwardInput(p, dy, dyOff, w, wOff, scales, scaleOff, dx, dxOff);
        BackwardInputReferenceCore(p, dy, dyOff, w, wOff, scales, scaleOff, dx, dxOff, accumulate);
    }

    private static void CheckBackwardInput(in ConvParams p, byte[] dy, int dyOff, byte[] w, int wOff, byte[] scales, int scaleOff, byte[] dx, int dxOff)
    {
        const string op = "Conv2D.BackwardInput";
        CheckShape(op, p);
        long dyCount = (long)p.OutC * p.OH * p.OW;
        long dxCount = (long)p.InC * p.H * p.W;
        long wLen = (long)p.OutC * (p.InC / p.Groups) * p.Kernel * p.Kernel;
        TrainingChecks.Floats(op, "dy", dy, dyOff, dyCount);
        KernelChecks.Range(op, "w", w, wOff, wLen);
        TrainingChecks.Floats(op, "scales", scales, scaleOff, p.OutC);
        TrainingChecks.Floats(op, "dx", dx, dxOff, dxCount);
        TrainingChecks.Apart(op, "dy", dy, dyOff, 4 * dyCount, "dx", dx, dxOff, 4 * dxCount);
        TrainingChecks.Apart(op, "w", w, wOff, wLen, "dx", dx, dxOff, 4 * dxCount);
        TrainingChecks.Apart(op, "scales", scales, scaleOff, 4L * p.OutC, "dx", dx, dxOff, 4 * dxCount);
    }

    private static void BackwardInputReferenceCore(in ConvParams p, byte[] dy, int dyOff, byte[] w, int wOff, byte[] scales, int scaleOff, byte[] dx, int dxOff, bool accumulate)
    {
        int k = p.Kernel;
        int icPerGroup = p.InC / p.Groups;
        int ocPerGroup = p.OutC / p.Groups;
        for (int ic = 0; ic < p.InC; ic++)
        {
            int group = ic / icPerGroup;
            int icInGroup = ic - group * icPerGroup;
            for (int iy = 0; iy < p.H; iy++)
            {
                for (int ix = 0; ix < p.W; ix++)
                {
                    // Gather: each dx element is written once, so accumulate is one read-add-write.
                    float sum = 0f;
                    for (int o = 0; o < ocPerGroup; o++)
                    {
                        int oc = group * ocPerGroup + o;
                        int wTap = wOff + (oc * icPerGroup + icInGroup) * k * k;
                        int dyPlane = dyOff + 4 * oc * p.OH * p.OW;
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
                        sum += acc * FloatBits.Read(scales, scaleOff + 4 * oc);
                    }
                    int at = dxOff + 4 * ((ic * p.H + iy) * p.W + ix);
                    FloatBits.Write(dx, at, accumulate ? FloatBits.Read(dx, at) + sum : sum);
                }
            }
        }
    }

    /// <summary>
    /// Computes and applies, one element at a time, the gradient of the trained weights (the first
    /// <paramref name="trainChannels"/> input channels of each group, every output channel) and of the bias:
    ///   g[oc, ic, ky, kx] = s_x Σ_(oy,ox) dy[oc, oy, ox] (x[ic, iy, ix] - zp_x) (padded taps add nothing),
    ///   g_b[oc] = Σ dy[oc, :, :], each stepped by <see cref="UpdateRule"/> with stochastic rounding.
    ///   x (InC, H, W) int8, dy (OutC, OH, OW) float32, w (OutC, InC/Groups, K, K) int8 written in place
    ///   (wOff &lt; 0: weights not trained), bias (OutC) int32 written in place (biasOff &lt; 0: not trained),
    ///   scales (OutC) float32, state float32 momentum (stateOff &lt; 0: none): the trained weights in order
    ///   (oc, ic &lt; trainChannels, ky, kx), then the biases (OutC); an absent tensor takes no entries.
    /// Reads the shape fields and InputZeroPoint of <paramref name="p"/>; <paramref name="inputScale"/> is s_x.
    /// </summary>
    public static void Update(in ConvParams p, byte[] x, int xOff, byte[] dy, int dyOff, byte[] w, int wOff, byte[] bias, int biasOff,
        byte[] scales, int scaleOff, float inputScale, int trainChannels, in UpdateRule rule, byte[] state, int stateOff, ref uint rng)
    {
        const string op = "Conv2D.Update";
        int k = p.Kernel;
        CheckGradient(op, p, inputScale, trainChannels);
        TrainingChecks.Rule(op, rule);
        TrainingChecks.Rng(op, rng);
        int icPerGroup = p.InC / p.Groups;
        long trainedWeights = (long)p.OutC * trainChannels * k * k;
        TrainingChecks.UpdateBuffers(op, x, xOff, (long)p.InC * p.H * p.W, dy, dyOff, (long)p.OutC * p.OH * p.OW,
            scales, scaleOff, p.OutC, w, wOff, (long)p.OutC * icPerGroup * k * k, bias, biasOff,
            state, stateOff, TrainingUpdate.StateCount(wOff, trainedWeights, biasOff, p.OutC));

        int ocPerGroup = p.OutC / p.Groups;
        int biasState = wOff >= 0 ? (int)trainedWeights : 0;
        for (int oc = 0; oc < p.OutC; oc++)
        {
            float sw = FloatBits.Read(scales, scaleOff + 4 * oc);
            if (wOff >= 0)
            {
                int icBase = (oc / ocPerGroup) * icPerGroup;
                for (int i = 0; i < trainChannels; i++)
                {
                    for (int ky = 0; ky < k; ky++)
                    {
                        for (int kx = 0; kx < k; kx++)
                        {
                            float g = TapGradient(p, x, xOff, dy, dyOff, oc, icBase + i, ky, kx) * inputScale;
                            int index = ((oc * trainChannels + i) * k + ky) * k + kx;
                            int at = wOff + ((oc * icPerGroup + i) * k + ky) * k + kx;
                            TrainingUpdate.Weight(w, at, g, sw, rule, state, stateOff < 0 ? -1 : stateOff + 4 * index, ref rng);
                        }
                    }
                }
            }
            if (biasOff >= 0)
            {
                float gb = TrainingUpdate.Sum(dy, dyOff + 4 * oc * p.OH * p.OW, p.OH * p.OW);
                TrainingUpdate.Bias(bias, biasOff + 4 * oc, gb, inputScale * sw, rule, state, stateOff < 0 ? -1 : stateOff + 4 * (biasState + oc), ref rng);
            }
        }
    }

    /// <summary>
    /// The real-units gradient that <see cref="Update"/> applies, written out instead: dw (OutC, trainChannels, K, K)
    /// and db (OutC), each optional (null: not wanted). For tests and the gradient probe; allocates nothing.
    /// </summary>
    public static void WeightGradient(in ConvParams p, byte[] x, int xOff, byte[] dy, int dyOff, float inputScale, int trainChannels, float[]? dw, float[]? db)
    {
        const string op = "Conv2D.WeightGradient";
        int k = p.Kernel;
        CheckGradient(op, p, inputScale, trainChannels);
        KernelChecks.Range(op, "x", x, xOff, (long)p.InC * p.H * p.W);
        TrainingChecks.Floats(op, "dy", dy, dyOff, (long)p.OutC * p.OH * p.OW);
        if (dw != null && dw.Length < (long)p.OutC * trainChannels * k * k)
        {
            throw new TinyTrainException($"{op}: dw holds {dw.Length} floats; OutC * trainChannels * K * K = {(long)p.OutC * trainChannels * k * k} are needed.");
        }
        if (db != null && db.Length < p.OutC)
        {
            throw new TinyTrainException($"{op}: db holds {db.Length} floats; OutC = {p.OutC} are needed.");
        }

        int icPerGroup = p.InC / p.Groups;
        int ocPerGroup = p.OutC / p.Groups;
        for (int oc = 0; oc < p.OutC; oc++)
        {
            if (dw != null)
            {
                int icBase = (oc / ocPerGroup) * icPerGroup;
                for (int i = 0; i < trainChannels; i++)
                {
                    for (int ky = 0; ky < k; ky++)
                    {
                        for (int kx = 0; kx < k; kx++)
                        {
                            dw[((oc * trainChannels + i) * k + ky) * k + kx] = TapGradient(p, x, xOff, dy, dyOff, oc, icBase + i, ky, kx) * inputScale;
                        }
                    }
                }
            }
            if (db != null)
            {
                db[oc] = TrainingUpdate.Sum(dy, dyOff + 4 * oc * p.OH * p.OW, p.OH * p.OW);
            }
        }
    }

    // Σ over output positions of dy[oc, oy, ox] * (x[ic, iy, ix] - zp_x) for one tap, in input units (times s_x: real).
    private static float TapGradient(in ConvParams p, byte[] x, int xOff, byte[] dy, int dyOff, int oc, int ic, int ky, int kx)
    {
        int xPlane = xOff + ic * p.H * p.W;
        int dyPlane = dyOff + 4 * oc * p.OH * p.OW;
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

    private static void CheckGradient(string op, in ConvParams p, float inputScale, int trainChannels)
    {
        CheckShape(op, p);
        KernelChecks.Int8(op, "InputZeroPoint", p.InputZeroPoint);
        TrainingChecks.Scale(op, "inputScale", inputScale);
        TrainingChecks.TrainChannels(op, trainChannels, p.InC / p.Groups, "input channels per group");
    }

    private static void CheckShape(string op, in ConvParams p)
    {
        KernelChecks.Positive(op, "InC", p.InC);
        KernelChecks.Positive(op, "H", p.H);
        KernelChecks.Positive(op, "W", p.W);
        KernelChecks.Positive(op, "OutC", p.OutC);
        KernelChecks.Positive(op, "Kernel", p.Kernel);
        KernelChecks.Positive(op, "Stride", p.Stride);
        KernelChecks.Positive(op, "Groups", p.Groups);
        if (p.Pad < 0)
        {
            throw new TinyTrainException($"{op}: Pad is {p.Pad}; it must not be negative.");
        }
        if (p.InC % p.Groups != 0 || p.OutC % p.Groups != 0)
        {
            throw new TinyTrainException($"{op}: Groups {p.Groups} must divide both InC {p.InC} and OutC {p.OutC}.");
        }
        KernelChecks.Positive(op, "OH", p.OH);
        KernelChecks.Positive(op, "OW", p.OW);
        KernelChecks.Output(op, "OH", p.OH, (p.H + 2 * p.Pad - p.Kernel) / p.Stride + 1, "(H + 2*Pad - Kernel) / Stride + 1");
        KernelChecks.Output(op, "OW", p.OW, (p.W + 2 * p.Pad - p.Kernel) / p.Stride + 1, "(W + 2*Pad - Kernel) / Stride + 1");
    }
}
