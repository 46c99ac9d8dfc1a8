namespace TinyTrain.Emulator.Corruptions;

/// <summary>How a filter reads past the image edge, as scipy.ndimage names the modes.</summary>
internal enum Border
{
    /// <summary>The edge pixel repeats (skimage.filters.gaussian's default).</summary>
    Nearest,

    /// <summary>Zero outside (skimage's canny smoothing).</summary>
    Constant,

    /// <summary>Mirrored about the edge, the edge pixel included: d c b a | a b c d (scipy's sobel default).</summary>
    Reflect,
}

/// <summary>Separable filters on double images (x is (height, width), row-major), as scipy.ndimage computes them.</summary>
internal static class Filters
{
    /// <summary>scipy's gaussian_filter1d radius: int(truncate * sigma + 0.5) with truncate 4.</summary>
    public static int GaussianRadius(double sigma) => (int)(4.0 * sigma + 0.5);

    /// <summary>exp(-k^2 / (2 sigma^2)) for k = -r..r, normalized to sum 1; kernel.Length = 2r + 1.</summary>
    public static void GaussianKernel(double sigma, Span<double> kernel)
    {
        int radius = kernel.Length / 2;
        double sum = 0;
        for (int k = -radius; k <= radius; k++)
        {
            double w = DeterministicMath.Exp(-0.5 / (sigma * sigma) * k * k);
            kernel[k + radius] = w;
            sum += w;
        }
        for (int i = 0; i < kernel.Length; i++)
            kernel[i] /= sum;
    }

    /// <summary>
    /// Gaussian blur (scipy.ndimage.gaussian_filter: down the columns first, then along the rows). y may be x;
    /// scratch holds width*height doubles.
    /// </summary>
    public static void Gaussian(ReadOnlySpan<double> x, Span<double> y, Span<double> scratch, int width, int height, double sigma, Border border)
    {
        int radius = GaussianRadius(sigma);
        Span<double> kernel = stackalloc double[2 * radius + 1];
        GaussianKernel(sigma, kernel);
        Correlate(x, scratch, width, height, kernel, alongRows: false, border);
        Correlate(scratch, y, width, height, kernel, alongRows: true, border);
    }

    /// <summary>
    /// y[i] = sum over k of weights[k] * x[i + k - r] along one axis (scipy's correlate1d): alongRows runs over the
    /// columns of each row (axis 1), otherwise over the rows of each column (axis 0). x and y must differ.
    /// </summary>
    public static void Correlate(ReadOnlySpan<double> x, Span<double> y, int width, int height, ReadOnlySpan<double> weights, bool alongRows, Border border)
    {
        int radius = weights.Length / 2;
        int length = alongRows ? width : height;
        int stride = alongRows ? 1 : width;
        int lines = alongRows ? height : width;
        int lineStep = alongRows ? width : 1;
        for (int line = 0; line < lines; line++)
        {
            int start = line * lineStep;
            for (int i = 0; i < length; i++)
            {
                double sum = 0;
                if (i >= radius && i + radius < length)
                {
                    // Interior: every tap is inside the line.
                    int at = start + (i - radius) * stride;
                    for (int k = 0; k < weights.Length; k++, at += stride)
                        sum += weights[k] * x[at];
                }
                else
                {
                    for (int k = -radius; k <= radius; k++)
                    {
                        int j = Index(i + k, length, border);
                        if (j >= 0)
                            sum += weights[k + radius] * x[start + j * stride];
                    }
                }
                y[start + i * stride] = sum;
            }
        }
    }

    /// <summary>Where index i of a line of n samples reads from; -1 means zero (Constant mode).</summary>
    public static int Index(int i, int n, Border border)
    {
        if ((uint)i < (uint)n) return i;
        switch (border)
        {
            case Border.Nearest:
                return i < 0 ? 0 : n - 1;
            case Border.Reflect:
                int period = 2 * n;
                int m = i % period;
                if (m < 0) m += period;
                return m < n ? m : period - 1 - m;
            default:
                return -1;
        }
    }
}
