namespace TinyTrain.Emulator.Corruptions;

/// <summary>
/// MNIST-C shear at its default severity 2: skimage's AffineTransform(shear = ±0.4 * severity radians, sign at
/// random) as the inverse map about the image centre, i.e. input = centre + [[1, -sin s], [0, cos s]] (output -
/// centre), bilinear, zero outside.
/// </summary>
public sealed class Shear : Corruption
{
    public const double PaperShear = 0.4;

    public override string Name => "shear";

    public override bool IsRandom => true;

    /// <summary>Shears by exactly <paramref name="shear"/> radians (skimage's shear angle).</summary>
    public static void ShearBy(ReadOnlySpan<byte> image, Span<byte> output, int width, int height, double shear) =>
        AffineWarp.WarpAboutCentre(image, output, width, height,
            1.0, -DeterministicMath.Sin(shear), 0.0, DeterministicMath.Cos(shear), 0.0, 0.0);

    private protected override void Corrupt(ReadOnlySpan<byte> x, Span<byte> y, int width, int height, double severity, ref SplitMix64 rng) =>
        ShearBy(x, y, width, height, rng.NextSign() * PaperShear * severity);
}
