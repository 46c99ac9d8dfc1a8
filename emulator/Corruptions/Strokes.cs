namespace TinyTrain.Emulator.Corruptions;

/// <summary>
/// MNIST-C's line_from_points: a soft line through (c0, r0) and (c1, r1), drawn in columns floor(c0) .. ceil(c1)-1.
/// A pixel's value is log(1 - d / halfWidth) + 1 clipped to [0, 1], where d is its vertical distance to the line;
/// with the paper's halfWidth 2.3 the line is about 2.9 pixels thick, 1 at its centre.
/// </summary>
internal static class Strokes
{
    public const double PaperHalfWidth = 2.3;

    /// <summary>Adds the line to <paramref name="canvas"/> ([0, 1] values), clipping each pixel at 1.</summary>
    public static void AddLine(Span<double> canvas, int width, int height, double c0, double r0, double c1, double r1,
        double halfWidth, bool dotted = false)
    {
        if (c1 == c0)
            return; // the paper's code draws nothing for a vertical line
        double slope = (r1 - r0) / (c1 - c0);
        double first = Math.Max(0, Math.Floor(c0));
        double end = Math.Min(width, Math.Ceiling(c1));
        double maxDistance = halfWidth - 1e-10;
        for (int col = (int)first; col < end; col++)
        {
            // dotted_line blanks columns in pairs, starting with the first pair: 0-1 off, 2-3 on, 4-5 off, ...
            if (dotted && (col / 2) % 2 == 0)
                continue;
            double centre = slope * (col - c0) + r0;
            for (int row = 0; row < height; row++)
            {
                double distance = Math.Min(Math.Abs(row - centre), maxDistance);
                double v = DeterministicMath.Log(1 - distance / halfWidth) + 1;
                if (v <= 0)
                    continue;
                int i = row * width + col;
                canvas[i] = Math.Min(1.0, canvas[i] + Math.Min(1.0, v));
            }
        }
    }
}
