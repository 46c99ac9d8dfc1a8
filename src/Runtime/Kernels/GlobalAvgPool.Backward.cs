namespace TinyTrain.Runtime.Kernels;

/// <summary>GlobalAvgPool's backward kernel (<see cref="Plans.OpKind.GlobalAvgPoolBackward"/>). Reference code, portable to nanoFramework.</summary>
public static partial class GlobalAvgPool
{
    /// <summary>
    /// dx[c, :, :] = dy[c] / (H*W), the forward's integer rounding passed straight through.
    ///   dy (C, 1, 1) float32, dx (C, H, W) float32. accumulate: dx += the result instead of dx = it.
    /// Reads C, H and W of <paramref name="p"/>.
    /// </summary>
    public static void Backward(in PoolParams p, byte[] dy, int dyOff, byte[] dx, int dxOff, bool accumulate)
    {
        const string op = "GlobalAvgPool.Backward";
        KernelChecks.Positive(op, "C", p.C);
        KernelChecks.Positive(op, "H", p.H);
        KernelChecks.Positive(op, "W", p.W);
        long plane = (long)p.H * p.W;
        long dxCount = p.C * plane;
        TrainingChecks.Floats(op, "dy", dy, dyOff, p.C);
        TrainingChecks.Floats(op, "dx", dx, dxOff, dxCount);
        TrainingChecks.Apart(op, "dy", dy, dyOff, 4L * p.C, "dx", dx, dxOff, 4 * dxCount);

        int count = p.H * p.W;
        float n = count;
        for (int c = 0; c < p.C; c++)
        {
            float g = FloatBits.Read(dy, dyOff + 4 * c) / n;
            int at = dxOff + 4 * c * count;
            for (int i = 0; i < count; i++)
            {
                FloatBits.Write(dx, at, accumulate ? FloatBits.Read(dx, at) + g : g);
                at += 4;
            }
        }
    }
}
