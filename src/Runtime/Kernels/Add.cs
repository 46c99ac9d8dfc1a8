namespace TinyTrain.Runtime.Kernels;

/// <summary>Quantization of one int8 elementwise Add (<see cref="Plans.OpKind.Add"/>), TFLite's parameters.</summary>
public struct AddParams
{
    /// <summary>Elements in each of x0, x1 and y (same shape, no broadcasting).</summary>
    public int Count;
    public int Input0ZeroPoint, Input0Multiplier, Input0Shift;
    public int Input1ZeroPoint, Input1Multiplier, Input1Shift;
    public int OutputZeroPoint, OutputMultiplier, OutputShift;
    /// <summary>Headroom shift applied to both inputs before rescaling; TFLite uses 20 for int8.</summary>
    public int LeftShift;
    public int ActMin, ActMax;
}

/// <summary>
/// int8 Add, TFLite semantics: each input is centred (x - zp), shifted left by LeftShift, rescaled to a
/// common scale by its multiplier and shift; the sum is rescaled by the output multiplier and shift,
/// offset by the output zero point and clamped. y may be x0 or x1 itself (same buffer, same offset):
/// each element is read before it is written. Any other overlap is refused.
/// </summary>
public static partial class Add
{
    private const string Op = "Add";

    /// <summary>The scalar reference, whatever <see cref="KernelMode"/> says.</summary>
    public static void RunReference(in AddParams p, byte[] x0, int x0Off, byte[] x1, int x1Off, byte[] y, int yOff)
    {
        Check(p, x0, x0Off, x1, x1Off, y, yOff);
        Reference(p, x0, x0Off, x1, x1Off, y, yOff);
    }

    private static void Check(in AddParams p, byte[] x0, int x0Off, byte[] x1, int x1Off, byte[] y, int yOff)
    {
        KernelChecks.Positive(Op, "Count", p.Count);
        KernelChecks.Int8(Op, "Input0ZeroPoint", p.Input0ZeroPoint);
        KernelChecks.Int8(Op, "Input1ZeroPoint", p.Input1ZeroPoint);
        KernelChecks.Int8(Op, "OutputZeroPoint", p.OutputZeroPoint);
        if (p.LeftShift < 0 || p.LeftShift > 30)
        {
            throw new TinyTrainException($"{Op}: LeftShift is {p.LeftShift}; it must lie in [0, 30] (TFLite uses 20 for int8).");
        }
        KernelChecks.Activation(Op, p.ActMin, p.ActMax);
        KernelChecks.Range(Op, "x0", x0, x0Off, p.Count);
        KernelChecks.Range(Op, "x1", x1, x1Off, p.Count);
        KernelChecks.Range(Op, "y", y, yOff, p.Count);
        if (!(ReferenceEquals(x0, y) && x0Off == yOff))
        {
            KernelChecks.Disjoint(Op, "x0", x0, x0Off, p.Count, y, yOff, p.Count);
        }
        if (!(ReferenceEquals(x1, y) && x1Off == yOff))
        {
            KernelChecks.Disjoint(Op, "x1", x1, x1Off, p.Count, y, yOff, p.Count);
        }
    }
}
