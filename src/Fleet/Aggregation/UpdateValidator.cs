namespace TinyTrain.Fleet.Aggregation;

using System.Security.Cryptography;
using TinyTrain.Fleet.Messages;
using TinyTrain.Fleet.Payload;

/// <summary>
/// The verdict on one device message from the checks that need no fleet state. <see cref="Update"/> is set when the
/// message is authentic (its device's signature verifies, for this model), so its sequence number counts as used
/// even when <see cref="Reason"/> refuses it; <see cref="Delta"/> is set when it passed everything.
/// </summary>
public sealed record ValidatedUpdate(RejectReason? Reason, string Detail, UpdateEnvelope? Update, float[]? Delta);

/// <summary>
/// The stateless checks of a device's update, in order: size, signed MessagePack, registered device, signature, schema,
/// model; then (the message is authentic) shapes, finite values, sample count. Shared by the aggregator and the ingest
/// workers, which run them before the merger decides replay and staleness.
/// </summary>
public sealed class UpdateValidator(FleetModel model, IReadOnlyDictionary<string, ECDsa> devices, int maxMessageBytes)
{
    public FleetModel Model { get; } = model ?? throw new ArgumentNullException(nameof(model));
    public int MaxMessageBytes { get; } = maxMessageBytes;

    public static string OversizeDetail(int length, int maxMessageBytes) => $"{length} bytes, the limit is {maxMessageBytes}";

    public ValidatedUpdate Validate(ReadOnlyMemory<byte> message)
    {
        if (message.Length > MaxMessageBytes) return Refuse(RejectReason.Oversize, OversizeDetail(message.Length, MaxMessageBytes));
        if (!FleetSerializer.TryDeserialize(message, out SignedMessage signed))
            return Refuse(RejectReason.Malformed, "not a signed MessagePack message");
        if (signed.Signer is null || !devices.TryGetValue(signed.Signer, out ECDsa? key))
            return Refuse(RejectReason.UnknownDevice, $"device '{signed.Signer}' is not registered");
        if (!signed.Verify(key))
            return Refuse(RejectReason.BadSignature, $"signature of '{signed.Signer}' does not verify");
        if (!FleetSerializer.TryDeserialize(signed.Body, out UpdateEnvelope update))
            return Refuse(RejectReason.Malformed, $"body from '{signed.Signer}' is not an update envelope");
        if (update.DeviceId != signed.Signer)
            return Refuse(RejectReason.BadSignature, $"update claims device '{update.DeviceId}' but is signed by '{signed.Signer}'");
        if (update.SchemaVersion != UpdateEnvelope.CurrentSchema)
            return Refuse(RejectReason.Malformed, $"schema version {update.SchemaVersion} from '{update.DeviceId}'; this aggregator reads {UpdateEnvelope.CurrentSchema}");
        if (update.ModelId != Model.ModelId || update.AdapterKind != Model.AdapterKind || update.Task != Model.Task)
            return Refuse(RejectReason.OtherModel, $"'{update.DeviceId}' sent {update.ModelId}/{update.AdapterKind}/{update.Task}, this aggregator combines {Model.ModelId}/{Model.AdapterKind}/{Model.Task}");
        // From here the message is authentic: its sequence number is used up whatever happens next.
        (RejectReason? reason, string detail, float[]? delta) = CheckPayload(update.DeviceId, update.Payload, update.SampleCount);
        return new ValidatedUpdate(reason, detail, update, delta);
    }

    /// <summary>Shapes, finite values and sample count of an authentic update's payload; the decoded delta when all pass.</summary>
    public (RejectReason? Reason, string Detail, float[]? Delta) CheckPayload(string deviceId, byte[] payloadBytes, int sampleCount)
    {
        if (!FleetSerializer.TryDeserialize(payloadBytes, out TensorPayload payload) || !payload.Matches(Model.Layout))
            return (RejectReason.WrongShape, $"'{deviceId}' payload does not have the tensors {Model.Describe()}", null);
        if (!payload.IsFinite())
            return (RejectReason.NonFinite, $"'{deviceId}' payload holds NaN or infinity", null);
        if (sampleCount <= 0)
            return (RejectReason.Malformed, $"'{deviceId}' reports {sampleCount} samples", null);
        return (null, "", payload.Decode());
    }

    private static ValidatedUpdate Refuse(RejectReason reason, string detail) => new(reason, detail, null, null);
}
