namespace TinyTrain.Emulator.Corruptions;

/// <summary>
/// MNIST-C dotted_line: a dashed line from the left edge (row r0) to the right edge (row r1), r0 and r1 uniform in
/// [0, height - 1), drawn with line_from_points (Strokes) and blanked in alternate pairs of columns, added to the
/// image and clipped. Severity scales the line's half-width (2.3 at 1), so stronger lines are thicker.
/// </summary>
public sealed class DottedLine : Corruption
{
    public override string Name => "dotted-line";

    public override bool IsRandom => true;

    private protected override void Corrupt(ReadOnlySpan<byte> x, Span<byte> y, int width, int height, double severity, ref SplitMix64 rng)
    {
        int rows = Math.Max(1, height - 1);
        int r0 = rng.NextInt(0, rows);
        int r1 = rng.NextInt(0, rows);
        double[] rented = Pixels.Rent(x.Length);
        try
        {
            Span<double> canvas = rented.AsSpan(0, x.Length);
            Pixels.ToUnit(x, canvas);
            Strokes.AddLine(canvas, width, height, 0, r0, width - 1, r1, Strokes.PaperHalfWidth * severity, dotted: true);
            Pixels.FromUnit(canvas, y);
        }
        finally
        {
            Pixels.Return(rented);
        }
    }
}
