namespace TinyTrain.Emulator.Corruptions;

/// <summary>
/// MNIST-C spatter at its default severity 4 (mud): a liquid layer of normal noise (mean 0.65, sd 0.3) is blurred
/// (sigma 1); where it exceeds 0.65 a mask is set, the mask is blurred (sigma 1.5) and kept where >= 0.8, and there
/// the image is covered by mud of gray 63: p (1 - m) + 63/255 m. Severity raises the layer's mean to
/// 0.65 + 0.085 ln(severity) (0.085 is one sd of the blurred layer), so stronger severities spatter more of the image.
/// </summary>
public sealed class Spatter : Corruption
{
    public const double PaperMean = 0.65;
    public const double PaperSd = 0.3;
    public const double LiquidSigma = 1.0;
    public const double Threshold = 0.65;
    public const double MaskSigma = 1.5;
    public const double MaskCut = 0.8;
    public const double MudGray = 63.0;

    /// <summary>How far one e-fold of severity moves the liquid's mean: the sd of the blurred layer.</summary>
    public const double MeanPerLogSeverity = 0.085;

    public override string Name => "spatter";

    public override bool IsRandom => true;

    private protected override void Corrupt(ReadOnlySpan<byte> x, Span<byte> y, int width, int height, double severity, ref SplitMix64 rng)
    {
        double mean = PaperMean + MeanPerLogSeverity * DeterministicMath.Log(severity);
        int n = x.Length;
        double[] rented = Pixels.Rent(2 * n);
        try
        {
            Span<double> layer = rented.AsSpan(0, n);
            Span<double> scratch = rented.AsSpan(n, n);
            for (int i = 0; i < n; i++)
                layer[i] = mean + PaperSd * rng.NextGaussian();
            Filters.Gaussian(layer, layer, scratch, width, height, LiquidSigma, Border.Nearest);
            for (int i = 0; i < n; i++)
                layer[i] = layer[i] > Threshold ? 1.0 : 0.0;
            Filters.Gaussian(layer, layer, scratch, width, height, MaskSigma, Border.Nearest);
            for (int i = 0; i < n; i++)
            {
                double m = layer[i] < MaskCut ? 0.0 : layer[i];
                y[i] = Pixels.UnitToByte(x[i] / 255.0 * (1 - m) + MudGray / 255.0 * m);
            }
        }
        finally
        {
            Pixels.Return(rented);
        }
    }
}
