namespace TinyTrain.Emulator.Corruptions;

/// <summary>
/// skimage.transform.warp with an inverse map, order 1, mode 'constant': output pixel (col, row) takes the bilinear
/// sample of the input at (a*col + b*row + c, d*col + e*row + f), with zeros outside the image.
/// </summary>
internal static class AffineWarp
{
    public static void Warp(ReadOnlySpan<byte> x, Span<byte> y, int width, int height,
        double a, double b, double c, double d, double e, double f)
    {
        for (int row = 0; row < height; row++)
        {
            for (int col = 0; col < width; col++)
            {
                double sx = a * col + b * row + c;
                double sy = d * col + e * row + f;
                y[row * width + col] = Pixels.ToByte(Sample(x, width, height, sx, sy));
            }
        }
    }

    /// <summary>
    /// The inverse map of a linear map M about the image centre ((w-1)/2, (h-1)/2), plus a shift: the input point
    /// for an output point p is centre + M (p - centre) + shift. MNIST-C keeps (13.5, 13.5) fixed the same way.
    /// </summary>
    public static void WarpAboutCentre(ReadOnlySpan<byte> x, Span<byte> y, int width, int height,
        double m00, double m01, double m10, double m11, double shiftX, double shiftY)
    {
        double cx = (width - 1) / 2.0, cy = (height - 1) / 2.0;
        Warp(x, y, width, height,
            m00, m01, cx - m00 * cx - m01 * cy + shiftX,
            m10, m11, cy - m10 * cx - m11 * cy + shiftY);
    }

    /// <summary>Bilinear interpolation at (sx, sy) = (column, row), zero outside (skimage's bilinear_interpolation).</summary>
    public static double Sample(ReadOnlySpan<byte> x, int width, int height, double sx, double sy)
    {
        if (!(sx > -1 && sx < width && sy > -1 && sy < height))
            return 0; // also catches NaN; every neighbour is outside
        double fx = Math.Floor(sx), fy = Math.Floor(sy);
        int c0 = (int)fx, r0 = (int)fy;
        double dc = sx - fx, dr = sy - fy;
        double top = (1 - dc) * At(x, width, height, r0, c0) + dc * At(x, width, height, r0, c0 + 1);
        double bottom = (1 - dc) * At(x, width, height, r0 + 1, c0) + dc * At(x, width, height, r0 + 1, c0 + 1);
        return (1 - dr) * top + dr * bottom;
    }

    private static double At(ReadOnlySpan<byte> x, int width, int height, int row, int col) =>
        (uint)row < (uint)height && (uint)col < (uint)width ? x[row * width + col] : 0.0;
}
