using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace TinyTrain.Runtime.Kernels;

// The fast path: per output row, the Kernel input rows are summed column-wise into an int32 row
// (vectors), then Kernel neighbouring column sums are added (vectors for stride 1, scalar otherwise)
// and each sum is averaged with the reference's scalar rounding.
public static partial class AvgPool
{
    // Run dispatches to the fast path or to the reference (in AvgPool.Reference.cs); it lives here, beside the
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

    // Stack scratch of the fast path, in ints (16 KB).
    private const int ScratchInts = 4096;

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
        int k = p.Kernel;
        int s = p.Stride;
        int owr = ConvStrip.RoundUp(p.OW, n);
        // Column sums, with room for a whole vector past the last column; then the window sums.
        int cols = Math.Max(p.W, owr + k - 1);
        if (cols + owr > ScratchInts)
        {
            Reference(p, x, xOff, y, yOff);
            return;
        }
        Span<int> scratch = stackalloc int[ScratchInts];
        ref int colSum = ref MemoryMarshal.GetReference(scratch);
        ref int winSum = ref Unsafe.Add(ref colSum, cols);
        ref byte xr = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(x), xOff);
        int count = k * k;
        for (int c = 0; c < p.C; c++)
        {
            ref byte plane = ref Unsafe.Add(ref xr, c * p.H * p.W);
            for (int oy = 0; oy < p.OH; oy++)
            {
                ref byte top = ref Unsafe.Add(ref plane, oy * s * p.W);
                int j = 0;
                for (; j + n <= p.W; j += n)
                {
                    TV acc = L.LoadInt8(ref top, j);
                    for (int ky = 1; ky < k; ky++)
                    {
                        acc = L.Add(acc, L.LoadInt8(ref top, ky * p.W + j));
                    }
                    L.Store(acc, ref colSum, j);
                }
                for (; j < p.W; j++)
                {
                    int sum = 0;
                    for (int ky = 0; ky < k; ky++)
                    {
                        sum += (sbyte)Unsafe.Add(ref top, ky * p.W + j);
                    }
                    Unsafe.Add(ref colSum, j) = sum;
                }
                if (s == 1)
                {
                    for (int ox = 0; ox < p.OW; ox += n)
                    {
                        TV acc = L.Load(ref colSum, ox);
                        for (int kx = 1; kx < k; kx++)
                        {
                            acc = L.Add(acc, L.Load(ref colSum, ox + kx));
                        }
                        L.Store(acc, ref winSum, ox);
                    }
                }
                else
                {
                    for (int ox = 0; ox < p.OW; ox++)
                    {
                        int sum = 0;
                        for (int kx = 0; kx < k; kx++)
                        {
                            sum += Unsafe.Add(ref colSum, ox * s + kx);
                        }
                        Unsafe.Add(ref winSum, ox) = sum;
                    }
                }
                int yRow = yOff + (c * p.OH + oy) * p.OW;
                for (int ox = 0; ox < p.OW; ox++)
                {
                    y[yRow + ox] = (byte)Clamp(Average(Unsafe.Add(ref winSum, ox), count), p.ActMin, p.ActMax);
                }
            }
        }
    }
}
