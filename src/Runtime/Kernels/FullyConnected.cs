namespace TinyTrain.Runtime.Kernels;

/// <summary>Shape and quantization of one int8 fully connected layer (<see cref="Plans.OpKind.FullyConnected"/>).</summary>
public struct FullyConnectedParams
{
    /// <summary>x is flat (In); w is (Out, In); y is (Out).</summary>
    public int In, Out;
    public int InputZeroPoint, OutputZeroPoint;
    public int ActMin, ActMax;
}

/// <summary>
/// int8 fully connected layer, TFLite semantics.
///   x (In) int8, w (Out, In) int8, bias (optional: biasOff &lt; 0 means none), multiplier, shift: int32 x Out,
///   y[o] = clamp(zp_y + MBQM(bias[o] + sum_i (x[i] - zp_x) * w[o, i], multiplier[o], shift[o]), actMin, actMax).
/// y must not overlap x.
/// For training it can also write the fused ReLU / ReLU6 gradient mask from the exact accumulator (see Run).
/// </summary>
public static partial class FullyConnected
{
    private const string Op = "FullyConnected";

    /// <summary>The scalar reference, whatever <see cref="KernelMode"/> says.</summary>
    public static void RunReference(in FullyConnectedParams p, byte[] x, int xOff, byte[] w, int wOff, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff, byte[] y, int yOff)
    {
        RunReference(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, null, -1, 0);
    }

    /// <summary>The scalar reference, with the fused mask as in <c>Run</c>.</summary>
    public static void RunReference(in FullyConnectedParams p, byte[] x, int xOff, byte[] w, int wOff, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff, byte[] y, int yOff, byte[]? mask, int maskOff, int maskMode)
    {
        Check(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, mask, maskOff, maskMode);
        Reference(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, mask, maskOff, maskMode);
    }

    private static void Check(in FullyConnectedParams p, byte[] x, int xOff, byte[] w, int wOff, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff, byte[] y, int yOff, byte[]? mask, int maskOff, int maskMode)
    {
        KernelChecks.Positive(Op, "In", p.In);
        KernelChecks.Positive(Op, "Out", p.Out);
        KernelChecks.Int8(Op, "InputZeroPoint", p.InputZeroPoint);
        KernelChecks.Int8(Op, "OutputZeroPoint", p.OutputZeroPoint);
        KernelChecks.Activation(Op, p.ActMin, p.ActMax);
        KernelChecks.Range(Op, "x", x, xOff, p.In);
        long wLen = (long)p.Out * p.In;
        KernelChecks.Range(Op, "w", w, wOff, wLen);
        KernelChecks.Constants(Op, biases, biasOff, consts, multOff, shiftOff, p.Out);
        KernelChecks.Range(Op, "y", y, yOff, p.Out);
        KernelChecks.Disjoint(Op, "x", x, xOff, p.In, y, yOff, p.Out);
        KernelChecks.Mask(Op, mask, maskOff, maskMode, p.Out, x, xOff, p.In, w, wOff, wLen, y, yOff, p.Out);
    }
}
