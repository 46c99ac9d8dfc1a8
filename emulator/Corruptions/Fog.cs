namespace TinyTrain.Emulator.Corruptions;

/// <summary>
/// MNIST-C fog at its default severity 5: a 256x256 plasma fractal (wibble decay 1.4) is generated, its top-left
/// corner added with strength 3 * severity, and the result rescaled by max / (max + strength), where max is the
/// image's brightest pixel in [0, 1]: a gray haze over a faded digit.
/// </summary>
public sealed class Fog : Corruption
{
    public const double PaperStrength = 3.0;
    public const double PaperWibbleDecay = 1.4;

    public override string Name => "fog";

    public override bool IsRandom => true;

    private protected override void Corrupt(ReadOnlySpan<byte> x, Span<byte> y, int width, int height, double severity, ref SplitMix64 rng)
    {
        double strength = PaperStrength * severity;
        int size = PlasmaFractal.SizeFor(width, height);
        double[] map = Pixels.Rent(size * size);
        try
        {
            PlasmaFractal.Generate(map, size, PaperWibbleDecay, ref rng);
            int brightest = 0;
            foreach (byte p in x) brightest = Math.Max(brightest, p);
            double max = brightest / 255.0;
            double rescale = max / (max + strength);
            for (int r = 0; r < height; r++)
                for (int c = 0; c < width; c++)
                    y[r * width + c] = Pixels.UnitToByte((x[r * width + c] / 255.0 + strength * map[r * size + c]) * rescale);
        }
        finally
        {
            Pixels.Return(map);
        }
    }
}
