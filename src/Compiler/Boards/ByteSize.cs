using System.Globalization;

namespace TinyTrain.Compiler.Boards;

/// <summary>Byte counts for people, in binary units (1 KB = 1024 B) as board datasheets write them: "256 KB", "1.5 MB", "0".</summary>
public static class ByteSize
{
    public static string Format(long bytes)
    {
        if (bytes == 0) return "0";
        long magnitude = Math.Abs(bytes);
        int unit = magnitude >= 1L << 30 ? 3 : magnitude >= 1L << 20 ? 2 : magnitude >= 1L << 10 ? 1 : 0;
        // One decimal at most. Where that would show an inexact figure as a whole number ("1.0 MB" for 1028.5 KB),
        // step down a unit, so that "over by" and "needs" never hide a remainder.
        for (; unit > 0; unit--)
        {
            long scale = 1L << (10 * unit);
            if (bytes % scale == 0) return $"{bytes / scale} {Units[unit]}";
            string text = ((double)bytes / scale).ToString("0.0", CultureInfo.InvariantCulture);
            if (!text.EndsWith(".0", StringComparison.Ordinal)) return $"{text} {Units[unit]}";
        }
        return $"{bytes} B";
    }

    /// <summary>Reads "65536", "64KB", "64 KB", "64K", "1.5MB" (binary units); null when the text is not a byte count.</summary>
    public static long? Parse(string text)
    {
        string t = text.Trim().ToUpperInvariant().Replace(" ", "", StringComparison.Ordinal);
        int unit = 0;
        foreach ((string suffix, int u) in new[] { ("GB", 3), ("MB", 2), ("KB", 1), ("G", 3), ("M", 2), ("K", 1), ("B", 0) })
            if (t.EndsWith(suffix, StringComparison.Ordinal))
            {
                t = t[..^suffix.Length];
                unit = u;
                break;
            }
        if (!double.TryParse(t, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double value)) return null;
        double bytes = value * (1L << (10 * unit));
        return bytes is >= 0 and <= long.MaxValue / 2 && bytes == Math.Floor(bytes) ? (long)bytes : null;
    }

    private static readonly string[] Units = ["B", "KB", "MB", "GB"];
}
