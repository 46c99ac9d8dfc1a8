namespace TinyTrain.Emulator.Corruptions;

/// <summary>
/// MNIST-C brightness at its default severity 5: +0.5 on the HSV value of the gray image. For gray pixels that is
/// an additive shift: each byte gets 127.5 * severity added, rounded half up, clipped at 255.
/// </summary>
public sealed class Brightness : Corruption
{
    /// <summary>The paper's shift in HSV value (0..1).</summary>
    public const double PaperShift = 0.5;

    public override string Name => "brightness";

    public override bool IsRandom => false;

    private protected override void Corrupt(ReadOnlySpan<byte> x, Span<byte> y, int width, int height, double severity, ref SplitMix64 rng)
    {
        double shift = PaperShift * 255.0 * severity;
        for (int i = 0; i < x.Length; i++)
            y[i] = Pixels.ToByte(x[i] + shift);
    }
}
