namespace TinyTrain.Runtime.Kernels;

/// <summary>Shape and quantization of one int8 Conv2D (<see cref="Plans.OpKind.Conv2D"/>).</summary>
public struct ConvParams
{
    /// <summary>x is (InC, H, W).</summary>
    public int InC, H, W;
    /// <summary>y is (OutC, OH, OW); OH = (H + 2*Pad - Kernel) / Stride + 1, likewise OW.</summary>
    public int OutC, OH, OW;
    /// <summary>w is (OutC, InC/Groups, Kernel, Kernel); zero padding of Pad on every side.</summary>
    public int Kernel, Stride, Pad, Groups;
    public int InputZeroPoint, OutputZeroPoint;
    public int ActMin, ActMax;
}

/// <summary>
/// int8 2-D convolution (dense, grouped, pointwise), TFLite semantics, channels first, batch 1.
///   x (InC, H, W) int8, w (OutC, InC/Groups, K, K) int8 (zero point 0),
///   bias (optional: biasOff &lt; 0 means none), multiplier, shift: int32 x OutC, little-endian in consts,
///   y[c, oy, ox] = clamp(zp_y + MBQM(bias[c] + sum (x - zp_x) * w, multiplier[c], shift[c]), actMin, actMax).
/// Padded positions contribute nothing (they hold the input zero point). y must not overlap x.
/// For training it can also write the fused ReLU / ReLU6 gradient mask from the exact accumulator (see Run).
/// </summary>
public static partial class Conv2D
{
    private const string Op = "Conv2D";

    /// <summary>The scalar reference, whatever <see cref="KernelMode"/> says.</summary>
    public static void RunReference(in ConvParams p, byte[] x, int xOff, byte[] w, int wOff, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff, byte[] y, int yOff)
    {
        RunReference(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, null, -1, 0);
    }

    /// <summary>The scalar reference, with the fused mask as in <c>Run</c>.</summary>
    public static void RunReference(in ConvParams p, byte[] x, int xOff, byte[] w, int wOff, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff, byte[] y, int yOff, byte[]? mask, int maskOff, int maskMode)
    {
        Check(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, mask, maskOff, maskMode);
        Reference(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff, mask, maskOff, maskMode);
    }

    private static void Check(in ConvParams p, byte[] x, int xOff, byte[] w, int wOff, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff, byte[] y, int yOff, byte[]? mask, int maskOff, int maskMode)
    {
        KernelChecks.Positive(Op, "InC", p.InC);
        KernelChecks.Positive(Op, "H", p.H);
        KernelChecks.Positive(Op, "W", p.W);
        KernelChecks.Positive(Op, "OutC", p.OutC);
        KernelChecks.Positive(Op, "Kernel", p.Kernel);
        KernelChecks.Positive(Op, "Stride", p.Stride);
        KernelChecks.Positive(Op, "Groups", p.Groups);
        if (p.Pad < 0)
        {
            throw new TinyTrainException($"{Op}: Pad is {p.Pad}; it must not be negative.");
        }
        if (p.InC % p.Groups != 0 || p.OutC % p.Groups != 0)
        {
            throw new TinyTrainException($"{Op}: Groups {p.Groups} must divide both InC {p.InC} and OutC {p.OutC}.");
        }
        KernelChecks.Positive(Op, "OH", p.OH);
        KernelChecks.Positive(Op, "OW", p.OW);
        KernelChecks.Output(Op, "OH", p.OH, (p.H + 2 * p.Pad - p.Kernel) / p.Stride + 1, "(H + 2*Pad - Kernel) / Stride + 1");
        KernelChecks.Output(Op, "OW", p.OW, (p.W + 2 * p.Pad - p.Kernel) / p.Stride + 1, "(W + 2*Pad - Kernel) / Stride + 1");
        KernelChecks.Int8(Op, "InputZeroPoint", p.InputZeroPoint);
        KernelChecks.Int8(Op, "OutputZeroPoint", p.OutputZeroPoint);
        KernelChecks.Activation(Op, p.ActMin, p.ActMax);
        long xLen = (long)p.InC * p.H * p.W;
        long wLen = (long)p.OutC * (p.InC / p.Groups) * p.Kernel * p.Kernel;
        long yLen = (long)p.OutC * p.OH * p.OW;
        KernelChecks.Range(Op, "x", x, xOff, xLen);
        KernelChecks.Range(Op, "w", w, wOff, wLen);
        KernelChecks.Constants(Op, biases, biasOff, consts, multOff, shiftOff, p.OutC);
        KernelChecks.Range(Op, "y", y, yOff, yLen);
        KernelChecks.Disjoint(Op, "x", x, xOff, xLen, y, yOff, yLen);
        KernelChecks.Mask(Op, mask, maskOff, maskMode, yLen, x, xOff, xLen, w, wOff, wLen, y, yOff, yLen);
    }
}
