namespace TinyTrain.Fleet.Messages;

using MessagePack;

/// <summary>The current global adapter, published retained by the aggregator: full values, not a delta.</summary>
[MessagePackObject]
public sealed class GlobalEnvelope
{
    [Key(0)] public int SchemaVersion { get; set; } = UpdateEnvelope.CurrentSchema;
    [Key(1)] public string ModelId { get; set; } = "";
    [Key(2)] public string AdapterKind { get; set; } = "";
    [Key(3)] public string Task { get; set; } = "";
    [Key(4)] public long Version { get; set; }
    /// <summary>Updates combined into this version.</summary>
    [Key(5)] public int Contributors { get; set; }
    [Key(6)] public long SampleCount { get; set; }
    /// <summary>An adapter pack (TinyTrain.Adapters.Packs): the adapter's tensors, as a device stores and swaps them.</summary>
    [Key(7)] public byte[] Payload { get; set; } = [];
}
