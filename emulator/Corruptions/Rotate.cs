namespace TinyTrain.Emulator.Corruptions;

/// <summary>
/// MNIST-C rotate at its default severity 2: a rotation by ±0.4 * severity radians (about 23 degrees at 1; sign at
/// random) about the image centre, bilinear, zero outside.
/// </summary>
public sealed class Rotate : Corruption
{
    public const double PaperAngle = 0.4;

    public override string Name => "rotate";

    public override bool IsRandom => true;

    /// <summary>Turns the picture by <paramref name="radians"/> counter-clockwise as displayed (rows downwards).</summary>
    public static void RotateBy(ReadOnlySpan<byte> image, Span<byte> output, int width, int height, double radians)
    {
        double cos = DeterministicMath.Cos(radians), sin = DeterministicMath.Sin(radians);
        AffineWarp.WarpAboutCentre(image, output, width, height, cos, -sin, sin, cos, 0.0, 0.0);
    }

    private protected override void Corrupt(ReadOnlySpan<byte> x, Span<byte> y, int width, int height, double severity, ref SplitMix64 rng) =>
        RotateBy(x, y, width, height, rng.NextSign() * PaperAngle * severity);
}
