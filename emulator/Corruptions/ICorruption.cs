namespace TinyTrain.Emulator.Corruptions;

/// <summary>
/// One image corruption of MNIST-C (Mu and Gilmer, 2019): a grayscale image in (bytes 0..255, row-major,
/// width x height), the corrupted image out. The same image, severity and seed give the same bytes on every machine.
/// </summary>
public interface ICorruption
{
    /// <summary>The kebab-case name, e.g. "shot-noise".</summary>
    string Name { get; }

    /// <summary>Whether the result depends on the seed (false for scale, brightness, stripe, canny-edges, clean).</summary>
    bool IsRandom { get; }

    /// <summary>
    /// Writes the corrupted <paramref name="image"/> into <paramref name="output"/>; both hold width*height bytes and
    /// must not overlap. Severity 1 is the paper's setting, 0 leaves the image unchanged, larger is stronger, up to
    /// <see cref="CorruptionCatalog.MaxSeverity"/> (README.md says how each corruption scales).
    /// </summary>
    void Apply(ReadOnlySpan<byte> image, Span<byte> output, int width, int height, double severity, ulong seed);
}
