namespace TinyTrain.Fleet.Messages;

using MessagePack;

/// <summary>A device's adapter update: what it learned since the global version it started from, and how much data taught it.</summary>
[MessagePackObject]
public sealed class UpdateEnvelope
{
    public const int CurrentSchema = 1;

    [Key(0)] public int SchemaVersion { get; set; } = CurrentSchema;
    [Key(1)] public string DeviceId { get; set; } = "";
    /// <summary>ModelIdentity of the plan the device runs.</summary>
    [Key(2)] public string ModelId { get; set; } = "";
    /// <summary>What the payload trains: "params" (a plan's trainable set) until adapter packs carry adapter kinds.</summary>
    [Key(3)] public string AdapterKind { get; set; } = "";
    [Key(4)] public string Task { get; set; } = "";
    /// <summary>The global adapter version the delta was computed against.</summary>
    [Key(5)] public long BaseVersion { get; set; }
    [Key(6)] public int SampleCount { get; set; }
    [Key(7)] public Dictionary<string, float> Metrics { get; set; } = [];
    /// <summary>Strictly increasing per device, kept across restarts: a sequence number at or below one seen is a replay.</summary>
    [Key(8)] public long Sequence { get; set; }
    /// <summary>A TensorPayload: the delta from the base version.</summary>
    [Key(9)] public byte[] Payload { get; set; } = [];
}
