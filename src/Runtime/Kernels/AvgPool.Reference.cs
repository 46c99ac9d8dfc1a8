namespace TinyTrain.Runtime.Kernels;

public static partial class AvgPool
{
    // The specification: plain loops, arrays and offsets, ints and longs (portable to nanoFramework).
    private static void Reference(in PoolParams p, byte[] x, int xOff, byte[] y, int yOff)
    {
        int k = p.Kernel;
        int count = k * k;
        for (int c = 0; c < p.C; c++)
        {
            int xPlane = xOff + c * p.H * p.W;
            for (int oy = 0; oy < p.OH; oy++)
            {
                for (int ox = 0; ox < p.OW; ox++)
                {
                    int sum = 0;
                    for (int ky = 0; ky < k; ky++)
                    {
                        int row = xPlane + (oy * p.Stride + ky) * p.W + ox * p.Stride;
                        for (int kx = 0; kx < k; kx++)
                        {
                            sum += (sbyte)x[row + kx];
                        }
                    }
                    y[yOff + (c * p.OH + oy) * p.OW + ox] = (byte)Clamp(Average(sum, count), p.ActMin, p.ActMax);
                }
            }
        }
    }

    /// <summary>TFLite's integer average: sum / count rounded half away from zero (C# division truncates).</summary>
    internal static int Average(int sum, int count)
    {
        return sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
    }

    internal static int Clamp(int v, int min, int max)
    {
        if (v < min)
        {
            return min;
        }
        if (v > max)
        {
            return max;
        }
        return v;
    }
}
