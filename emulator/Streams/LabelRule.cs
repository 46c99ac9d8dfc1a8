using System.Globalization;

namespace TinyTrain.Emulator.Streams;

public enum LabelKind
{
    /// <summary>Every sample comes with its label.</summary>
    All,

    /// <summary>No sample does: the device sees unlabelled data (test-time adaptation).</summary>
    None,

    /// <summary>Every Nth sample of the segment (the Nth, 2Nth, ...; 1-based) is labelled.</summary>
    Every,

    /// <summary>The segment's first N samples are labelled, the rest are not (a few shots, then deployment).</summary>
    First,
}

/// <summary>
/// Which samples of a segment carry a label the learner may use. Written <c>all</c>, <c>none</c>, <c>every:N</c> or
/// <c>first:N</c>. Every sample still reports its true label, for measuring accuracy.
/// </summary>
public readonly record struct LabelRule(LabelKind Kind, int N)
{
    public static LabelRule All => new(LabelKind.All, 0);
    public static LabelRule None => new(LabelKind.None, 0);

    public static LabelRule Every(int n)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1);
        return new(LabelKind.Every, n);
    }

    public static LabelRule First(int n)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        return new(LabelKind.First, n);
    }

    /// <summary>Whether sample <paramref name="index"/> (0-based, within its segment) is labelled.</summary>
    public bool IsLabelled(int index) => Kind switch
    {
        LabelKind.All => true,
        LabelKind.None => false,
        LabelKind.Every => (index + 1) % N == 0,
        LabelKind.First => index < N,
        _ => false,
    };

    /// <summary>How many of a segment's first <paramref name="count"/> samples are labelled.</summary>
    public int LabelledCount(int count) => Kind switch
    {
        LabelKind.All => count,
        LabelKind.None => 0,
        LabelKind.Every => count / N,
        LabelKind.First => Math.Min(count, N),
        _ => 0,
    };

    public override string ToString() => Kind switch
    {
        LabelKind.All => "all",
        LabelKind.None => "none",
        LabelKind.Every => "every:" + N.ToString(CultureInfo.InvariantCulture),
        LabelKind.First => "first:" + N.ToString(CultureInfo.InvariantCulture),
        _ => Kind.ToString(),
    };

    /// <summary>Parses <paramref name="text"/>; on failure returns false with a message and the offset in
    /// <paramref name="text"/> where the problem starts.</summary>
    internal static bool TryParse(string text, out LabelRule rule, out string error, out int errorOffset)
    {
        rule = All;
        error = "";
        errorOffset = 0;
        int colon = text.IndexOf(':', StringComparison.Ordinal);
        string word = (colon < 0 ? text : text[..colon]).ToLowerInvariant();
        switch (word)
        {
            case "all" or "none" when colon < 0:
                rule = word == "all" ? All : None;
                return true;
            case "all" or "none":
                error = $"'{word}' takes no number";
                errorOffset = colon;
                return false;
            case "every" or "first":
                string digits = colon < 0 ? "" : text[(colon + 1)..];
                if (colon < 0 || digits.Length == 0)
                {
                    error = $"'{word}' needs a number: {word}:N";
                    errorOffset = colon < 0 ? text.Length : colon + 1;
                    return false;
                }
                if (!IsDigits(digits) || !int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out int n))
                {
                    error = $"expected a whole number after '{word}:', found '{digits}'";
                    errorOffset = colon + 1;
                    return false;
                }
                if (word == "every" && n < 1)
                {
                    error = "every:N needs N >= 1";
                    errorOffset = colon + 1;
                    return false;
                }
                rule = word == "every" ? Every(n) : First(n);
                return true;
            default:
                error = $"unknown labels '{text}': expected all, none, every:N or first:N";
                return false;
        }
    }

    private static bool IsDigits(string s)
    {
        foreach (char c in s)
            if (c is < '0' or > '9') return false;
        return true;
    }
}
