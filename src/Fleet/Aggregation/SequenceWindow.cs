namespace TinyTrain.Fleet.Aggregation;

/// <summary>
/// Which sequence numbers of one sender (a device, or an ingest worker) are used up, when they may arrive out of order
/// (two workers of a shared subscription can hand on a device's 6 before its 5): everything at or below
/// <c>through</c> (kept in <paramref name="through"/>) plus the numbers seen above it (in <paramref name="above"/>). A
/// number is new when it is in neither; marking it moves <c>through</c> up over every contiguous number. A gap that
/// never fills (a sender that took a number and crashed before using it) is given up once <see cref="MaxAbove"/>
/// numbers wait above it: <c>through</c> jumps over it, and the missing number, if it ever comes, counts as seen.
/// </summary>
public static class SequenceWindow
{
    /// <summary>Numbers kept above a gap before the gap is given up.</summary>
    public const int MaxAbove = 1024;

    /// <summary>Null when <paramref name="sequence"/> is new (and marks it used), else why it is not.</summary>
    public static string? TryMark(Dictionary<string, long> through, Dictionary<string, List<long>> above, string sender, long sequence)
    {
        ArgumentNullException.ThrowIfNull(through);
        ArgumentNullException.ThrowIfNull(above);
        long done = through.TryGetValue(sender, out long t) ? t : 0;
        if (sequence <= done) return $"sequence {sequence}, already seen up to {done}";
        above.TryGetValue(sender, out List<long>? seen);
        if (seen is not null && seen.BinarySearch(sequence) >= 0) return $"sequence {sequence}, already seen (out of order, above {done})";
        if (sequence == done + 1)
        {
            done = sequence;
            while (seen is { Count: > 0 } && seen[0] == done + 1)
            {
                done = seen[0];
                seen.RemoveAt(0);
            }
        }
        else
        {
            if (seen is null) above[sender] = seen = [];
            seen.Insert(~seen.BinarySearch(sequence), sequence);
            if (seen.Count > MaxAbove)
            {
                done = seen[0];
                seen.RemoveAt(0);
                while (seen.Count > 0 && seen[0] == done + 1)
                {
                    done = seen[0];
                    seen.RemoveAt(0);
                }
            }
        }
        through[sender] = done;
        if (seen is { Count: 0 }) above.Remove(sender);
        return null;
    }

    /// <summary>The numbers seen above <c>through</c>, oldest first (empty when none).</summary>
    public static long[] Above(Dictionary<string, List<long>> above, string sender)
        => above.TryGetValue(sender, out List<long>? seen) ? [.. seen] : [];
}
