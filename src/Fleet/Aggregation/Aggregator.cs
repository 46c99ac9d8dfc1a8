namespace TinyTrain.Fleet.Aggregation;

using System.Security.Cryptography;
using TinyTrain.Fleet.Messages;
using TinyTrain.Fleet.Payload;

/// <summary>What became of one message offered to the aggregator.</summary>
public readonly record struct OfferResult(bool Accepted, RejectReason? Reason, string Detail, bool RoundClosed);

/// <summary>
/// The aggregator's logic, without transport: validates each signed update (size, signature, registered device, model,
/// sequence, staleness, shapes, finiteness), buffers accepted ones, and when the buffer is full combines them into the
/// next global adapter. Deterministic in its state and the messages offered, so a journal of messages replays it exactly.
/// </summary>
public sealed class Aggregator
{
    private readonly IReadOnlyDictionary<string, ECDsa> _devices;
    private readonly ECDsa _signingKey;

    public Aggregator(FleetModel model, AggregatorOptions options, IReadOnlyDictionary<string, ECDsa> devices, ECDsa signingKey, AggregatorState state)
    {
        Model = model ?? throw new ArgumentNullException(nameof(model));
        Options = options ?? throw new ArgumentNullException(nameof(options));
        _devices = devices ?? throw new ArgumentNullException(nameof(devices));
        _signingKey = signingKey ?? throw new ArgumentNullException(nameof(signingKey));
        State = state ?? throw new ArgumentNullException(nameof(state));
        if (State.Global.Length != model.Layout.TotalCount)
            throw new TinyTrainException($"the aggregator's saved global adapter has {State.Global.Length} values but model {model.ModelId} trains {model.Layout.TotalCount}; it was saved for another model: start with a fresh state directory");
        if (options.BufferSize < 1) throw new TinyTrainException($"the round buffer must hold at least 1 update, got {options.BufferSize}");
    }

    public FleetModel Model { get; }
    public AggregatorOptions Options { get; }
    public AggregatorState State { get; }

    /// <summary>Heard about every refusal: reason and a line that says what was wrong.</summary>
    public Action<RejectReason, string>? Log { get; set; }

    public long Rejected(RejectReason reason) => State.Rejected.TryGetValue(RejectReasons.Name(reason), out long n) ? n : 0;

    public OfferResult Offer(ReadOnlyMemory<byte> message)
    {
        if (message.Length > Options.MaxMessageBytes) return RejectOversize(message.Length);
        if (!FleetSerializer.TryDeserialize(message, out SignedMessage signed))
            return Reject(RejectReason.Malformed, "not a signed MessagePack message");
        if (signed.Signer is null || !_devices.TryGetValue(signed.Signer, out ECDsa? key))
            return Reject(RejectReason.UnknownDevice, $"device '{signed.Signer}' is not registered");
        if (!signed.Verify(key))
            return Reject(RejectReason.BadSignature, $"signature of '{signed.Signer}' does not verify");
        if (!FleetSerializer.TryDeserialize(signed.Body, out UpdateEnvelope update))
            return Reject(RejectReason.Malformed, $"body from '{signed.Signer}' is not an update envelope");
        if (update.DeviceId != signed.Signer)
            return Reject(RejectReason.BadSignature, $"update claims device '{update.DeviceId}' but is signed by '{signed.Signer}'");
        if (update.SchemaVersion != UpdateEnvelope.CurrentSchema)
            return Reject(RejectReason.Malformed, $"schema version {update.SchemaVersion} from '{update.DeviceId}'; this aggregator reads {UpdateEnvelope.CurrentSchema}");
        if (update.ModelId != Model.ModelId || update.AdapterKind != Model.AdapterKind || update.Task != Model.Task)
            return Reject(RejectReason.OtherModel, $"'{update.DeviceId}' sent {update.ModelId}/{update.AdapterKind}/{update.Task}, this aggregator combines {Model.ModelId}/{Model.AdapterKind}/{Model.Task}");

        // From here the message is authentic: its sequence number is used up whatever happens next.
        if (State.LastSequence.TryGetValue(update.DeviceId, out long last) && update.Sequence <= last)
            return Reject(RejectReason.Replayed, $"'{update.DeviceId}' sequence {update.Sequence}, already seen up to {last}");
        State.LastSequence[update.DeviceId] = update.Sequence;

        long staleness = State.Version - update.BaseVersion;
        if (staleness < 0 || staleness > Options.MaxStaleness)
            return Reject(RejectReason.StaleVersion, $"'{update.DeviceId}' built on version {update.BaseVersion}, the global is {State.Version} (at most {Options.MaxStaleness} behind)");
        if (!FleetSerializer.TryDeserialize(update.Payload, out TensorPayload payload) || !payload.Matches(Model.Layout))
            return Reject(RejectReason.WrongShape, $"'{update.DeviceId}' payload does not have the tensors {Model.Describe()}");
        if (!payload.IsFinite())
            return Reject(RejectReason.NonFinite, $"'{update.DeviceId}' payload holds NaN or infinity");
        if (update.SampleCount <= 0)
            return Reject(RejectReason.Malformed, $"'{update.DeviceId}' reports {update.SampleCount} samples");

        State.Buffer.Add(new BufferedUpdate
        {
            DeviceId = update.DeviceId,
            Sequence = update.Sequence,
            BaseVersion = update.BaseVersion,
            SampleCount = update.SampleCount,
            Delta = payload.Decode(),
        });
        State.Accepted++;
        bool closed = State.Buffer.Count >= Options.BufferSize;
        if (closed) CloseRound();
        return new OfferResult(true, null, "", closed);
    }

    /// <summary>Counts a message too large to look at (the journal records only its length).</summary>
    public OfferResult RejectOversize(int length)
        => Reject(RejectReason.Oversize, $"{length} bytes, the limit is {Options.MaxMessageBytes}");

    /// <summary>Combines whatever is buffered into the next version (also called when a simulation ends a round early).</summary>
    public void CloseRound()
    {
        List<BufferedUpdate> buffer = State.Buffer;
        if (buffer.Count == 0) return;
        var deltas = new float[buffer.Count][];
        var weights = new double[buffer.Count];
        for (int i = 0; i < buffer.Count; i++)
        {
            deltas[i] = buffer[i].Delta;
            weights[i] = buffer[i].SampleCount * AggregationMath.StalenessWeight(State.Version - buffer[i].BaseVersion, Options.StalenessAlpha);
        }
        if (Options.ClipNorm != 0)
        {
            double clip = Options.ClipNorm > 0 ? Options.ClipNorm : AggregationMath.MedianNorm(deltas);
            if (clip > 0)
                for (int i = 0; i < deltas.Length; i++) deltas[i] = AggregationMath.ClipToNorm(deltas[i], clip);
        }
        float[] combined = Options.Mode switch
        {
            AggregationMode.TrimmedMean => AggregationMath.TrimmedMean(deltas, Options.TrimFraction),
            AggregationMode.Median => AggregationMath.Median(deltas),
            _ => AggregationMath.WeightedMean(deltas, weights),
        };
        float[] global = State.Global;
        for (int j = 0; j < global.Length; j++) global[j] += Options.ServerLearningRate * combined[j];
        foreach (BufferedUpdate u in buffer)
        {
            State.Aggregated.Add($"{u.DeviceId}:{u.Sequence}");
            State.SampleCount += u.SampleCount;
        }
        State.Version++;
        LastRoundContributors = buffer.Count;
        buffer.Clear();
    }

    /// <summary>Updates combined into the current version.</summary>
    public int LastRoundContributors { get; private set; }

    /// <summary>The current global adapter as a signed, retained-ready message.</summary>
    public byte[] SignedGlobal()
    {
        var envelope = new GlobalEnvelope
        {
            ModelId = Model.ModelId,
            AdapterKind = Model.AdapterKind,
            Task = Model.Task,
            Version = State.Version,
            Contributors = LastRoundContributors,
            SampleCount = State.SampleCount,
            Payload = Model.ToPack(State.Global, State.Version, State.SampleCount).Serialize(),
        };
        return SignedMessage.Sign(envelope, FleetModel.AggregatorSigner, _signingKey);
    }

    /// <summary>
    /// A signed receipt for <paramref name="deviceId"/>: the highest of its sequence numbers decided so far (everything
    /// at or below it is accepted or refused for good), or null when none of its updates has been seen.
    /// </summary>
    public byte[]? SignedReceipt(string deviceId)
    {
        if (!State.LastSequence.TryGetValue(deviceId, out long sequence)) return null;
        var envelope = new ReceiptEnvelope
        {
            DeviceId = deviceId,
            ModelId = Model.ModelId,
            AdapterKind = Model.AdapterKind,
            Task = Model.Task,
            Sequence = sequence,
        };
        return SignedMessage.Sign(envelope, FleetModel.AggregatorSigner, _signingKey);
    }

    private OfferResult Reject(RejectReason reason, string detail)
    {
        string name = RejectReasons.Name(reason);
        State.Rejected[name] = (State.Rejected.TryGetValue(name, out long n) ? n : 0) + 1;
        Log?.Invoke(reason, detail);
        return new OfferResult(false, reason, detail, false);
    }
}
