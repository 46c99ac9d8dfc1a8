namespace TinyTrain.Emulator.Corruptions;

/// <summary>
/// What every corruption shares: argument checks, severity 0 as the identity, and one SplitMix64 generator per call
/// seeded by the caller's seed. Subclasses only corrupt.
/// </summary>
public abstract class Corruption : ICorruption
{
    public abstract string Name { get; }

    public abstract bool IsRandom { get; }

    public void Apply(ReadOnlySpan<byte> image, Span<byte> output, int width, int height, double severity, ulong seed)
    {
        Check(image, output, width, height, severity);
        if (severity == 0)
        {
            image.CopyTo(output);
            return;
        }
        var rng = new SplitMix64(seed);
        Corrupt(image, output, width, height, severity, ref rng);
    }

    /// <summary>
    /// x and y hold width*height bytes and do not overlap; 0 &lt; severity &lt;= MaxSeverity. Draws come from
    /// <paramref name="rng"/> only, in a fixed order.
    /// </summary>
    private protected abstract void Corrupt(ReadOnlySpan<byte> x, Span<byte> y, int width, int height, double severity, ref SplitMix64 rng);

    public override string ToString() => Name;

    private static void Check(ReadOnlySpan<byte> image, Span<byte> output, int width, int height, double severity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        long pixels = (long)width * height;
        if (image.Length != pixels)
            throw new ArgumentException($"The image holds {image.Length} bytes; a {width}x{height} image needs {pixels}.", nameof(image));
        if (output.Length != pixels)
            throw new ArgumentException($"The output holds {output.Length} bytes; a {width}x{height} image needs {pixels}.", nameof(output));
        if (image.Overlaps(output))
            throw new ArgumentException("The output overlaps the image: corruptions read the image after writing, so pass a separate buffer.", nameof(output));
        if (!(severity >= 0 && severity <= CorruptionCatalog.MaxSeverity))
            throw new ArgumentOutOfRangeException(nameof(severity), severity,
                $"Severity must be in 0..{CorruptionCatalog.MaxSeverity} (1 is MNIST-C's setting, 0 the clean image).");
    }
}
