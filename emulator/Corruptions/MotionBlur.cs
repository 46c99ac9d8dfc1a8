namespace TinyTrain.Emulator.Corruptions;

/// <summary>
/// MNIST-C motion_blur at its default severity 1, which calls ImageMagick's MotionBlurImage(radius 10, sigma 3,
/// angle uniform in [-45, 45) degrees): a one-sided kernel of 2*ceil(radius)+1 taps along the angle with weights
/// exp(-i^2 / (2 sigma^2)), offsets rounded to whole pixels, edges repeated. Radius and sigma scale with severity.
/// </summary>
public sealed class MotionBlur : Corruption
{
    public const double PaperRadius = 10.0;
    public const double PaperSigma = 3.0;
    public const double MaxAngleDegrees = 45.0;

    public override string Name => "motion-blur";

    public override bool IsRandom => true;

    private protected override void Corrupt(ReadOnlySpan<byte> x, Span<byte> y, int width, int height, double severity, ref SplitMix64 rng)
    {
        double radius = PaperRadius * severity;
        double sigma = PaperSigma * severity;
        double angle = rng.NextUniform(-MaxAngleDegrees, MaxAngleDegrees) * (Math.PI / 180.0);
        int taps = 2 * (int)Math.Ceiling(radius) + 1; // ImageMagick's GetOptimalKernelWidth1D for radius > 0

        Span<double> kernel = stackalloc double[taps];
        Span<int> dx = stackalloc int[taps];
        Span<int> dy = stackalloc int[taps];
        double sum = 0;
        for (int i = 0; i < taps; i++)
        {
            kernel[i] = DeterministicMath.Exp(-(double)i * i / (2.0 * sigma * sigma));
            sum += kernel[i];
        }
        double px = taps * DeterministicMath.Sin(angle), py = taps * DeterministicMath.Cos(angle);
        double length = Math.Sqrt(px * px + py * py);
        for (int i = 0; i < taps; i++)
        {
            kernel[i] /= sum;
            dx[i] = (int)Math.Ceiling(i * py / length - 0.5);
            dy[i] = (int)Math.Ceiling(i * px / length - 0.5);
        }

        for (int r = 0; r < height; r++)
        {
            for (int c = 0; c < width; c++)
            {
                double v = 0;
                for (int i = 0; i < taps; i++)
                {
                    int rr = Math.Clamp(r + dy[i], 0, height - 1);
                    int cc = Math.Clamp(c + dx[i], 0, width - 1);
                    v += kernel[i] * x[rr * width + cc];
                }
                y[r * width + c] = Pixels.ToByte(v);
            }
        }
    }
}
