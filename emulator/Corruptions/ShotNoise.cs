namespace TinyTrain.Emulator.Corruptions;

/// <summary>
/// Poisson noise (MNIST-C shot_noise at its default severity 5): a pixel p in [0, 1] becomes
/// Poisson(p * lambda) / lambda, clipped, with lambda = 3 / severity. Black stays black; ink gets grainy.
/// </summary>
public sealed class ShotNoise : Corruption
{
    /// <summary>The paper's lambda: the expected photon count of a white pixel.</summary>
    public const double PaperLambda = 3.0;

    public override string Name => "shot-noise";

    public override bool IsRandom => true;

    private protected override void Corrupt(ReadOnlySpan<byte> x, Span<byte> y, int width, int height, double severity, ref SplitMix64 rng)
    {
        double lambda = PaperLambda / severity;
        for (int i = 0; i < x.Length; i++)
            y[i] = Pixels.UnitToByte(rng.NextPoisson(x[i] / 255.0 * lambda) / lambda);
    }
}
