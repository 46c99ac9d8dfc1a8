namespace TinyTrain.Emulator.Corruptions;

/// <summary>
/// MNIST-C glass_blur at its default severity 1: Gaussian blur (sigma 0.7 * severity), truncate to bytes, locally
/// shuffle pixels (two passes from the bottom-right; each pixel swaps with probability 0.5 * min(1, severity) with
/// the one at (dy, dx), each uniform in [-delta, delta), delta = max(1, round(severity))), then blur again.
/// </summary>
public sealed class GlassBlur : Corruption
{
    public const double PaperSigma = 0.7;
    public const int PaperMaxDelta = 1;
    public const int Iterations = 2;
    public const double PaperSwapProbability = 0.5;

    public override string Name => "glass-blur";

    public override bool IsRandom => true;

    private protected override void Corrupt(ReadOnlySpan<byte> x, Span<byte> y, int width, int height, double severity, ref SplitMix64 rng)
    {
        double sigma = PaperSigma * severity;
        int delta = Math.Max(PaperMaxDelta, (int)Math.Floor(severity + 0.5));
        // Below 1 fewer pixels swap, so that the shuffle fades out with the blur as severity goes to 0.
        double swapProbability = PaperSwapProbability * Math.Min(1.0, severity);
        int n = x.Length;
        double[] rented = Pixels.Rent(2 * n);
        try
        {
            Span<double> unit = rented.AsSpan(0, n);
            Span<double> scratch = rented.AsSpan(n, n);
            Pixels.ToUnit(x, unit);
            Filters.Gaussian(unit, unit, scratch, width, height, sigma, Border.Nearest);
            for (int i = 0; i < n; i++)
                y[i] = (byte)Math.Clamp(unit[i] * 255.0, 0.0, 255.0); // numpy's uint8 cast truncates

            for (int pass = 0; pass < Iterations; pass++)
            {
                for (int h = height - delta; h > delta; h--)
                {
                    for (int w = width - delta; w > delta; w--)
                    {
                        // All three draws every time: the same seed then makes the same choices at every severity.
                        bool swap = rng.NextDouble() < swapProbability;
                        int dx = rng.NextInt(-delta, delta);
                        int dy = rng.NextInt(-delta, delta);
                        if (!swap)
                            continue;
                        int here = h * width + w, there = (h + dy) * width + w + dx;
                        (y[here], y[there]) = (y[there], y[here]);
                    }
                }
            }

            Pixels.ToUnit(y, unit);
            Filters.Gaussian(unit, unit, scratch, width, height, sigma, Border.Nearest);
            Pixels.FromUnit(unit, y);
        }
        finally
        {
            Pixels.Return(rented);
        }
    }
}
