namespace TinyTrain.Emulator.Corruptions;

/// <summary>
/// Salt-and-pepper noise (MNIST-C impulse_noise at its default severity 4, skimage's random_noise 's&amp;p'): each
/// pixel is replaced with probability amount = min(1, 0.17 * severity), by white or black with equal chance.
/// </summary>
public sealed class ImpulseNoise : Corruption
{
    public const double PaperAmount = 0.17;

    public override string Name => "impulse-noise";

    public override bool IsRandom => true;

    private protected override void Corrupt(ReadOnlySpan<byte> x, Span<byte> y, int width, int height, double severity, ref SplitMix64 rng)
    {
        double amount = Math.Min(1.0, PaperAmount * severity);
        for (int i = 0; i < x.Length; i++)
        {
            // Both draws for every pixel, so a stronger severity flips a superset of the pixels for the same seed.
            bool flipped = rng.NextDouble() < amount;
            bool salt = rng.NextDouble() < 0.5;
            y[i] = flipped ? (salt ? (byte)255 : (byte)0) : x[i];
        }
    }
}
