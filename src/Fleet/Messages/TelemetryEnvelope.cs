namespace TinyTrain.Fleet.Messages;

using MessagePack;

/// <summary>How a device is doing: prequential accuracy, the share of inputs flagged out-of-distribution, the arena high-water.</summary>
[MessagePackObject]
public sealed class TelemetryEnvelope
{
    [Key(0)] public int SchemaVersion { get; set; } = UpdateEnvelope.CurrentSchema;
    [Key(1)] public string DeviceId { get; set; } = "";
    [Key(2)] public string ModelId { get; set; } = "";
    [Key(3)] public long GlobalVersion { get; set; }
    [Key(4)] public float AccuracyEstimate { get; set; }
    [Key(5)] public float OodRate { get; set; }
    [Key(6)] public int SramHighWaterBytes { get; set; }
    [Key(7)] public int Samples { get; set; }
}
