namespace TinyTrain.Emulator.Corruptions;

/// <summary>
/// MNIST-C zigzag: a zigzag of teeth 2 long and 2 high between columns 2 and width-3, starting at a row uniform in
/// [0, height - 1) and ending up to 5 rows higher or 4 lower (the paper's ranges), drawn segment by segment with
/// line_from_points (Strokes), added to the image and clipped. Its geometry follows the paper's code, including the
/// short last segment. Severity scales the line's half-width (2.3 at 1).
/// </summary>
public sealed class Zigzag : Corruption
{
    /// <summary>Length of each tooth along the line, and its height across it.</summary>
    public const double ToothLength = 2.0, ToothHeight = 2.0;

    public override string Name => "zigzag";

    public override bool IsRandom => true;

    private protected override void Corrupt(ReadOnlySpan<byte> x, Span<byte> y, int width, int height, double severity, ref SplitMix64 rng)
    {
        const double a = ToothLength, b = ToothHeight;
        double c0 = 2, c1 = width - 3;
        int r0 = rng.NextInt(0, Math.Max(1, height - 1));
        int r1 = r0 + rng.NextInt(-5, 5);
        double[] rented = Pixels.Rent(x.Length);
        try
        {
            Span<double> canvas = rented.AsSpan(0, x.Length);
            Pixels.ToUnit(x, canvas);
            if (c1 > c0)
            {
                // theta = atan(slope); the zigzag is drawn along the x axis, then turned by theta about (c0, r0).
                double slope = (r1 - r0) / (c1 - c0);
                double cos = 1.0 / Math.Sqrt(1.0 + slope * slope), sin = slope * cos;
                double d = (c1 - c0) / cos; // length of the straight line
                int teeth = (int)Math.Floor((d - a) / (2 * a)) + 1;
                double maxC = 2 * a * Math.Floor(d / (2 * a));
                bool tail = d != maxC;
                int points = 1 + teeth + (tail ? 1 : 0);
                double lastR = teeth > 0 ? ((teeth - 1) % 2 == 0 ? b : -b) : 0;

                double prevC = c0, prevR = r0; // point 0 is (0, 0) before the turn
                for (int k = 1; k < points; k++)
                {
                    double u, v;
                    if (k <= teeth)
                    {
                        u = (2 * (k - 1) + 1) * a;
                        v = (k - 1) % 2 == 0 ? b : -b;
                    }
                    else
                    {
                        u = d; // the paper's tail point, as its code computes it
                        v = lastR / (2 * (d - maxC));
                    }
                    double pc = cos * u - sin * v + c0, pr = sin * u + cos * v + r0;
                    Strokes.AddLine(canvas, width, height, prevC, prevR, pc, pr, Strokes.PaperHalfWidth * severity);
                    prevC = pc;
                    prevR = pr;
                }
            }
            Pixels.FromUnit(canvas, y);
        }
        finally
        {
            Pixels.Return(rented);
        }
    }
}
