namespace TinyTrain.Emulator.Streams;

/// <summary>
/// What a device sees, in order: a list of segments (see README.md for the grammar). Parse it from the command-line
/// text (<c>mnist:clean*2000, mnist-c:fog*2000</c>) or from a JSON file (<c>@path/to/stream.json</c>), then open it
/// with a seed as a <see cref="DataStream"/>. Parsing checks names and syntax only; data sets are loaded by
/// DataStream.
/// </summary>
public sealed record StreamSpec
{
    internal StreamSpec(StreamSegment[] segments, ulong? seed)
    {
        Segments = segments;
        Seed = seed;
    }

    public IReadOnlyList<StreamSegment> Segments { get; }

    /// <summary>The seed a JSON stream file names; null for the text form, where the caller chooses.</summary>
    public ulong? Seed { get; }

    /// <summary>
    /// Parses the text form, or reads a JSON stream file when <paramref name="spec"/> is <c>@path</c>. Every problem
    /// is a one-line TinyTrainException that names the segment and the column (or the file and the field).
    /// </summary>
    public static StreamSpec Parse(string spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        string trimmed = spec.Trim();
        if (trimmed.StartsWith('@'))
            return StreamSpecJson.Load(trimmed[1..]);
        return new StreamSpec(StreamSpecParser.Parse(spec), null);
    }

    /// <summary>Reads a JSON stream file (the form <c>@path</c> names).</summary>
    public static StreamSpec Load(string path) => StreamSpecJson.Load(path);

    /// <summary>Parses the JSON form; <paramref name="origin"/> (a file name) goes into every error message.</summary>
    public static StreamSpec ParseJson(string json, string origin) => StreamSpecJson.Parse(json, origin);

    /// <summary>The segments in the text grammar, comma-separated (the seed is not part of it).</summary>
    public override string ToString() => string.Join(", ", Segments);

    public bool Equals(StreamSpec? other) =>
        other is not null && Seed == other.Seed && Segments.SequenceEqual(other.Segments);

    public override int GetHashCode() => HashCode.Combine(Seed, Segments.Count);
}
