namespace TinyTrain.Runtime.Kernels;

/// <summary>AvgPool's backward kernel (<see cref="Plans.OpKind.AvgPoolBackward"/>). Reference code, portable to nanoFramework.</summary>
public static partial class AvgPool
{
    /// <summary>
    /// dx = the adjoint of the (real-valued) mean over each Kernel x Kernel window, the forward's integer rounding
    /// passed straight through: dx[c, iy, ix] = Σ over windows that hold (iy, ix) of dy[c, oy, ox] / Kernel^2;
    /// inputs no window reads get 0.
    ///   dy (C, OH, OW) float32, dx (C, H, W) float32. accumulate: dx += the result instead of dx = it.
    /// Reads C, H, W, OH, OW, Kernel and Stride of <paramref name="p"/>.
    /// </summary>
    public static void Backward(in PoolParams p, byte[] dy, int dyOff, byte[] dx, int dxOff, bool accumulate)
    {
        const string op = "AvgPool.Backward";
        KernelChecks.Positive(op, "C", p.C);
        KernelChecks.Positive(op, "H", p.H);
        KernelChecks.Positive(op, "W", p.W);
        KernelChecks.Positive(op, "Kernel", p.Kernel);
        KernelChecks.Positive(op, "Stride", p.Stride);
        if (p.Kernel > p.H || p.Kernel > p.W)
        {
            throw new TinyTrainException($"{op}: Kernel {p.Kernel} is larger than the input ({p.H} x {p.W}); there is no padding.");
        }
        KernelChecks.Output(op, "OH", p.OH, (p.H - p.Kernel) / p.Stride + 1, "(H - Kernel) / Stride + 1");
        KernelChecks.Output(op, "OW", p.OW, (p.W - p.Kernel) / p.Stride + 1, "(W - Kernel) / Stride + 1");
        long dyCount = (long)p.C * p.OH * p.OW;
        long dxCount = (long)p.C * p.H * p.W;
        TrainingChecks.Floats(op, "dy", dy, dyOff, dyCount);
        TrainingChecks.Floats(op, "dx", dx, dxOff, dxCount);
        TrainingChecks.Apart(op, "dy", dy, dyOff, 4 * dyCount, "dx", dx, dxOff, 4 * dxCount);

        int k = p.Kernel;
        float n = k * k;
        for (int c = 0; c < p.C; c++)
        {
            int dyPlane = dyOff + 4 * c * p.OH * p.OW;
            for (int iy = 0; iy < p.H; iy++)
            {
                // Windows oy with oy*Stride <= iy < oy*Stride + Kernel.
                int oyFirst = iy - k + 1 <= 0 ? 0 : (iy - k + p.Stride) / p.Stride;
                int oyLast = iy / p.Stride;
                if (oyLast >= p.OH)
                {
                    oyLast = p.OH - 1;
                }
                for (int ix = 0; ix < p.W; ix++)
                {
                    int oxFirst = ix - k + 1 <= 0 ? 0 : (ix - k + p.Stride) / p.Stride;
                    int oxLast = ix / p.Stride;
                    if (oxLast >= p.OW)
                    {
                        oxLast = p.OW - 1;
                    }
                    float sum = 0f;
                    for (int oy = oyFirst; oy <= oyLast; oy++)
                    {
                        for (int ox = oxFirst; ox <= oxLast; ox++)
                        {
                            sum += FloatBits.Read(dy, dyPlane + 4 * (oy * p.OW + ox));
                        }
                    }
                    sum /= n;
                    int at = dxOff + 4 * ((c * p.H + iy) * p.W + ix);
                    FloatBits.Write(dx, at, accumulate ? FloatBits.Read(dx, at) + sum : sum);
                }
            }
        }
    }
}
