namespace TinyTrain.Fleet.Aggregation;

using System.Security.Cryptography;
using TinyTrain.Fleet.Messages;
using TinyTrain.Fleet.Payload;

/// <summary>What became of one message offered to the aggregator.</summary>
public readonly record struct OfferResult(bool Accepted, RejectReason? Reason, string Detail, bool RoundClosed)
{
    /// <summary>The device whose sequence number this message used up (its receipt changed), or null.</summary>
    public string? Device { get; init; }
    /// <summary>For a partial: the worker that sent it (its receipt changed), or null when the partial was not authentic.</summary>
    public string? Worker { get; init; }
    /// <summary>For a partial: it was here already (a worker's resend); nothing changed but the worker's receipt is due again.</summary>
    public bool Duplicate { get; init; }
}

/// <summary>
/// The aggregator's logic, without transport: validates each signed update (size, signature, registered device, model,
/// sequence, staleness, shapes, finiteness), buffers accepted ones, and when the buffer is full combines them into the
/// next global adapter. Deterministic in its state and the messages offered, so a journal of messages replays it exactly.
/// As a merger it takes the same updates as partials from ingest workers (<see cref="OfferPartial"/>), which ran the
/// stateless checks; replay protection (a window per device, so out-of-order arrival is fine) and staleness stay here.
/// </summary>
public sealed class Aggregator
{
    private readonly ECDsa _signingKey;
    private readonly IReadOnlyDictionary<string, ECDsa> _workers;

    /// <param name="workers">Public keys of the ingest workers whose partials this aggregator merges (none: it takes updates only).</param>
    public Aggregator(FleetModel model, AggregatorOptions options, IReadOnlyDictionary<string, ECDsa> devices, ECDsa signingKey, AggregatorState state,
        IReadOnlyDictionary<string, ECDsa>? workers = null)
    {
        Model = model ?? throw new ArgumentNullException(nameof(model));
        Options = options ?? throw new ArgumentNullException(nameof(options));
        Validator = new UpdateValidator(model, devices ?? throw new ArgumentNullException(nameof(devices)), options.MaxMessageBytes);
        _signingKey = signingKey ?? throw new ArgumentNullException(nameof(signingKey));
        _workers = workers ?? new Dictionary<string, ECDsa>();
        State = state ?? throw new ArgumentNullException(nameof(state));
        if (State.Global.Length != model.Layout.TotalCount)
            throw new TinyTrainException($"the aggregator's saved global adapter has {State.Global.Length} values but model {model.ModelId} trains {model.Layout.TotalCount}; it was saved for another model: start with a fresh state directory");
        if (options.BufferSize < 1) throw new TinyTrainException($"the round buffer must hold at least 1 update, got {options.BufferSize}");
    }

    public FleetModel Model { get; }
    public AggregatorOptions Options { get; }
    public AggregatorState State { get; }
    public UpdateValidator Validator { get; }

    /// <summary>Largest partial a worker may send: the largest update plus room for the worker's envelope.</summary>
    public int MaxPartialBytes => Options.MaxMessageBytes + 4096;

    /// <summary>Heard about every refusal: reason and a line that says what was wrong.</summary>
    public Action<RejectReason, string>? Log { get; set; }

    public long Rejected(RejectReason reason) => State.Rejected.TryGetValue(RejectReasons.Name(reason), out long n) ? n : 0;

    /// <summary>A device's signed update, straight from the broker.</summary>
    public OfferResult Offer(ReadOnlyMemory<byte> message)
    {
        if (message.Length > Options.MaxMessageBytes) return RejectOversize(message.Length);
        ValidatedUpdate v = Validator.Validate(message);
        if (v.Update is not { } update) return Reject(v.Reason!.Value, v.Detail);
        return Admit(update.DeviceId, update.Sequence, update.BaseVersion, update.SampleCount, v.Delta, v.Reason, v.Detail);
    }

    /// <summary>
    /// A worker's signed partial: refused (and counted) when the worker is unknown, its signature fails, or it is for
    /// another model; taken once per worker sequence number (a resend is a <see cref="OfferResult.Duplicate"/>); then
    /// the device update it carries is decided exactly as <see cref="Offer"/> would have.
    /// </summary>
    public OfferResult OfferPartial(ReadOnlyMemory<byte> message)
    {
        if (message.Length > MaxPartialBytes) return Reject(RejectReason.Oversize, $"partial of {message.Length} bytes, the limit is {MaxPartialBytes}");
        if (!FleetSerializer.TryDeserialize(message, out SignedMessage signed))
            return Reject(RejectReason.Malformed, "partial is not a signed MessagePack message");
        if (signed.Signer is null || !_workers.TryGetValue(signed.Signer, out ECDsa? key))
            return Reject(RejectReason.UnknownWorker, $"worker '{signed.Signer}' is not registered with this merger");
        if (!signed.Verify(key))
            return Reject(RejectReason.BadWorkerSignature, $"signature of worker '{signed.Signer}' does not verify");
        if (!FleetSerializer.TryDeserialize(signed.Body, out PartialEnvelope partial) || partial.SchemaVersion != UpdateEnvelope.CurrentSchema)
            return Reject(RejectReason.Malformed, $"body from worker '{signed.Signer}' is not a partial this merger reads");
        if (partial.WorkerId != signed.Signer)
            return Reject(RejectReason.BadWorkerSignature, $"partial claims worker '{partial.WorkerId}' but is signed by '{signed.Signer}'");
        if (partial.ModelId != Model.ModelId || partial.AdapterKind != Model.AdapterKind || partial.Task != Model.Task)
            return Reject(RejectReason.OtherModel, $"worker '{partial.WorkerId}' sent {partial.ModelId}/{partial.AdapterKind}/{partial.Task}, this merger combines {Model.ModelId}/{Model.AdapterKind}/{Model.Task}");
        if (SequenceWindow.TryMark(State.WorkerThrough, State.WorkerAbove, partial.WorkerId, partial.WorkerSequence) is not null)
        {
            State.DuplicatePartials++;
            return new OfferResult(false, null, "", false) { Worker = partial.WorkerId, Duplicate = true };
        }
        OfferResult result;
        RejectReason? refusal = partial.Refusal.Length == 0 ? null : RejectReasons.Parse(partial.Refusal);
        if (partial.Refusal.Length > 0 && refusal is null)
            result = Reject(RejectReason.Malformed, $"worker '{partial.WorkerId}' refused for '{partial.Refusal}', a reason this merger does not know");
        else if (partial.DeviceId.Length == 0)
            result = refusal is { } r ? Reject(r, partial.Detail) : Reject(RejectReason.Malformed, $"worker '{partial.WorkerId}' sent an accepted partial without a device");
        else if (refusal is { } r2)
            result = Admit(partial.DeviceId, partial.DeviceSequence, partial.BaseVersion, partial.SampleCount, null, r2, partial.Detail);
        else
        {
            // The worker checked the payload; checked again here (cheap) so that a worker's bug cannot poison the global.
            (RejectReason? reason, string detail, float[]? delta) = Validator.CheckPayload(partial.DeviceId, partial.Payload, partial.SampleCount);
            result = Admit(partial.DeviceId, partial.DeviceSequence, partial.BaseVersion, partial.SampleCount, delta, reason, detail);
        }
        return result with { Worker = partial.WorkerId };
    }

    /// <summary>
    /// Decides an authentic update: its sequence number must be new for its device (then it is used up), its base
    /// version recent enough; a refusal found by the stateless checks is counted after that; otherwise it is buffered.
    /// </summary>
    private OfferResult Admit(string deviceId, long sequence, long baseVersion, int sampleCount, float[]? delta, RejectReason? refusal, string detail)
    {
        if (SequenceWindow.TryMark(State.LastSequence, State.SeenAbove, deviceId, sequence) is { } seen)
            return Reject(RejectReason.Replayed, $"'{deviceId}' {seen}");
        OfferResult result;
        long staleness = State.Version - baseVersion;
        if (staleness < 0 || staleness > Options.MaxStaleness)
            result = Reject(RejectReason.StaleVersion, $"'{deviceId}' built on version {baseVersion}, the global is {State.Version} (at most {Options.MaxStaleness} behind)");
        else if (refusal is not null || delta is null)
            result = Reject(refusal ?? RejectReason.Malformed, detail);
        else
        {
            State.Buffer.Add(new BufferedUpdate
            {
                DeviceId = deviceId,
                Sequence = sequence,
                BaseVersion = baseVersion,
                SampleCount = sampleCount,
                Delta = delta,
            });
            State.Accepted++;
            bool closed = State.Buffer.Count >= Options.BufferSize;
            if (closed) CloseRound();
            result = new OfferResult(true, null, "", closed);
        }
        return result with { Device = deviceId };
    }

    /// <summary>Counts a message too large to look at (the journal records only its length).</summary>
    public OfferResult RejectOversize(int length)
        => Reject(RejectReason.Oversize, UpdateValidator.OversizeDetail(length, Options.MaxMessageBytes));

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
    /// A signed receipt for <paramref name="deviceId"/>: every sequence number at or below its window's bottom and each
    /// one seen above it is decided for good (accepted or refused), or null when none of its updates has been seen.
    /// </summary>
    public byte[]? SignedReceipt(string deviceId) => Receipt(deviceId, deviceId, State.LastSequence, State.SeenAbove);

    /// <summary>Receipts go to workers on their own topic; "worker/" keeps them apart from any device's (a device id holds no '/').</summary>
    public const string WorkerReceiptPrefix = "worker/";

    /// <summary>A signed receipt for ingest worker <paramref name="workerId"/>: the partials this merger holds for good.</summary>
    public byte[]? SignedWorkerReceipt(string workerId) => Receipt(workerId, WorkerReceiptPrefix + workerId, State.WorkerThrough, State.WorkerAbove);

    private byte[]? Receipt(string sender, string recipient, Dictionary<string, long> through, Dictionary<string, List<long>> above)
    {
        long[] also = SequenceWindow.Above(above, sender);
        if (!through.TryGetValue(sender, out long sequence) && also.Length == 0) return null;
        var envelope = new ReceiptEnvelope
        {
            DeviceId = recipient,
            ModelId = Model.ModelId,
            AdapterKind = Model.AdapterKind,
            Task = Model.Task,
            Sequence = sequence,
            Also = also,
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
