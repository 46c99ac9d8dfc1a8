namespace TinyTrain.Fleet.Agent;

using System.Globalization;

/// <summary>
/// A device's outgoing updates on disk, one file per message, kept until the aggregator's signed receipt covers it (the
/// broker's PUBACK is not enough: a broker can acknowledge and then lose a message), so a reboot, a lost connection or
/// a broker crash loses nothing; also the next sequence number, which only ever grows.
/// </summary>
public sealed class Outbox
{
    private readonly string _directory;

    public Outbox(string directory)
    {
        _directory = directory ?? throw new ArgumentNullException(nameof(directory));
        Directory.CreateDirectory(directory);
        string path = SequencePath;
        foreach (string file in Directory.GetFiles(directory, "*.msg"))
            if (long.TryParse(Path.GetFileNameWithoutExtension(file), NumberStyles.None, CultureInfo.InvariantCulture, out long sequence)) _sequences.Add(sequence);
        NextSequence = File.Exists(path) && long.TryParse(File.ReadAllText(path), NumberStyles.None, CultureInfo.InvariantCulture, out long next) ? next : 1;
    }

    private string SequencePath => Path.Combine(_directory, "next-sequence");

    public long NextSequence { get; private set; }

    /// <summary>Takes the next sequence number and records that it is used before anything is sent with it.</summary>
    public long TakeSequence()
    {
        long sequence = NextSequence;
        WriteAtomically(SequencePath, System.Text.Encoding.ASCII.GetBytes((sequence + 1).ToString(CultureInfo.InvariantCulture)));
        NextSequence = sequence + 1;
        return sequence;
    }

    /// <summary>Takes <paramref name="count"/> sequence numbers at once (one write to the disk); returns the first.</summary>
    public long TakeSequences(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        long first = NextSequence;
        WriteAtomically(SequencePath, System.Text.Encoding.ASCII.GetBytes((first + count).ToString(CultureInfo.InvariantCulture)));
        NextSequence = first + count;
        return first;
    }

    private readonly SortedSet<long> _sequences = [];

    /// <summary>
    /// Adds several messages as one group commit: every file is written before any is flushed, so the file system
    /// commits them together (the first fsync carries the others' data along; the rest find nothing left to write).
    /// Each is on disk, under its final name, when this returns.
    /// </summary>
    public void AddMany(IReadOnlyList<(long Sequence, byte[] Message)> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var files = new List<FileStream>(messages.Count);
        try
        {
            foreach ((long sequence, byte[] message) in messages)
            {
                var file = new FileStream(MessagePath(sequence) + ".tmp", FileMode.Create, FileAccess.Write, FileShare.None);
                files.Add(file);
                file.Write(message);
                file.Flush(flushToDisk: false);
            }
            foreach (FileStream file in files) file.Flush(flushToDisk: true);
        }
        finally
        {
            foreach (FileStream file in files) file.Dispose();
        }
        foreach ((long sequence, _) in messages) File.Move(MessagePath(sequence) + ".tmp", MessagePath(sequence), overwrite: true);
        lock (_sequences) foreach ((long sequence, _) in messages) _sequences.Add(sequence);
    }

    public void Add(long sequence, byte[] message)
    {
        WriteAtomically(MessagePath(sequence), message);
        lock (_sequences) _sequences.Add(sequence);
    }

    public void Remove(long sequence)
    {
        lock (_sequences)
        {
            File.Delete(MessagePath(sequence));
            _sequences.Remove(sequence);
        }
    }

    /// <summary>Removes one message if it is still here; whether it was.</summary>
    public bool TryRemove(long sequence)
    {
        lock (_sequences)
        {
            if (!_sequences.Remove(sequence)) return false;
            File.Delete(MessagePath(sequence));
            return true;
        }
    }

    /// <summary>Removes every message numbered at or below <paramref name="sequence"/> (a receipt covers them); returns how many.</summary>
    public int RemoveThrough(long sequence)
    {
        lock (_sequences)
        {
            long[] covered = [.. _sequences.GetViewBetween(long.MinValue, sequence)];
            foreach (long s in covered)
            {
                File.Delete(MessagePath(s));
                _sequences.Remove(s);
            }
            return covered.Length;
        }
    }

    /// <summary>Messages not yet receipted (kept in memory; <see cref="Count"/> reads the disk).</summary>
    public int PendingCount { get { lock (_sequences) return _sequences.Count; } }

    /// <summary>Sequence numbers not yet receipted, oldest first (from memory).</summary>
    public long[] PendingSequences() { lock (_sequences) return [.. _sequences]; }

    /// <summary>Messages not yet receipted, oldest first.</summary>
    public IReadOnlyList<(long Sequence, byte[] Message)> Pending()
    {
        var pending = new List<(long, byte[])>();
        foreach (string file in Directory.GetFiles(_directory, "*.msg"))
        {
            if (!long.TryParse(Path.GetFileNameWithoutExtension(file), NumberStyles.None, CultureInfo.InvariantCulture, out long sequence)) continue;
            try
            {
                pending.Add((sequence, File.ReadAllBytes(file)));
            }
            catch (FileNotFoundException)
            {
                // Receipted (removed) between the listing and the read.
            }
        }
        pending.Sort((a, b) => a.Item1.CompareTo(b.Item1));
        return pending;
    }

    /// <summary>One message not yet receipted, or null when it is gone (receipted meanwhile).</summary>
    public byte[]? Read(long sequence)
    {
        try
        {
            return File.ReadAllBytes(MessagePath(sequence));
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }

    public int Count => Directory.GetFiles(_directory, "*.msg").Length;

    private string MessagePath(long sequence) => Path.Combine(_directory, sequence.ToString("D19", CultureInfo.InvariantCulture) + ".msg");

    internal static void WriteAtomically(string path, byte[] bytes)
    {
        string temporary = path + ".tmp";
        using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            file.Write(bytes);
            file.Flush(flushToDisk: true);
        }
        File.Move(temporary, path, overwrite: true);
    }
}
