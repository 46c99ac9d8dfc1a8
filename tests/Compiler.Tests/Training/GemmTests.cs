using TinyTrain.Compiler.Training;

namespace TinyTrain.Compiler.Tests.Training;

public class GemmTests
{
    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(4, 16, 3)]
    [InlineData(5, 17, 9)]
    [InlineData(13, 40, 33)]
    [InlineData(64, 200, 144)]
    public void MatMul_matches_naive_loops_including_tails_and_transposed_A(int m, int n, int k)
    {
        var r = new Random(m * 1000 + n * 10 + k);
        float[] a = Random(r, m * k), b = Random(r, k * n), c0 = Random(r, m * n);
        foreach (bool transposeA in new[] { false, true })
        {
            float[] c = (float[])c0.Clone();
            int aRow = transposeA ? 1 : k, aCol = transposeA ? m : 1;
            Gemm.MatMul(m, n, k, a, 0, aRow, aCol, b, 0, n, c, 0, n, accumulate: true);
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double expected = c0[i * n + j];
                    for (int p = 0; p < k; p++) expected += a[i * aRow + p * aCol] * b[p * n + j];
                    Assert.True(Math.Abs(expected - c[i * n + j]) < 1e-3, $"({i},{j}) {expected} vs {c[i * n + j]}");
                }
        }
    }

    [Fact]
    public void MatMulTransB_matches_naive_loops()
    {
        var r = new Random(7);
        int m = 5, n = 6, k = 19;
        float[] a = Random(r, m * k), b = Random(r, n * k), c = new float[m * n];
        Gemm.MatMulTransB(m, n, k, a, 0, k, b, 0, k, c, 0, n, accumulate: false);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double expected = 0;
                for (int p = 0; p < k; p++) expected += a[i * k + p] * b[j * k + p];
                Assert.True(Math.Abs(expected - c[i * n + j]) < 1e-4);
            }
    }

    private static float[] Random(Random r, int count)
    {
        float[] v = new float[count];
        for (int i = 0; i < count; i++) v[i] = (float)(r.NextDouble() * 2 - 1);
        return v;
    }
}
