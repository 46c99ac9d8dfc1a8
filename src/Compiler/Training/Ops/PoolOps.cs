namespace TinyTrain.Compiler.Training.Ops;

/// <summary>Average pooling (no padding) and global average pooling for one sample: x is (C,H,W).</summary>
internal static class PoolOps
{
    public static void AvgPoolForward(float[] x, int xOff, float[] y, int yOff, int c, int h, int w, int oh, int ow, int k, int stride)
    {
        float inv = 1f / (k * k);
        for (int ch = 0; ch < c; ch++)
        {
            int xc = xOff + ch * h * w, yc = yOff + ch * oh * ow;
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++)
                {
                    float s = 0f;
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) s += x[xc + (oy * stride + ky) * w + ox * stride + kx];
                    y[yc + oy * ow + ox] = s * inv;
                }
        }
    }

    public static void AvgPoolBackward(float[] dy, int dyOff, float[] dx, int dxOff, int c, int h, int w, int oh, int ow, int k, int stride)
    {
        float inv = 1f / (k * k);
        for (int ch = 0; ch < c; ch++)
        {
            int xc = dxOff + ch * h * w, yc = dyOff + ch * oh * ow;
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++)
                {
                    float d = dy[yc + oy * ow + ox] * inv;
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) dx[xc + (oy * stride + ky) * w + ox * stride + kx] += d;
                }
        }
    }

    public static void GlobalForward(float[] x, int xOff, float[] y, int yOff, int c, int hw)
    {
        for (int ch = 0; ch < c; ch++)
        {
            float s = 0f;
            int o = xOff + ch * hw;
            for (int i = 0; i < hw; i++) s += x[o + i];
            y[yOff + ch] = s / hw;
        }
    }

    public static void GlobalBackward(float[] dy, int dyOff, float[] dx, int dxOff, int c, int hw)
    {
        for (int ch = 0; ch < c; ch++)
        {
            float d = dy[dyOff + ch] / hw;
            int o = dxOff + ch * hw;
            for (int i = 0; i < hw; i++) dx[o + i] += d;
        }
    }
}
