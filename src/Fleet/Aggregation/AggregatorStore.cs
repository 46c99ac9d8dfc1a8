namespace TinyTrain.Fleet.Aggregation;

using System.Buffers.Binary;
using TinyTrain.Fleet.Messages;

/// <summary>
/// Keeps an aggregator's state on disk so that a restart loses nothing and applies nothing twice: a snapshot
/// (written at each round and on recovery, atomically by rename) plus a journal of every message offered since,
/// appended and flushed to disk before the message is acknowledged to the broker. Recovery loads the snapshot and
/// offers the journal's messages again; the aggregator is deterministic, so it reaches the same state.
/// </summary>
public sealed class AggregatorStore : IDisposable
{
    private const byte KindMessage = 1, KindOversize = 2, KindPartial = 3;
    private readonly string _directory;
    private FileStream? _journal;

    public AggregatorStore(string directory)
    {
        _directory = directory ?? throw new ArgumentNullException(nameof(directory));
        Directory.CreateDirectory(directory);
    }

    private string SnapshotPath => Path.Combine(_directory, "aggregator.snapshot");
    private string JournalPath(long generation) => Path.Combine(_directory, $"journal-{generation}.log");

    /// <summary>The saved state, or null when the directory holds none yet.</summary>
    public AggregatorState? LoadSnapshot()
    {
        if (!File.Exists(SnapshotPath)) return null;
        byte[] bytes = File.ReadAllBytes(SnapshotPath);
        if (!FleetSerializer.TryDeserialize(bytes, out AggregatorState state))
            throw new TinyTrainException($"{SnapshotPath} is damaged (not an aggregator snapshot); move it away to start afresh");
        return state;
    }

    /// <summary>Offers the journal of the snapshot's generation to <paramref name="aggregator"/> again, then snapshots. Returns messages replayed.</summary>
    public int Recover(Aggregator aggregator)
    {
        ArgumentNullException.ThrowIfNull(aggregator);
        int replayed = 0;
        string path = JournalPath(aggregator.State.JournalGeneration);
        if (File.Exists(path))
        {
            byte[] journal = File.ReadAllBytes(path);
            int at = 0;
            // A record cut short by a crash was never acknowledged: the broker delivers it again.
            while (at + 5 <= journal.Length)
            {
                int length = BinaryPrimitives.ReadInt32LittleEndian(journal.AsSpan(at));
                byte kind = journal[at + 4];
                if (length < 0 || at + 5 + length > journal.Length) break;
                var record = new ReadOnlyMemory<byte>(journal, at + 5, length);
                if (kind == KindOversize) aggregator.RejectOversize(BinaryPrimitives.ReadInt32LittleEndian(record.Span));
                else if (kind == KindPartial) aggregator.OfferPartial(record);
                else aggregator.Offer(record);
                at += 5 + length;
                replayed++;
            }
        }
        Snapshot(aggregator.State);
        return replayed;
    }

    /// <summary>Appends one offered message, flushed to the disk, before it is offered and acknowledged.</summary>
    /// <param name="partial">A worker's partial (replayed with OfferPartial), not a device's update.</param>
    public void Append(ReadOnlySpan<byte> message, int maxMessageBytes, bool partial = false)
    {
        Write(message, maxMessageBytes, partial);
        Flush();
    }

    /// <summary>
    /// Appends one message without flushing it (group commit): it is not durable, so neither offered nor acknowledged,
    /// until <see cref="Flush"/> has returned. A record a crash cuts short is skipped by <see cref="Recover"/>.
    /// </summary>
    public void Write(ReadOnlySpan<byte> message, int maxMessageBytes, bool partial = false)
    {
        if (_journal is null) throw new InvalidOperationException("Call Recover (or Snapshot) before Append.");
        Span<byte> header = stackalloc byte[5];
        if (message.Length > maxMessageBytes)
        {
            Span<byte> length = stackalloc byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(length, message.Length);
            BinaryPrimitives.WriteInt32LittleEndian(header, 4);
            header[4] = KindOversize;
            _journal.Write(header);
            _journal.Write(length);
        }
        else
        {
            BinaryPrimitives.WriteInt32LittleEndian(header, message.Length);
            header[4] = partial ? KindPartial : KindMessage;
            _journal.Write(header);
            _journal.Write(message);
        }
    }

    /// <summary>Flushes every record written so far to the disk: one fsync for the whole group.</summary>
    public void Flush()
    {
        if (_journal is null) throw new InvalidOperationException("Call Recover (or Snapshot) before Flush.");
        _journal.Flush(flushToDisk: true);
    }

    /// <summary>Writes the state as the new snapshot and starts an empty journal after it.</summary>
    public void Snapshot(AggregatorState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        long old = state.JournalGeneration;
        state.JournalGeneration = old + 1;
        string temporary = SnapshotPath + ".tmp";
        using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            file.Write(FleetSerializer.Serialize(state));
            file.Flush(flushToDisk: true);
        }
        File.Move(temporary, SnapshotPath, overwrite: true);
        _journal?.Dispose();
        _journal = new FileStream(JournalPath(state.JournalGeneration), FileMode.Append, FileAccess.Write, FileShare.Read);
        if (File.Exists(JournalPath(old))) File.Delete(JournalPath(old));
    }

    public void Dispose()
    {
        _journal?.Dispose();
        _journal = null;
    }
}
