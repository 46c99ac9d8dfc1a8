using System.Buffers;

namespace TinyTrain.Emulator.Corruptions;

/// <summary>
/// skimage.feature.canny with its defaults (sigma 1, low 0.1, high 0.2, no mask), on an image scaled to [0, 1]:
/// Gaussian smoothing with zero padding renormalized by the smoothed mask, Sobel gradients (reflected edges),
/// non-maximum suppression by interpolating the magnitude across the gradient in four sectors, the one-pixel border
/// excluded, then hysteresis: weak maxima are kept when 8-connected to a strong one.
/// </summary>
internal static class Canny
{
    [ThreadStatic] private static int[]? _stack;

    public const double Sigma = 1.0;
    public const double LowThreshold = 0.1;
    public const double HighThreshold = 0.2;

    // numpy.finfo(float).eps, which skimage adds to the smoothed mask before dividing.
    private const double MachineEpsilon = 2.220446049250313e-16;

    private static ReadOnlySpan<double> Derivative => [-1.0, 0.0, 1.0];
    private static ReadOnlySpan<double> Smoothing => [1.0, 2.0, 1.0];

    /// <summary>edges[i] = 1 on an edge pixel, else 0; edges holds width*height doubles.</summary>
    public static void Detect(ReadOnlySpan<byte> x, Span<double> edges, int width, int height)
    {
        int n = width * height;
        double[] rented = Pixels.Rent(6 * n);
        try
        {
            Span<double> image = rented.AsSpan(0, n);
            Span<double> smoothed = rented.AsSpan(n, n);
            Span<double> bleed = rented.AsSpan(2 * n, n);
            Span<double> rowGradient = rented.AsSpan(3 * n, n); // isobel: derivative down the rows (axis 0)
            Span<double> colGradient = rented.AsSpan(4 * n, n); // jsobel: derivative along the columns (axis 1)
            Span<double> scratch = rented.AsSpan(5 * n, n);

            Pixels.ToUnit(x, image);
            Filters.Gaussian(image, smoothed, scratch, width, height, Sigma, Border.Constant);
            bleed.Fill(1.0);
            Filters.Gaussian(bleed, bleed, scratch, width, height, Sigma, Border.Constant);
            for (int i = 0; i < n; i++)
                smoothed[i] /= bleed[i] + MachineEpsilon;

            Filters.Correlate(smoothed, scratch, width, height, Derivative, alongRows: false, Border.Reflect);
            Filters.Correlate(scratch, rowGradient, width, height, Smoothing, alongRows: true, Border.Reflect);
            Filters.Correlate(smoothed, scratch, width, height, Derivative, alongRows: true, Border.Reflect);
            Filters.Correlate(scratch, colGradient, width, height, Smoothing, alongRows: false, Border.Reflect);

            Span<double> magnitude = image; // the scaled image is no longer needed
            for (int i = 0; i < n; i++)
                magnitude[i] = Math.Sqrt(rowGradient[i] * rowGradient[i] + colGradient[i] * colGradient[i]);

            // strong = 2, weak = 1, none = 0, for local maxima of the magnitude only.
            Span<double> kind = smoothed;
            kind.Clear();
            for (int r = 1; r < height - 1; r++)
            {
                for (int c = 1; c < width - 1; c++)
                {
                    int i = r * width + c;
                    double m = magnitude[i];
                    if (m > 0 && IsLocalMaximum(magnitude, width, r, c, rowGradient[i], colGradient[i]))
                        kind[i] = m >= HighThreshold ? 2 : m >= LowThreshold ? 1 : 0;
                }
            }

            Hysteresis(kind, edges, width, height);
        }
        finally
        {
            Pixels.Return(rented);
        }
    }

    /// <summary>
    /// skimage's four sectors in its order (a pixel on a sector boundary takes the last sector's verdict): the
    /// magnitude must be at least the interpolated magnitudes on both sides along the gradient.
    /// </summary>
    private static bool IsLocalMaximum(Span<double> mag, int w, int r, int c, double gi, double gj)
    {
        double ai = Math.Abs(gi), aj = Math.Abs(gj), m = mag[r * w + c];
        bool sameSign = (gi >= 0 && gj >= 0) || (gi <= 0 && gj <= 0);
        bool oppositeSign = (gi <= 0 && gj >= 0) || (gi >= 0 && gj <= 0);
        bool result = false;
        if (sameSign && ai >= aj) // 0 to 45 degrees
        {
            double wt = aj / ai;
            result = Between(mag, w, r + 1, c, r + 1, c + 1, wt, m) && Between(mag, w, r - 1, c, r - 1, c - 1, wt, m);
        }
        if (sameSign && ai <= aj) // 45 to 90
        {
            double wt = ai / aj;
            result = Between(mag, w, r, c + 1, r + 1, c + 1, wt, m) && Between(mag, w, r, c - 1, r - 1, c - 1, wt, m);
        }
        if (oppositeSign && ai <= aj) // 90 to 135
        {
            double wt = ai / aj;
            result = Between(mag, w, r, c + 1, r - 1, c + 1, wt, m) && Between(mag, w, r, c - 1, r + 1, c - 1, wt, m);
        }
        if (oppositeSign && ai >= aj) // 135 to 180
        {
            double wt = aj / ai;
            result = Between(mag, w, r - 1, c, r - 1, c + 1, wt, m) && Between(mag, w, r + 1, c, r + 1, c - 1, wt, m);
        }
        return result;
    }

    private static bool Between(Span<double> mag, int w, int r1, int c1, int r2, int c2, double wt, double m) =>
        mag[r2 * w + c2] * wt + mag[r1 * w + c1] * (1 - wt) <= m;

    /// <summary>Marks every weak or strong pixel 8-connected to a strong one (a flood fill from the strong ones).</summary>
    private static void Hysteresis(Span<double> kind, Span<double> edges, int width, int height)
    {
        edges.Clear();
        if (_stack is null || _stack.Length < kind.Length) _stack = new int[Math.Max(kind.Length, 1024)];
        int[] stack = _stack; // each pixel is pushed at most once; kept per thread so that a call allocates nothing
        {
            int top = 0;
            for (int i = 0; i < kind.Length; i++)
            {
                if (kind[i] == 2)
                {
                    edges[i] = 1;
                    stack[top++] = i;
                }
            }
            while (top > 0)
            {
                int i = stack[--top];
                int r = i / width, c = i % width;
                for (int rr = Math.Max(0, r - 1); rr <= Math.Min(height - 1, r + 1); rr++)
                {
                    for (int cc = Math.Max(0, c - 1); cc <= Math.Min(width - 1, c + 1); cc++)
                    {
                        int j = rr * width + cc;
                        if (kind[j] > 0 && edges[j] == 0)
                        {
                            edges[j] = 1;
                            stack[top++] = j;
                        }
                    }
                }
            }
        }
    }
}
