namespace TinyTrain.Compiler.Training.Ops;

/// <summary>ReLU, ReLU6, residual Add and Flatten over flat buffers of `count` floats.</summary>
internal static class ElementwiseOps
{
    public static void ReluForward(float[] x, float[] y, int count, float max)
    {
        for (int i = 0; i < count; i++)
        {
            float v = x[i];
            y[i] = v < 0f ? 0f : v > max ? max : v;
        }
    }

    // The gradient passes where the output was strictly inside (0, max); y is the forward output.
    public static void ReluBackward(float[] y, float[] dy, float[] dx, int count, float max)
    {
        for (int i = 0; i < count; i++)
        {
            float v = y[i];
            if (v > 0f && v < max) dx[i] += dy[i];
        }
    }

    public static void AddForward(float[] a, float[] b, float[] y, int count)
    {
        for (int i = 0; i < count; i++) y[i] = a[i] + b[i];
    }

    public static void Accumulate(float[] dy, float[] dx, int count)
    {
        for (int i = 0; i < count; i++) dx[i] += dy[i];
    }
}
