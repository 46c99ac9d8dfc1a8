namespace TinyTrain.Runtime.Kernels;

public static partial class FullyConnected
{
    // The specification: plain loops, arrays and offsets, ints and longs (portable to nanoFramework).
    private static void Reference(in FullyConnectedParams p, byte[] x, int xOff, byte[] w, int wOff, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff, byte[] y, int yOff, byte[]? mask, int maskOff, int maskMode)
    {
        // Fused mask (maskMode 1 or 2): all bits 0, then a 1 for each output whose activation passes the gradient.
        if (maskMode != 0)
        {
            int maskBytes = (p.Out + 7) / 8;
            for (int i = 0; i < maskBytes; i++)
            {
                mask![maskOff + i] = 0;
            }
        }
        for (int o = 0; o < p.Out; o++)
        {
            int acc = biasOff >= 0 ? Quant.ReadInt32(biases, biasOff + 4 * o) : 0;
            int wRow = wOff + o * p.In;
            for (int i = 0; i < p.In; i++)
            {
                acc += ((sbyte)x[xOff + i] - p.InputZeroPoint) * (sbyte)w[wRow + i];
            }
            int v = p.OutputZeroPoint + Quant.MultiplyByQuantizedMultiplier(acc, Quant.ReadInt32(consts, multOff + 4 * o), Quant.ReadInt32(consts, shiftOff + 4 * o));
            // acc > 0 is the sign of the real pre-activation; ReLU6 also needs the unclamped value below the top.
            if (maskMode != 0 && acc > 0 && (maskMode == 1 || v < p.ActMax))
            {
                mask![maskOff + o / 8] |= (byte)(1 << (o % 8));
            }
            if (v < p.ActMin)
            {
                v = p.ActMin;
            }
            if (v > p.ActMax)
            {
                v = p.ActMax;
            }
            y[yOff + o] = (byte)v;
        }
    }
}
