namespace TinyTrain.Runtime.Kernels;

public static partial class DepthwiseConv2D
{
    // The specification: plain loops, arrays and offsets, ints and longs (portable to nanoFramework).
    private static void Reference(in DepthwiseParams p, byte[] x, int xOff, byte[] w, int wOff, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff, byte[] y, int yOff, byte[]? mask, int maskOff, int maskMode)
    {
        // Fused mask (maskMode 1 or 2): all bits 0, then a 1 for each output whose activation passes the gradient.
        if (maskMode != 0)
        {
            int maskBytes = (p.C * p.OH * p.OW + 7) / 8;
            for (int i = 0; i < maskBytes; i++)
            {
                mask![maskOff + i] = 0;
            }
        }
        int k = p.Kernel;
        int plane = p.H * p.W;
        for (int c = 0; c < p.C; c++)
        {
            int bias = biasOff >= 0 ? Quant.ReadInt32(biases, biasOff + 4 * c) : 0;
            int multiplier = Quant.ReadInt32(consts, multOff + 4 * c);
            int shift = Quant.ReadInt32(consts, shiftOff + 4 * c);
            int xPlane = xOff + c * plane;
            int wTap = wOff + c * k * k;
            for (int oy = 0; oy < p.OH; oy++)
            {
                for (int ox = 0; ox < p.OW; ox++)
                {
                    int acc = bias;
                    for (int ky = 0; ky < k; ky++)
                    {
                        int iy = oy * p.Stride - p.Pad + ky;
                        if (iy < 0 || iy >= p.H)
                        {
                            continue;
                        }
                        for (int kx = 0; kx < k; kx++)
                        {
                            int ix = ox * p.Stride - p.Pad + kx;
                            if (ix < 0 || ix >= p.W)
                            {
                                continue;
                            }
                            acc += ((sbyte)x[xPlane + iy * p.W + ix] - p.InputZeroPoint) * (sbyte)w[wTap + ky * k + kx];
                        }
                    }
                    int v = p.OutputZeroPoint + Quant.MultiplyByQuantizedMultiplier(acc, multiplier, shift);
                    // acc > 0 is the sign of the real pre-activation; ReLU6 also needs the unclamped value below the top.
                    if (maskMode != 0 && acc > 0 && (maskMode == 1 || v < p.ActMax))
                    {
                        int bit = (c * p.OH + oy) * p.OW + ox;
                        mask![maskOff + bit / 8] |= (byte)(1 << (bit % 8));
                    }
                    if (v < p.ActMin)
                    {
                        v = p.ActMin;
                    }
                    if (v > p.ActMax)
                    {
                        v = p.ActMax;
                    }
                    y[yOff + (c * p.OH + oy) * p.OW + ox] = (byte)v;
                }
            }
        }
    }
}
