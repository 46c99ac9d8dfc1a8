namespace TinyTrain.Runtime.Kernels;

/// <summary>Shape and quantization of one int8 fully connected layer (<see cref="Plan.OpKind.FullyConnected"/>).</summary>
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
/// </summary>
public static partial class FullyConnected
{
    private const string Op = "FullyConnected";

    public static void Run(in FullyConnectedParams p, byte[] x, int xOff, byte[] w, int wOff, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff, byte[] y, int yOff)
    {
        Check(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff);
        if (SimdWidth.Fast)
        {
            Simd(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff);
        }
        else
        {
            Reference(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff);
        }
    }

    /// <summary>The scalar reference, whatever <see cref="KernelMode"/> says.</summary>
    public static void RunReference(in FullyConnectedParams p, byte[] x, int xOff, byte[] w, int wOff, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff, byte[] y, int yOff)
    {
        Check(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff);
        Reference(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff);
    }

    /// <summary>The fast path (vector width per <see cref="KernelMode.UseVector256"/>), whatever <see cref="KernelMode.UseFast"/> says.</summary>
    public static void RunSimd(in FullyConnectedParams p, byte[] x, int xOff, byte[] w, int wOff, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff, byte[] y, int yOff)
    {
        Check(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff);
        Simd(p, x, xOff, w, wOff, biases, biasOff, consts, multOff, shiftOff, y, yOff);
    }

    private static void Check(in FullyConnectedParams p, byte[] x, int xOff, byte[] w, int wOff, byte[] biases, int biasOff, byte[] consts, int multOff, int shiftOff, byte[] y, int yOff)
    {
        KernelChecks.Positive(Op, "In", p.In);
        KernelChecks.Positive(Op, "Out", p.Out);
        KernelChecks.Int8(Op, "InputZeroPoint", p.InputZeroPoint);
        KernelChecks.Int8(Op, "OutputZeroPoint", p.OutputZeroPoint);
        KernelChecks.Activation(Op, p.ActMin, p.ActMax);
        KernelChecks.Range(Op, "x", x, xOff, p.In);
        KernelChecks.Range(Op, "w", w, wOff, (long)p.Out * p.In);
        KernelChecks.Constants(Op, biases, biasOff, consts, multOff, shiftOff, p.Out);
        KernelChecks.Range(Op, "y", y, yOff, p.Out);
        KernelChecks.Disjoint(Op, "x", x, xOff, p.In, y, yOff, p.Out);
    }
}
