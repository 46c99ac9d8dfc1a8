using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace TinyTrain.Runtime.Kernels;

// The fast path: every step of the reference, lane-wise (the rescales use the vector twin of
// Quant.MultiplyByQuantizedMultiplier), a vector of elements at a time; the tail is scalar. Each
// vector is loaded from both inputs before its outputs are stored, so y may alias an input.
public static partial class Add
{
    // Run dispatches to the fast path or to the reference (in Add.Reference.cs); it lives here, beside the
    // fast path, so that the portable files alone compile for nanoFramework (which calls RunReference).
    public static void Run(in AddParams p, byte[] x0, int x0Off, byte[] x1, int x1Off, byte[] y, int yOff)
    {
        Check(p, x0, x0Off, x1, x1Off, y, yOff);
        if (SimdWidth.Fast)
        {
            Simd(p, x0, x0Off, x1, x1Off, y, yOff);
        }
        else
        {
            Reference(p, x0, x0Off, x1, x1Off, y, yOff);
        }
    }

    /// <summary>The fast path (vector width per <see cref="KernelMode.UseVector256"/>), whatever <see cref="KernelMode.UseFast"/> says.</summary>
    public static void RunSimd(in AddParams p, byte[] x0, int x0Off, byte[] x1, int x1Off, byte[] y, int yOff)
    {
        Check(p, x0, x0Off, x1, x1Off, y, yOff);
        Simd(p, x0, x0Off, x1, x1Off, y, yOff);
    }

    private static void Simd(in AddParams p, byte[] x0, int x0Off, byte[] x1, int x1Off, byte[] y, int yOff)
    {
        if (SimdWidth.Wide)
        {
            SimdCore<Vector256<int>, Lanes256>(p, x0, x0Off, x1, x1Off, y, yOff);
        }
        else
        {
            SimdCore<Vector128<int>, Lanes128>(p, x0, x0Off, x1, x1Off, y, yOff);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SimdCore<TV, L>(in AddParams p, byte[] x0, int x0Off, byte[] x1, int x1Off, byte[] y, int yOff)
        where TV : struct
        where L : struct, ILanes<TV>
    {
        int n = L.Count;
        ref byte a = ref MemoryMarshal.GetArrayDataReference(x0);
        ref byte b = ref MemoryMarshal.GetArrayDataReference(x1);
        ref byte o = ref MemoryMarshal.GetArrayDataReference(y);
        TV zp0 = L.Splat(p.Input0ZeroPoint);
        TV zp1 = L.Splat(p.Input1ZeroPoint);
        int i = 0;
        for (; i + n <= p.Count; i += n)
        {
            TV va = L.ShiftLeft(L.Subtract(L.LoadInt8(ref a, x0Off + i), zp0), p.LeftShift);
            TV vb = L.ShiftLeft(L.Subtract(L.LoadInt8(ref b, x1Off + i), zp1), p.LeftShift);
            va = L.MultiplyByQuantizedMultiplier(va, p.Input0Multiplier, p.Input0Shift);
            vb = L.MultiplyByQuantizedMultiplier(vb, p.Input1Multiplier, p.Input1Shift);
            L.StoreInt8(L.Requantize(L.Add(va, vb), p.OutputMultiplier, p.OutputShift, p.OutputZeroPoint, p.ActMin, p.ActMax), ref o, yOff + i);
        }
        for (; i < p.Count; i++)
        {
            y[yOff + i] = (byte)Element(p, (sbyte)x0[x0Off + i], (sbyte)x1[x1Off + i]);
        }
    }
}
