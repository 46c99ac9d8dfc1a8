namespace TinyTrain.Fleet.Messages;

using MessagePack;

/// <summary>
/// The aggregator's word to one device, published retained after the updates are in its journal: every update of
/// this device up to <see cref="Sequence"/> (and each in <see cref="Also"/>) is decided (accepted, refused, or aggregated) and will never be needed again,
/// so the device may drop them from its outbox. Signed by the aggregator with the key that signs the global adapter.
/// </summary>
[MessagePackObject]
public sealed class ReceiptEnvelope
{
    [Key(0)] public int SchemaVersion { get; set; } = UpdateEnvelope.CurrentSchema;
    [Key(1)] public string DeviceId { get; set; } = "";
    [Key(2)] public string ModelId { get; set; } = "";
    [Key(3)] public string AdapterKind { get; set; } = "";
    [Key(4)] public string Task { get; set; } = "";
    /// <summary>The highest sequence number of this device the aggregator has journaled and decided on.</summary>
    [Key(5)] public long Sequence { get; set; }
    /// <summary>Sequence numbers above <see cref="Sequence"/> that are decided too (they arrived out of order, through different ingest workers).</summary>
    [Key(6)] public long[] Also { get; set; } = [];
}
