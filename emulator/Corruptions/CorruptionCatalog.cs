using System.Collections.ObjectModel;

namespace TinyTrain.Emulator.Corruptions;

/// <summary>The 15 MNIST-C corruptions by name (the paper's order), plus "clean", the identity, and the imu-gestures field shifts.</summary>
public static class CorruptionCatalog
{
    /// <summary>The largest severity any corruption accepts (1 is the paper's setting).</summary>
    public const double MaxSeverity = 10.0;

    private static readonly Corruption[] Paper =
    [
        new ShotNoise(), new ImpulseNoise(), new GlassBlur(), new MotionBlur(), new Shear(), new Scale(), new Rotate(),
        new Brightness(), new Translate(), new Stripe(), new Fog(), new Spatter(), new DottedLine(), new Zigzag(),
        new CannyEdges(),
    ];

    private static readonly Clean CleanImage = new();

    private static readonly ImuShiftCorruption[] Imu =
        Array.ConvertAll(Enum.GetValues<TinyTrain.Compiler.Data.Imu.ImuShiftKind>(), k => new ImuShiftCorruption(k));

    /// <summary>The field shifts of imu-gestures windows (rotation, gain, tempo, vibration); they apply to that set only.</summary>
    public static IReadOnlyList<string> ImuShiftNames { get; } = new ReadOnlyCollection<string>(Array.ConvertAll(Imu, c => c.Name));

    /// <summary>The 15 corruption names of MNIST-C, kebab case, in the paper's order ("clean" is not among them).</summary>
    public static IReadOnlyList<string> Names { get; } = new ReadOnlyCollection<string>(Array.ConvertAll(Paper, c => c.Name));

    /// <summary>
    /// The corruption called <paramref name="name"/> (case ignored): one of <see cref="Names"/> or "clean". The
    /// instances are stateless and safe to share between threads.
    /// </summary>
    public static ICorruption Get(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (string.Equals(name, CleanImage.Name, StringComparison.OrdinalIgnoreCase))
            return CleanImage;
        foreach (Corruption corruption in Paper)
        {
            if (string.Equals(name, corruption.Name, StringComparison.OrdinalIgnoreCase))
                return corruption;
        }
        foreach (ImuShiftCorruption shift in Imu)
        {
            if (string.Equals(name, shift.Name, StringComparison.OrdinalIgnoreCase))
                return shift;
        }
        throw new TinyTrainException(
            $"Unknown corruption '{name}': known are {CleanImage.Name}, {string.Join(", ", Names)} (MNIST-C's 15, kebab case).");
    }
}
