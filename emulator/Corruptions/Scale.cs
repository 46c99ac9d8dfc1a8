namespace TinyTrain.Emulator.Corruptions;

/// <summary>
/// MNIST-C scale at its default severity 3: the digit shrinks about the image centre to factor 0.7 (skimage's
/// AffineTransform(scale = 1/0.7) as the inverse map), bilinear, zero outside. The factor is 0.7^severity.
/// </summary>
public sealed class Scale : Corruption
{
    public const double PaperFactor = 0.7;

    public override string Name => "scale";

    public override bool IsRandom => false;

    /// <summary>Scales the picture by <paramref name="factor"/> about the centre (below 1 shrinks).</summary>
    public static void ScaleBy(ReadOnlySpan<byte> image, Span<byte> output, int width, int height, double factor) =>
        AffineWarp.WarpAboutCentre(image, output, width, height, 1.0 / factor, 0.0, 0.0, 1.0 / factor, 0.0, 0.0);

    private protected override void Corrupt(ReadOnlySpan<byte> x, Span<byte> y, int width, int height, double severity, ref SplitMix64 rng) =>
        ScaleBy(x, y, width, height, DeterministicMath.Exp(severity * DeterministicMath.Log(PaperFactor)));
}
