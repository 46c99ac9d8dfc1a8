namespace TinyTrain.Fleet.Messages;

using MessagePack;

/// <summary>
/// What an ingest worker hands the merger for one device message it took from the shared subscription: the verdict of
/// the checks that need no fleet state (signature, registered device, model, shapes, finite values, size), and for an
/// authentic update its device, sequence number, base version, sample count and checked payload. The merger decides the
/// rest (replay, staleness) against the one fleet state. Signed by the worker; numbered per worker (<see cref="WorkerSequence"/>)
/// so that the merger applies each partial once however often the worker sends it.
/// </summary>
[MessagePackObject]
public sealed class PartialEnvelope
{
    [Key(0)] public int SchemaVersion { get; set; } = UpdateEnvelope.CurrentSchema;
    [Key(1)] public string WorkerId { get; set; } = "";
    /// <summary>Strictly increasing per worker, kept across its restarts (its outbox's sequence).</summary>
    [Key(2)] public long WorkerSequence { get; set; }
    [Key(3)] public string ModelId { get; set; } = "";
    [Key(4)] public string AdapterKind { get; set; } = "";
    [Key(5)] public string Task { get; set; } = "";
    /// <summary>RejectReasons.Name of the worker's refusal, or "" for an update that passed every check.</summary>
    [Key(6)] public string Refusal { get; set; } = "";
    [Key(7)] public string Detail { get; set; } = "";
    /// <summary>The device, when the message was authentic (its sequence number is then used up); "" otherwise.</summary>
    [Key(8)] public string DeviceId { get; set; } = "";
    [Key(9)] public long DeviceSequence { get; set; }
    [Key(10)] public long BaseVersion { get; set; }
    [Key(11)] public int SampleCount { get; set; }
    /// <summary>The device's TensorPayload, checked by the worker (empty when refused).</summary>
    [Key(12)] public byte[] Payload { get; set; } = [];
}
