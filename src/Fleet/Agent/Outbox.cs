namespace TinyTrain.Fleet.Agent;

using System.Globalization;

/// <summary>
/// A device's outgoing updates on disk, one file per message, kept until the broker acknowledges it (PUBACK), so a
/// reboot or a lost connection loses nothing; also the next sequence number, which only ever grows.
/// </summary>
public sealed class Outbox
{
    private readonly string _directory;

    public Outbox(string directory)
    {
        _directory = directory ?? throw new ArgumentNullException(nameof(directory));
        Directory.CreateDirectory(directory);
        string path = SequencePath;
        PendingCount = Directory.GetFiles(directory, "*.msg").Length;
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

    public void Add(long sequence, byte[] message)
    {
        string path = MessagePath(sequence);
        bool added = !File.Exists(path);
        WriteAtomically(path, message);
        if (added) Interlocked.Increment(ref _pendingCount);
    }

    public void Remove(long sequence)
    {
        string path = MessagePath(sequence);
        if (!File.Exists(path)) return;
        File.Delete(path);
        Interlocked.Decrement(ref _pendingCount);
    }

    private int _pendingCount;

    /// <summary>Messages not yet acknowledged (kept in memory; <see cref="Count"/> reads the disk).</summary>
    public int PendingCount { get => Volatile.Read(ref _pendingCount); private set => _pendingCount = value; }

    /// <summary>Messages not yet acknowledged, oldest first.</summary>
    public IReadOnlyList<(long Sequence, byte[] Message)> Pending()
    {
        var pending = new List<(long, byte[])>();
        foreach (string file in Directory.GetFiles(_directory, "*.msg"))
            if (long.TryParse(Path.GetFileNameWithoutExtension(file), NumberStyles.None, CultureInfo.InvariantCulture, out long sequence))
                pending.Add((sequence, File.ReadAllBytes(file)));
        pending.Sort((a, b) => a.Item1.CompareTo(b.Item1));
        return pending;
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
