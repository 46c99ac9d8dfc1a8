namespace TinyTrain.Runtime.Kernels;

public static partial class GlobalAvgPool
{
    // The specification: plain loops, arrays and offsets, ints and longs (portable to nanoFramework).
    private static void Reference(in PoolParams p, byte[] x, int xOff, byte[] y, int yOff)
    {
        int count = p.H * p.W;
        for (int c = 0; c < p.C; c++)
        {
            int sum = 0;
            int plane = xOff + c * count;
            for (int i = 0; i < count; i++)
            {
                sum += (sbyte)x[plane + i];
            }
            y[yOff + c] = (byte)AvgPool.Clamp(AvgPool.Average(sum, count), p.ActMin, p.ActMax);
        }
    }
}
