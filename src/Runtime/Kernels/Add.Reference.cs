namespace TinyTrain.Runtime.Kernels;

public static partial class Add
{
    // The specification: plain loops, arrays and offsets, ints and longs (portable to nanoFramework).
    private static void Reference(in AddParams p, byte[] x0, int x0Off, byte[] x1, int x1Off, byte[] y, int yOff)
    {
        for (int i = 0; i < p.Count; i++)
        {
            y[yOff + i] = (byte)Element(p, (sbyte)x0[x0Off + i], (sbyte)x1[x1Off + i]);
        }
    }

    // One output from two int8 inputs; the fast path uses it for its tail.
    private static int Element(in AddParams p, int a, int b)
    {
        int scaled0 = Quant.MultiplyByQuantizedMultiplier((a - p.Input0ZeroPoint) * (1 << p.LeftShift), p.Input0Multiplier, p.Input0Shift);
        int scaled1 = Quant.MultiplyByQuantizedMultiplier((b - p.Input1ZeroPoint) * (1 << p.LeftShift), p.Input1Multiplier, p.Input1Shift);
        int v = p.OutputZeroPoint + Quant.MultiplyByQuantizedMultiplier(scaled0 + scaled1, p.OutputMultiplier, p.OutputShift);
        if (v < p.ActMin)
        {
            v = p.ActMin;
        }
        if (v > p.ActMax)
        {
            v = p.ActMax;
        }
        return v;
    }
}
