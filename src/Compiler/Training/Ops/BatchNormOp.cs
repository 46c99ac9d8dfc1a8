namespace TinyTrain.Compiler.Training.Ops;

/// <summary>
/// BatchNorm over a batch: x and y are (N,C,HW). Training uses the batch's statistics and updates
/// the running ones (PyTorch's convention: momentum 0.1, unbiased running variance); inference uses
/// the running statistics.
/// </summary>
internal static class BatchNormOp
{
    public static void ForwardTrain(float[] x, float[] y, int n, int c, int hw, float[] gamma, float[] beta,
        float[] runningMean, float[] runningVar, float momentum, float eps, float[] savedMean, float[] savedInvStd)
    {
        int m = n * hw;
        Parallel.For(0, c, ch =>
        {
            double sum = 0, sumSq = 0;
            for (int s = 0; s < n; s++)
            {
                int o = (s * c + ch) * hw;
                for (int i = 0; i < hw; i++)
                {
                    double v = x[o + i];
                    sum += v;
                    sumSq += v * v;
                }
            }
            double mean = sum / m;
            double variance = Math.Max(0, sumSq / m - mean * mean);
            float invStd = (float)(1.0 / Math.Sqrt(variance + eps));
            savedMean[ch] = (float)mean;
            savedInvStd[ch] = invStd;
            runningMean[ch] = (1 - momentum) * runningMean[ch] + momentum * (float)mean;
            double unbiased = m > 1 ? variance * m / (m - 1) : variance;
            runningVar[ch] = (1 - momentum) * runningVar[ch] + momentum * (float)unbiased;
            float scale = gamma[ch] * invStd, shift = beta[ch] - (float)mean * scale;
            for (int s = 0; s < n; s++)
            {
                int o = (s * c + ch) * hw;
                for (int i = 0; i < hw; i++) y[o + i] = x[o + i] * scale + shift;
            }
        });
    }

    public static void ForwardInference(float[] x, float[] y, int n, int c, int hw, float[] gamma, float[] beta,
        float[] runningMean, float[] runningVar, float eps)
    {
        for (int ch = 0; ch < c; ch++)
        {
            float scale = gamma[ch] / MathF.Sqrt(runningVar[ch] + eps);
            float shift = beta[ch] - runningMean[ch] * scale;
            for (int s = 0; s < n; s++)
            {
                int o = (s * c + ch) * hw;
                for (int i = 0; i < hw; i++) y[o + i] = x[o + i] * scale + shift;
            }
        }
    }

    // xhat = (x - mean) * invStd; dgamma = sum(dy * xhat); dbeta = sum(dy);
    // dx += gamma * invStd / M * (M * dy - dbeta - xhat * dgamma).
    public static void Backward(float[] x, float[] dy, float[]? dx, int n, int c, int hw, float[] gamma,
        float[] savedMean, float[] savedInvStd, float[] dGamma, float[] dBeta)
    {
        int m = n * hw;
        Parallel.For(0, c, ch =>
        {
            float mean = savedMean[ch], invStd = savedInvStd[ch];
            double sdy = 0, sdyXhat = 0;
            for (int s = 0; s < n; s++)
            {
                int o = (s * c + ch) * hw;
                for (int i = 0; i < hw; i++)
                {
                    float d = dy[o + i];
                    sdy += d;
                    sdyXhat += d * (x[o + i] - mean) * invStd;
                }
            }
            dGamma[ch] += (float)sdyXhat;
            dBeta[ch] += (float)sdy;
            if (dx is null) return;
            float k = gamma[ch] * invStd / m;
            float fSdy = (float)sdy, fSdyXhat = (float)sdyXhat;
            for (int s = 0; s < n; s++)
            {
                int o = (s * c + ch) * hw;
                for (int i = 0; i < hw; i++)
                {
                    float xhat = (x[o + i] - mean) * invStd;
                    dx[o + i] += k * (m * dy[o + i] - fSdy - xhat * fSdyXhat);
                }
            }
        });
    }
}
