namespace TinyTrain.Emulator.Corruptions;

/// <summary>
/// MNIST-C translate at its default severity 3: the digit moves 3 * severity pixels along each axis, each direction
/// at random (four outcomes), bilinear for fractional shifts, zero where nothing comes in.
/// </summary>
public sealed class Translate : Corruption
{
    public const double PaperShift = 3.0;

    public override string Name => "translate";

    public override bool IsRandom => true;

    /// <summary>Moves the picture <paramref name="dx"/> pixels right and <paramref name="dy"/> pixels down.</summary>
    public static void ShiftBy(ReadOnlySpan<byte> image, Span<byte> output, int width, int height, double dx, double dy) =>
        AffineWarp.Warp(image, output, width, height, 1.0, 0.0, -dx, 0.0, 1.0, -dy);

    private protected override void Corrupt(ReadOnlySpan<byte> x, Span<byte> y, int width, int height, double severity, ref SplitMix64 rng)
    {
        double shift = PaperShift * severity;
        double dx = rng.NextSign() * shift;
        double dy = rng.NextSign() * shift;
        ShiftBy(x, y, width, height, dx, dy);
    }
}
