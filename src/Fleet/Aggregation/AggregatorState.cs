namespace TinyTrain.Fleet.Aggregation;

using MessagePack;

/// <summary>An accepted update waiting for its round.</summary>
[MessagePackObject]
public sealed class BufferedUpdate
{
    [Key(0)] public string DeviceId { get; set; } = "";
    [Key(1)] public long Sequence { get; set; }
    [Key(2)] public long BaseVersion { get; set; }
    [Key(3)] public int SampleCount { get; set; }
    [Key(4)] public float[] Delta { get; set; } = [];
}

/// <summary>Everything an aggregator must not forget across a restart: the global adapter, seen sequence numbers, the buffer, counts.</summary>
[MessagePackObject]
public sealed class AggregatorState
{
    [Key(0)] public long Version { get; set; }
    [Key(1)] public float[] Global { get; set; } = [];
    /// <summary>Per device, every sequence number at or below this one is used up (SequenceWindow; signature verified).</summary>
    [Key(2)] public Dictionary<string, long> LastSequence { get; set; } = [];
    [Key(3)] public List<BufferedUpdate> Buffer { get; set; } = [];
    /// <summary>Refused messages by reason (RejectReasons.Name).</summary>
    [Key(4)] public Dictionary<string, long> Rejected { get; set; } = [];
    [Key(5)] public long Accepted { get; set; }
    /// <summary>"device:sequence" of every update folded into a closed round, in order: the exactly-once audit trail.</summary>
    [Key(6)] public List<string> Aggregated { get; set; } = [];
    [Key(7)] public long SampleCount { get; set; }
    /// <summary>Which journal file continues this snapshot.</summary>
    [Key(8)] public long JournalGeneration { get; set; }
    /// <summary>Per device, sequence numbers used above <see cref="LastSequence"/> (arrived out of order).</summary>
    [Key(9)] public Dictionary<string, List<long>> SeenAbove { get; set; } = [];
    /// <summary>A merger's ingest workers: every partial sequence number at or below this one is used up.</summary>
    [Key(10)] public Dictionary<string, long> WorkerThrough { get; set; } = [];
    /// <summary>A merger's ingest workers: partial sequence numbers used above <see cref="WorkerThrough"/>.</summary>
    [Key(11)] public Dictionary<string, List<long>> WorkerAbove { get; set; } = [];
    /// <summary>Partials a worker sent again that were already here (redeliveries, not refusals: receipted again, applied never).</summary>
    [Key(12)] public long DuplicatePartials { get; set; }
}
