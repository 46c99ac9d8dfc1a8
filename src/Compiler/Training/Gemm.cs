using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace TinyTrain.Compiler.Training;

/// <summary>
/// Float matrix products for the desktop trainer, row-major, vectorised with Vector&lt;float&gt;.
/// This is compiler-side code (desktop only); the device's int8 kernels live in the runtime.
/// </summary>
internal static class Gemm
{
    /// <summary>
    /// C[M,N] (+)= A[M,K] * B[K,N]. A is addressed as A[aOff + i*aRow + k*aCol], so a transposed A
    /// is just other strides; B and C are dense with leading dimensions ldb and ldc.
    /// </summary>
    public static void MatMul(int m, int n, int k,
        float[] a, int aOff, int aRow, int aCol,
        float[] b, int bOff, int ldb,
        float[] c, int cOff, int ldc, bool accumulate)
    {
        if (!accumulate)
            for (int i = 0; i < m; i++) Array.Clear(c, cOff + i * ldc, n);
        if (m == 0 || n == 0 || k == 0) return;

        ref float ra = ref MemoryMarshal.GetArrayDataReference(a);
        ref float rb = ref MemoryMarshal.GetArrayDataReference(b);
        ref float rc = ref MemoryMarshal.GetArrayDataReference(c);
        int w = Vector<float>.Count;
        int i0 = 0;
        // 4 rows x 2 vectors of C stay in registers while k runs: each load of B feeds 4 FMAs.
        for (; i0 + 4 <= m; i0 += 4)
        {
            int j = 0;
            for (; j + 2 * w <= n; j += 2 * w)
            {
                nuint c0 = (nuint)(cOff + i0 * ldc + j);
                nuint c1 = c0 + (nuint)ldc, c2 = c1 + (nuint)ldc, c3 = c2 + (nuint)ldc;
                Vector<float> s00 = Vector.LoadUnsafe(ref rc, c0), s01 = Vector.LoadUnsafe(ref rc, c0 + (nuint)w);
                Vector<float> s10 = Vector.LoadUnsafe(ref rc, c1), s11 = Vector.LoadUnsafe(ref rc, c1 + (nuint)w);
                Vector<float> s20 = Vector.LoadUnsafe(ref rc, c2), s21 = Vector.LoadUnsafe(ref rc, c2 + (nuint)w);
                Vector<float> s30 = Vector.LoadUnsafe(ref rc, c3), s31 = Vector.LoadUnsafe(ref rc, c3 + (nuint)w);
                int ap = aOff + i0 * aRow;
                nuint bp = (nuint)(bOff + j);
                for (int p = 0; p < k; p++)
                {
                    Vector<float> b0 = Vector.LoadUnsafe(ref rb, bp), b1 = Vector.LoadUnsafe(ref rb, bp + (nuint)w);
                    var a0 = new Vector<float>(Unsafe.Add(ref ra, ap));
                    var a1 = new Vector<float>(Unsafe.Add(ref ra, ap + aRow));
                    var a2 = new Vector<float>(Unsafe.Add(ref ra, ap + 2 * aRow));
                    var a3 = new Vector<float>(Unsafe.Add(ref ra, ap + 3 * aRow));
                    s00 = Vector.FusedMultiplyAdd(a0, b0, s00); s01 = Vector.FusedMultiplyAdd(a0, b1, s01);
                    s10 = Vector.FusedMultiplyAdd(a1, b0, s10); s11 = Vector.FusedMultiplyAdd(a1, b1, s11);
                    s20 = Vector.FusedMultiplyAdd(a2, b0, s20); s21 = Vector.FusedMultiplyAdd(a2, b1, s21);
                    s30 = Vector.FusedMultiplyAdd(a3, b0, s30); s31 = Vector.FusedMultiplyAdd(a3, b1, s31);
                    ap += aCol;
                    bp += (nuint)ldb;
                }
                s00.StoreUnsafe(ref rc, c0); s01.StoreUnsafe(ref rc, c0 + (nuint)w);
                s10.StoreUnsafe(ref rc, c1); s11.StoreUnsafe(ref rc, c1 + (nuint)w);
                s20.StoreUnsafe(ref rc, c2); s21.StoreUnsafe(ref rc, c2 + (nuint)w);
                s30.StoreUnsafe(ref rc, c3); s31.StoreUnsafe(ref rc, c3 + (nuint)w);
            }
            if (j < n) RowsScalarTail(i0, 4, j, n, k, a, aOff, aRow, aCol, b, bOff, ldb, c, cOff, ldc);
        }
        for (; i0 < m; i0++)
            RowsScalarTail(i0, 1, 0, n, k, a, aOff, aRow, aCol, b, bOff, ldb, c, cOff, ldc);
    }

    // Rows [i0, i0+rows), columns [j0, n): one row at a time, vectorised along n where it can be.
    private static void RowsScalarTail(int i0, int rows, int j0, int n, int k,
        float[] a, int aOff, int aRow, int aCol, float[] b, int bOff, int ldb, float[] c, int cOff, int ldc)
    {
        ref float rb = ref MemoryMarshal.GetArrayDataReference(b);
        ref float rc = ref MemoryMarshal.GetArrayDataReference(c);
        int w = Vector<float>.Count;
        for (int i = i0; i < i0 + rows; i++)
        {
            int crow = cOff + i * ldc;
            for (int p = 0; p < k; p++)
            {
                float av = a[aOff + i * aRow + p * aCol];
                if (av == 0f) continue;
                int brow = bOff + p * ldb;
                int j = j0;
                var va = new Vector<float>(av);
                for (; j + w <= n; j += w)
                {
                    Vector<float> cv = Vector.LoadUnsafe(ref rc, (nuint)(crow + j));
                    cv = Vector.FusedMultiplyAdd(va, Vector.LoadUnsafe(ref rb, (nuint)(brow + j)), cv);
                    cv.StoreUnsafe(ref rc, (nuint)(crow + j));
                }
                for (; j < n; j++) c[crow + j] += av * b[brow + j];
            }
        }
    }

    /// <summary>C[M,N] (+)= A[M,K] * B[N,K]^T: every entry a dot product of two dense rows.</summary>
    public static void MatMulTransB(int m, int n, int k,
        float[] a, int aOff, int lda, float[] b, int bOff, int ldb, float[] c, int cOff, int ldc, bool accumulate)
    {
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                float dot = Dot(a, aOff + i * lda, b, bOff + j * ldb, k);
                int ci = cOff + i * ldc + j;
                c[ci] = accumulate ? c[ci] + dot : dot;
            }
        }
    }

    public static float Dot(float[] x, int xOff, float[] y, int yOff, int length)
    {
        ref float rx = ref MemoryMarshal.GetArrayDataReference(x);
        ref float ry = ref MemoryMarshal.GetArrayDataReference(y);
        int w = Vector<float>.Count;
        var s0 = Vector<float>.Zero;
        var s1 = Vector<float>.Zero;
        int p = 0;
        for (; p + 2 * w <= length; p += 2 * w)
        {
            s0 = Vector.FusedMultiplyAdd(Vector.LoadUnsafe(ref rx, (nuint)(xOff + p)), Vector.LoadUnsafe(ref ry, (nuint)(yOff + p)), s0);
            s1 = Vector.FusedMultiplyAdd(Vector.LoadUnsafe(ref rx, (nuint)(xOff + p + w)), Vector.LoadUnsafe(ref ry, (nuint)(yOff + p + w)), s1);
        }
        float sum = Vector.Sum(s0 + s1);
        for (; p < length; p++) sum += x[xOff + p] * y[yOff + p];
        return sum;
    }
}
