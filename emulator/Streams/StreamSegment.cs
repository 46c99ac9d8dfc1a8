using System.Globalization;
using System.Text;

namespace TinyTrain.Emulator.Streams;

/// <summary>
/// One part of a stream: <see cref="Count"/> samples of <see cref="BaseSet"/> (only <see cref="Classes"/> when
/// given), each passed through <see cref="Corruption"/> at <see cref="Severity"/>, labelled by <see cref="Labels"/>.
/// Written <c>source[classes]:transform@severity*count/labels</c>; <see cref="ToString"/> gives that text.
/// </summary>
public sealed record StreamSegment
{
    public const string Clean = "clean";

    internal StreamSegment(string source, string baseSet, int[]? classes, string corruption, double severity, int? count, LabelRule labels)
    {
        Source = source;
        BaseSet = baseSet;
        Classes = classes;
        Corruption = corruption;
        Severity = severity;
        Count = count;
        Labels = labels;
    }

    /// <summary>The source as written (lower case): a data set, or a data set with "-c" (e.g. "mnist-c").</summary>
    public string Source { get; }

    /// <summary>The data set the samples come from (DataCatalog's name): "mnist" for both "mnist" and "mnist-c".</summary>
    public string BaseSet { get; }

    /// <summary>The classes this segment draws from, ascending and distinct; null for all of them.</summary>
    public IReadOnlyList<int>? Classes { get; }

    /// <summary>"clean" or one of CorruptionCatalog's names.</summary>
    public string Corruption { get; }

    public bool IsClean => Corruption == Clean;

    /// <summary>The corruption's severity; 1 unless the spec says otherwise.</summary>
    public double Severity { get; }

    /// <summary>How many samples; null for one pass over every sample the segment can draw from.</summary>
    public int? Count { get; }

    public LabelRule Labels { get; }

    /// <summary>A readable label for plots and tables, e.g. "mnist-c:fog", "mnist[0-4]:clean", "mnist-c:rotate@2".</summary>
    public string Name
    {
        get
        {
            var name = new StringBuilder(Source);
            if (Classes is not null)
                name.Append('[').Append(FormatClasses(Classes)).Append(']');
            name.Append(':').Append(Corruption);
            if (Severity != 1.0)
                name.Append('@').Append(Severity.ToString("R", CultureInfo.InvariantCulture));
            return name.ToString();
        }
    }

    /// <summary>The segment in the spec grammar; parsing it gives an equal segment.</summary>
    public override string ToString()
    {
        string text = Name;
        if (Count is int count)
            text += "*" + count.ToString(CultureInfo.InvariantCulture);
        if (Labels.Kind != LabelKind.All)
            text += "/" + Labels;
        return text;
    }

    public bool Equals(StreamSegment? other) =>
        other is not null && Source == other.Source && BaseSet == other.BaseSet && Corruption == other.Corruption
        && Severity.Equals(other.Severity) && Count == other.Count && Labels == other.Labels
        && (Classes is null ? other.Classes is null : other.Classes is not null && Classes.SequenceEqual(other.Classes));

    public override int GetHashCode() => HashCode.Combine(Source, Corruption, Severity, Count, Labels, Classes?.Count);

    /// <summary>"0-4", "1,3,5", "0-2,7": runs of three or more as ranges.</summary>
    internal static string FormatClasses(IReadOnlyList<int> classes)
    {
        var text = new StringBuilder();
        for (int i = 0; i < classes.Count;)
        {
            int j = i;
            while (j + 1 < classes.Count && classes[j + 1] == classes[j] + 1) j++;
            if (text.Length > 0) text.Append(',');
            text.Append(classes[i].ToString(CultureInfo.InvariantCulture));
            if (j - i >= 2)
            {
                text.Append('-').Append(classes[j].ToString(CultureInfo.InvariantCulture));
                i = j + 1;
            }
            else
            {
                i++;
            }
        }
        return text.ToString();
    }
}
