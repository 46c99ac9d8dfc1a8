namespace TinyTrain.Compiler.Training.Ops;

/// <summary>Geometry of one conv layer for one sample: x is (IC,H,W), w is (OC,IC/G,K,K), y is (OC,OH,OW).</summary>
internal readonly record struct ConvGeometry(int InC, int H, int W, int OutC, int OH, int OW, int Kernel, int Stride, int Pad, int Groups)
{
    public int InPerGroup => InC / Groups;
    public int OutPerGroup => OutC / Groups;
    /// <summary>Rows of the im2col matrix of one group: IC/G * K * K.</summary>
    public int ColRows => InPerGroup * Kernel * Kernel;
    public int OutPixels => OH * OW;
    public bool IsDepthwise => Groups == InC && Groups == OutC;
    public bool IsPointwiseDense => Kernel == 1 && Stride == 1 && Pad == 0 && Groups == 1;
    public int ScratchFloats => IsDepthwise || IsPointwiseDense ? 0 : ColRows * OutPixels;
}

/// <summary>
/// Float conv forward and backward for one sample (llm.c style: forward next to backward).
/// Dense convs go through im2col + GEMM; depthwise convs are direct loops.
/// </summary>
internal static class Conv2dOp
{
    // y = conv(x, w) + b. x at xOff is (IC,H,W); y at yOff is (OC,OH,OW); col is scratch of g.ScratchFloats.
    public static void Forward(in ConvGeometry g, float[] x, int xOff, float[] w, float[]? b, float[] y, int yOff, float[] col)
    {
        if (g.IsDepthwise) DepthwiseForward(g, x, xOff, w, y, yOff);
        else
        {
            int kw = g.ColRows, n = g.OutPixels;
            for (int grp = 0; grp < g.Groups; grp++)
            {
                int wOff = grp * g.OutPerGroup * kw;
                int yg = yOff + grp * g.OutPerGroup * n;
                if (g.IsPointwiseDense)
                    Gemm.MatMul(g.OutPerGroup, n, kw, w, wOff, kw, 1, x, xOff, n, y, yg, n, accumulate: false);
                else
                {
                    Im2Col(g, x, xOff + grp * g.InPerGroup * g.H * g.W, col);
                    Gemm.MatMul(g.OutPerGroup, n, kw, w, wOff, kw, 1, col, 0, n, y, yg, n, accumulate: false);
                }
            }
        }
        if (b is not null)
        {
            int n = g.OutPixels;
            for (int oc = 0; oc < g.OutC; oc++)
            {
                float bias = b[oc];
                int o = yOff + oc * n;
                for (int i = 0; i < n; i++) y[o + i] += bias;
            }
        }
    }

    // dw += dy (x) x; db += sum(dy); dx += w^T dy (dx may be null when no one needs it).
    public static void Backward(in ConvGeometry g, float[] x, int xOff, float[] w, float[] dy, int dyOff,
        float[] dw, float[]? db, float[]? dx, int dxOff, float[] col)
    {
        int n = g.OutPixels;
        if (db is not null)
        {
            for (int oc = 0; oc < g.OutC; oc++)
            {
                float s = 0f;
                int o = dyOff + oc * n;
                for (int i = 0; i < n; i++) s += dy[o + i];
                db[oc] += s;
            }
        }
        if (g.IsDepthwise)
        {
            DepthwiseBackward(g, x, xOff, w, dy, dyOff, dw, dx, dxOff);
            return;
        }
        int kw = g.ColRows;
        for (int grp = 0; grp < g.Groups; grp++)
        {
            int wOff = grp * g.OutPerGroup * kw;
            int dyg = dyOff + grp * g.OutPerGroup * n;
            int xg = xOff + grp * g.InPerGroup * g.H * g.W;
            if (g.IsPointwiseDense)
            {
                // dw[OCg, IC] += dy[OCg, N] * x[IC, N]^T ; dx[IC, N] += w^T[IC, OCg] * dy[OCg, N]
                Gemm.MatMulTransB(g.OutPerGroup, kw, n, dy, dyg, n, x, xg, n, dw, wOff, kw, accumulate: true);
                if (dx is not null)
                    Gemm.MatMul(kw, n, g.OutPerGroup, w, wOff, 1, kw, dy, dyg, n, dx, dxOff + grp * g.InPerGroup * g.H * g.W, n, accumulate: true);
                continue;
            }
            Im2Col(g, x, xg, col);
            Gemm.MatMulTransB(g.OutPerGroup, kw, n, dy, dyg, n, col, 0, n, dw, wOff, kw, accumulate: true);
            if (dx is not null)
            {
                Gemm.MatMul(kw, n, g.OutPerGroup, w, wOff, 1, kw, dy, dyg, n, col, 0, n, accumulate: false);
                Col2ImAdd(g, col, dx, dxOff + grp * g.InPerGroup * g.H * g.W);
            }
        }
    }

    // col[(c*K + ky)*K + kx, oy*OW + ox] = x[c, oy*s - p + ky, ox*s - p + kx] (0 outside), for one group's channels.
    private static void Im2Col(in ConvGeometry g, float[] x, int xOff, float[] col)
    {
        int k = g.Kernel, n = g.OutPixels;
        for (int c = 0; c < g.InPerGroup; c++)
        {
            int xc = xOff + c * g.H * g.W;
            for (int ky = 0; ky < k; ky++)
            {
                for (int kx = 0; kx < k; kx++)
                {
                    int row = ((c * k + ky) * k + kx) * n;
                    for (int oy = 0; oy < g.OH; oy++)
                    {
                        int iy = oy * g.Stride - g.Pad + ky;
                        int dst = row + oy * g.OW;
                        if ((uint)iy >= (uint)g.H)
                        {
                            Array.Clear(col, dst, g.OW);
                            continue;
                        }
                        int src = xc + iy * g.W;
                        for (int ox = 0; ox < g.OW; ox++)
                        {
                            int ix = ox * g.Stride - g.Pad + kx;
                            col[dst + ox] = (uint)ix < (uint)g.W ? x[src + ix] : 0f;
                        }
                    }
                }
            }
        }
    }

    private static void Col2ImAdd(in ConvGeometry g, float[] col, float[] dx, int dxOff)
    {
        int k = g.Kernel, n = g.OutPixels;
        for (int c = 0; c < g.InPerGroup; c++)
        {
            int xc = dxOff + c * g.H * g.W;
            for (int ky = 0; ky < k; ky++)
            {
                for (int kx = 0; kx < k; kx++)
                {
                    int row = ((c * k + ky) * k + kx) * n;
                    for (int oy = 0; oy < g.OH; oy++)
                    {
                        int iy = oy * g.Stride - g.Pad + ky;
                        if ((uint)iy >= (uint)g.H) continue;
                        int src = row + oy * g.OW, dst = xc + iy * g.W;
                        for (int ox = 0; ox < g.OW; ox++)
                        {
                            int ix = ox * g.Stride - g.Pad + kx;
                            if ((uint)ix < (uint)g.W) dx[dst + ix] += col[src + ox];
                        }
                    }
                }
            }
        }
    }

    private static void DepthwiseForward(in ConvGeometry g, float[] x, int xOff, float[] w, float[] y, int yOff)
    {
        int k = g.Kernel;
        for (int c = 0; c < g.InC; c++)
        {
            int xc = xOff + c * g.H * g.W, yc = yOff + c * g.OutPixels, wc = c * k * k;
            for (int oy = 0; oy < g.OH; oy++)
            {
                for (int ox = 0; ox < g.OW; ox++)
                {
                    float s = 0f;
                    for (int ky = 0; ky < k; ky++)
                    {
                        int iy = oy * g.Stride - g.Pad + ky;
                        if ((uint)iy >= (uint)g.H) continue;
                        for (int kx = 0; kx < k; kx++)
                        {
                            int ix = ox * g.Stride - g.Pad + kx;
                            if ((uint)ix < (uint)g.W) s += w[wc + ky * k + kx] * x[xc + iy * g.W + ix];
                        }
                    }
                    y[yc + oy * g.OW + ox] = s;
                }
            }
        }
    }

    private static void DepthwiseBackward(in ConvGeometry g, float[] x, int xOff, float[] w, float[] dy, int dyOff,
        float[] dw, float[]? dx, int dxOff)
    {
        int k = g.Kernel;
        for (int c = 0; c < g.InC; c++)
        {
            int xc = xOff + c * g.H * g.W, yc = dyOff + c * g.OutPixels, wc = c * k * k, dxc = dxOff + c * g.H * g.W;
            for (int oy = 0; oy < g.OH; oy++)
            {
                for (int ox = 0; ox < g.OW; ox++)
                {
                    float d = dy[yc + oy * g.OW + ox];
                    if (d == 0f) continue;
                    for (int ky = 0; ky < k; ky++)
                    {
                        int iy = oy * g.Stride - g.Pad + ky;
                        if ((uint)iy >= (uint)g.H) continue;
                        for (int kx = 0; kx < k; kx++)
                        {
                            int ix = ox * g.Stride - g.Pad + kx;
                            if ((uint)ix >= (uint)g.W) continue;
                            dw[wc + ky * k + kx] += d * x[xc + iy * g.W + ix];
                            if (dx is not null) dx[dxc + iy * g.W + ix] += d * w[wc + ky * k + kx];
                        }
                    }
                }
            }
        }
    }
}
