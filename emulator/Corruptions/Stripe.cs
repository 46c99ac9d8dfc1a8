namespace TinyTrain.Emulator.Corruptions;

/// <summary>
/// MNIST-C stripe: the outer quarter of the columns on each side is inverted (255 - p), columns 0..6 and 21..27 of
/// a 28-wide image. Each band is round(width / 4 * severity) columns wide; from severity 2 the whole image inverts.
/// </summary>
public sealed class Stripe : Corruption
{
    public const double PaperBandFraction = 0.25;

    public override string Name => "stripe";

    public override bool IsRandom => false;

    private protected override void Corrupt(ReadOnlySpan<byte> x, Span<byte> y, int width, int height, double severity, ref SplitMix64 rng)
    {
        int band = (int)Math.Min(width, Math.Floor(width * PaperBandFraction * severity + 0.5));
        for (int r = 0; r < height; r++)
        {
            for (int c = 0; c < width; c++)
            {
                int i = r * width + c;
                y[i] = c < band || c >= width - band ? (byte)(255 - x[i]) : x[i];
            }
        }
    }
}
