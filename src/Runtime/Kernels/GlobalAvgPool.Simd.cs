using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace TinyTrain.Runtime.Kernels;

// The fast path: each channel's sum in vectors (exact in int32), then the reference's scalar rounding.
public static partial class GlobalAvgPool
{
    // Run dispatches to the fast path or to the reference (in GlobalAvgPool.Reference.cs); it lives here, beside the
    // fast path, so that the portable files alone compile for nanoFramework (which calls RunReference).
    public static void Run(in PoolParams p, byte[] x, int xOff, byte[] y, int yOff)
    {
        Check(p, x, xOff, y, yOff);
        if (SimdWidth.Fast)
        {
            Simd(p, x, xOff, y, yOff);
        }
        else
        {
            Reference(p, x, xOff, y, yOff);
        }
    }

    /// <summary>The fast path (vector width per <see cref="KernelMode.UseVector256"/>), whatever <see cref="KernelMode.UseFast"/> says.</summary>
    public static void RunSimd(in PoolParams p, byte[] x, int xOff, byte[] y, int yOff)
    {
        Check(p, x, xOff, y, yOff);
        Simd(p, x, xOff, y, yOff);
    }

    private static void Simd(in PoolParams p, byte[] x, int xOff, byte[] y, int yOff)
    {
        if (SimdWidth.Wide)
        {
            SimdCore<Vector256<int>, Lanes256>(p, x, xOff, y, yOff);
        }
        else
        {
            SimdCore<Vector128<int>, Lanes128>(p, x, xOff, y, yOff);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SimdCore<TV, L>(in PoolParams p, byte[] x, int xOff, byte[] y, int yOff)
        where TV : struct
        where L : struct, ILanes<TV>
    {
        int n = L.Count;
        int count = p.H * p.W;
        ref byte xr = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(x), xOff);
        for (int c = 0; c < p.C; c++)
        {
            ref byte plane = ref Unsafe.Add(ref xr, c * count);
            TV a = L.Splat(0);
            TV b = a;
            int i = 0;
            for (; i + 2 * n <= count; i += 2 * n)
            {
                a = L.Add(a, L.LoadInt8(ref plane, i));
                b = L.Add(b, L.LoadInt8(ref plane, i + n));
            }
            int sum = L.Sum(L.Add(a, b));
            for (; i < count; i++)
            {
                sum += (sbyte)Unsafe.Add(ref plane, i);
            }
            y[yOff + c] = (byte)AvgPool.Clamp(AvgPool.Average(sum, count), p.ActMin, p.ActMax);
        }
    }
}
