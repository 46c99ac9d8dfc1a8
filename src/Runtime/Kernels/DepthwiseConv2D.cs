namespace TinyTrain.Runtime.Kernels;

/// <summary>Shape and quantization of one int8 depthwise convolution (<see cref="Plans.OpKind.DepthwiseConv2D"/>).</summary>
public struct DepthwiseParams
{
    /// <summary>x is (C, H, W); y is (C, OH, OW); OH = (H + 2*Pad - Kernel) / Stride + 1, likewise OW.</summary>
    public int C, H, W, OH, OW;
    /// <summary>w is (C, 1, Kernel, Kernel); zero padding of Pad on every side.</summary>
    public int Kernel, Stride, Pad;
    public int InputZeroPoint, OutputZeroPoint;
    public int ActMin, ActMax;
}

/// <summary>
/// int8 depthwise convolution (groups == C, one filter per channel), TFLite semantics, channels first.
///   x (C, H, W) int8, w (C, 1, K, K) int8, bias (optional: biasOff &lt; 0 means none), multiplier, shift: int32 x C,
///   y[c, oy, ox] = clamp(zp_y + MBQM(bias[c] + sum (x - zp_x) * w, multiplier[c], shift[c]), actMin, actMax).
/// y must not overlap x.
/// For training it can also write the fused ReLU / ReLU6 gradient mask from the exact accumulator (see Run).
/// </summary>
public static partial class DepthwiseConv2D
{
    private const string Op = "DepthwiseConv2D";

    /// <summary>The scalar reference, whatever <see cref="KernelMode"/> says.</summary>
    public static void RunReference(in DepthwiseParams p, byte[] x, int xOff, byte[] w, int wOff, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff, byte[] y, int yOff)
    {
        RunReference(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, null, -1, 0);
    }

    /// <summary>The scalar reference, with the fused mask as in <c>Run</c>.</summary>
    public static void RunReference(in DepthwiseParams p, byte[] x, int xOff, byte[] w, int wOff, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff, byte[] y, int yOff, byte[]? mask, int maskOff, int maskMode)
    {
        Check(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, mask, maskOff, maskMode);
        Reference(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, mask, maskOff, maskMode);
    }

    private static void Check(in DepthwiseParams p, byte[] x, int xOff, byte[] w, int wOff, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff, byte[] y, int yOff, byte[]? mask, int maskOff, int maskMode)
    {
        KernelChecks.Positive(Op, "C", p.C);
        KernelChecks.Positive(Op, "H", p.H);
        KernelChecks.Positive(Op, "W", p.W);
        KernelChecks.Positive(Op, "Kernel", p.Kernel);
        KernelChecks.Positive(Op, "Stride", p.Stride);
        if (p.Pad < 0)
        {
            throw new TinyTrainException($"{Op}: Pad is {p.Pad}; it must not be negative.");
        }
        KernelChecks.Positive(Op, "OH", p.OH);
        KernelChecks.Positive(Op, "OW", p.OW);
        KernelChecks.Output(Op, "OH", p.OH, (p.H + 2 * p.Pad - p.Kernel) / p.Stride + 1, "(H + 2*Pad - Kernel) / Stride + 1");
        KernelChecks.Output(Op, "OW", p.OW, (p.W + 2 * p.Pad - p.Kernel) / p.Stride + 1, "(W + 2*Pad - Kernel) / Stride + 1");
        KernelChecks.Int8(Op, "InputZeroPoint", p.InputZeroPoint);
        KernelChecks.Int8(Op, "OutputZeroPoint", p.OutputZeroPoint);
        KernelChecks.Activation(Op, p.ActMin, p.ActMax);
        long xLen = (long)p.C * p.H * p.W;
        long wLen = (long)p.C * p.Kernel * p.Kernel;
        long yLen = (long)p.C * p.OH * p.OW;
        KernelChecks.Range(Op, "x", x, xOff, xLen);
        KernelChecks.Range(Op, "w", w, wOff, wLen);
        KernelChecks.Constants(Op, biases, biasOff, consts, multOff, shiftOff, p.C);
        KernelChecks.Range(Op, "y", y, yOff, yLen);
        KernelChecks.Disjoint(Op, "x", x, xOff, xLen, y, yOff, yLen);
        KernelChecks.Mask(Op, mask, maskOff, maskMode, yLen, x, xOff, xLen, w, wOff, wLen, y, yOff, yLen);
    }
}
