namespace TinyTrain.Compiler.Training.Ops;

/// <summary>Fully connected layer over a batch: x is (N,In), w is (Out,In), b is (Out), y is (N,Out).</summary>
internal static class LinearOp
{
    public static void Forward(float[] x, float[] w, float[]? b, float[] y, int n, int inF, int outF)
    {
        Gemm.MatMulTransB(n, outF, inF, x, 0, inF, w, 0, inF, y, 0, outF, accumulate: false);
        if (b is null) return;
        for (int s = 0; s < n; s++)
            for (int o = 0; o < outF; o++) y[s * outF + o] += b[o];
    }

    // dw += dy^T x ; db += sum over the batch of dy ; dx += dy w
    public static void Backward(float[] x, float[] w, float[] dy, float[] dw, float[]? db, float[]? dx, int n, int inF, int outF)
    {
        Gemm.MatMul(outF, inF, n, dy, 0, 1, outF, x, 0, inF, dw, 0, inF, accumulate: true);
        if (db is not null)
            for (int s = 0; s < n; s++)
                for (int o = 0; o < outF; o++) db[o] += dy[s * outF + o];
        if (dx is not null)
            Gemm.MatMul(n, inF, outF, dy, 0, outF, 1, w, 0, inF, dx, 0, inF, accumulate: true);
    }
}
