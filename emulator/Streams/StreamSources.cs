using System.Globalization;
using TinyTrain.Compiler.Data;
using TinyTrain.Emulator.Corruptions;

namespace TinyTrain.Emulator.Streams;

/// <summary>
/// The names a segment may use, and the checks both spec forms (text and JSON) share. Each check returns null when
/// the value is fine, else the message that the front end prefixes with where it stands.
/// </summary>
internal static class StreamSources
{
    public const string CorruptedSuffix = "-c";

    private static readonly Lazy<string[]> BaseSets = new(() =>
    {
        IReadOnlyList<DatasetInfo> known = DataCatalog.Known;
        var names = new string[known.Count];
        for (int i = 0; i < names.Length; i++) names[i] = known[i].Name;
        return names;
    });

    private static readonly Lazy<string[]> CorruptionNames = new(() => [.. CorruptionCatalog.Names]);

    /// <summary>Every source, plain sets first, then their "-c" forms.</summary>
    public static string[] Known => [.. BaseSets.Value, .. BaseSets.Value.Where(HasCorruptedForm).Select(n => n + CorruptedSuffix)];

    // The "-c" forms take MNIST-C's corruptions: image sets only (imu-gestures takes its field shifts directly).
    private static bool HasCorruptedForm(string set) => !TinyTrain.Compiler.Data.Imu.ImuGestures.Is(set);

    /// <summary>The data set behind <paramref name="source"/> (lower case), and whether it demands a corruption.</summary>
    public static string? Resolve(string source, out bool corrupted)
    {
        corrupted = false;
        foreach (string name in BaseSets.Value)
        {
            if (source == name) return name;
            if (source == name + CorruptedSuffix && HasCorruptedForm(name))
            {
                corrupted = true;
                return name;
            }
        }
        return null;
    }

    public static string UnknownSource(string source) =>
        $"unknown source '{source}'; known: {string.Join(", ", Known)}";

    public static string? CheckTransform(string source, bool corrupted, string transform)
    {
        string baseSet = corrupted ? source[..^CorruptedSuffix.Length] : source;
        bool imuSet = TinyTrain.Compiler.Data.Imu.ImuGestures.Is(baseSet);
        bool imuShift = CorruptionCatalog.ImuShiftNames.Contains(transform);
        if (imuSet && transform != StreamSegment.Clean && !imuShift)
            return $"'{source}' streams sensor windows: name a field shift ({string.Join(", ", CorruptionCatalog.ImuShiftNames)}) or clean";
        if (!imuSet && imuShift)
            return $"'{transform}' is a field shift of imu-gestures; images take: clean, {string.Join(", ", CorruptionNames.Value)}";
        if (imuSet && imuShift)
            return null;
        if (transform == StreamSegment.Clean)
            return corrupted
                ? $"'{source}' is the corrupted set: name a corruption ({string.Join(", ", CorruptionNames.Value)}), or use '{source[..^CorruptedSuffix.Length]}:clean'"
                : null;
        if (Array.IndexOf(CorruptionNames.Value, transform) >= 0)
            return null;
        return corrupted
            ? $"unknown corruption '{transform}'; known: {string.Join(", ", CorruptionNames.Value)}"
            : $"unknown transform '{transform}'; known: clean, {string.Join(", ", CorruptionNames.Value)}";
    }

    public static string? CheckSeverity(string transform, double severity)
    {
        if (transform == StreamSegment.Clean)
            return "'clean' takes no severity";
        if (CorruptionCatalog.ImuShiftNames.Contains(transform) && !(severity >= 0 && severity <= TinyTrain.Compiler.Data.Imu.ImuShift.MaxSeverity))
            return $"severity of the field shift '{transform}' must be in 0..{TinyTrain.Compiler.Data.Imu.ImuShift.MaxSeverity.ToString(CultureInfo.InvariantCulture)} (1 is the documented setting), got {severity.ToString("R", CultureInfo.InvariantCulture)}";
        if (!(severity >= 0 && severity <= CorruptionCatalog.MaxSeverity))
            return $"severity must be in 0..{CorruptionCatalog.MaxSeverity.ToString(CultureInfo.InvariantCulture)} (1 is MNIST-C's setting), got {severity.ToString("R", CultureInfo.InvariantCulture)}";
        return null;
    }

    public const int MaxClass = 255;
}
