namespace TinyTrain.Fleet.Agent;

using System.Security.Cryptography;
using System.Buffers;
using MQTTnet;
using TinyTrain.Adapters.Packs;
using TinyTrain.Fleet.Messages;
using TinyTrain.Fleet.Payload;
using TinyTrain.Fleet.Transport;

/// <summary>Why a global adapter was not applied (the previous one stays).</summary>
public enum GlobalRefusal
{
    Malformed,
    BadSignature,
    OtherModel,
    WrongShape,
}

/// <summary>Why a receipt was not used (the outbox keeps what it holds).</summary>
public enum ReceiptRefusal
{
    Malformed,
    BadSignature,
    OtherDevice,
    OtherModel,
}

/// <summary>
/// The fleet side of one device: sends its updates from a persisted outbox and keeps each one until a receipt signed
/// by the aggregator covers it (a broker's PUBACK is not enough: it can acknowledge and then lose the message); what is
/// not receipted is sent again after every reconnect and after <see cref="ResendAfter"/>. Receives the retained global
/// adapter, verifies it (aggregator's signature, model, shapes, finite values, newer version) and stages it; <see cref="TryApplyGlobal"/> then copies it into the runtime's
/// params at a step boundary, in one piece. A global that fails any check is counted and dropped: the one in use stays.
/// </summary>
public sealed class DeviceAgent : IAsyncDisposable
{
    private readonly ECDsa _key;
    private readonly ECDsa _aggregatorKey;
    private readonly FleetConnection _connection;
    private readonly Outbox _outbox;
    private readonly string _globalPath;
    private readonly SemaphoreSlim _sending = new(1, 1);
    private readonly object _staged = new();
    private (long Version, float[] Values)? _pending;
    private readonly Dictionary<GlobalRefusal, int> _refused = [];
    private readonly Dictionary<ReceiptRefusal, int> _receiptsRefused = [];
    /// <summary>Sequence -> when the broker last acknowledged it on this connection (cleared at every connect: all goes again).</summary>
    private readonly Dictionary<long, DateTime> _acknowledgedAt = [];
    private readonly HashSet<long> _acknowledged = [];
    private long _receiptedThrough;

    /// <param name="clientPrefix">MQTT client ids are "{prefix}-{device}": one persistent session per device and fleet.</param>
    public DeviceAgent(string deviceId, ECDsa key, ECDsa aggregatorPublicKey, FleetModel model, FleetTopics topics, BrokerEndpoint broker, string stateDirectory,
        string clientPrefix = "device")
    {
        DeviceId = FleetTopics.CheckName("device id", deviceId);
        _key = key ?? throw new ArgumentNullException(nameof(key));
        _aggregatorKey = aggregatorPublicKey ?? throw new ArgumentNullException(nameof(aggregatorPublicKey));
        Model = model ?? throw new ArgumentNullException(nameof(model));
        Topics = topics ?? throw new ArgumentNullException(nameof(topics));
        Directory.CreateDirectory(stateDirectory);
        _outbox = new Outbox(Path.Combine(stateDirectory, "outbox"));
        _globalPath = Path.Combine(stateDirectory, "global.msg");
        _connection = new FleetConnection(broker, clientPrefix + "-" + deviceId);
        _connection.Client.ApplicationMessageReceivedAsync += OnMessage;
        _connection.OnConnected = async sessionPresent =>
        {
            var receiptArrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Volatile.Write(ref _receiptArrived, receiptArrived);
            await _connection.SubscribeAsync(Topics.Global).ConfigureAwait(false);
            await _connection.SubscribeAsync(Topics.Receipt(DeviceId)).ConfigureAwait(false);
            // The broker may have restarted and lost what it acknowledged: everything not receipted goes again,
            // after the retained receipt (delivered right after the subscription) has had its moment to clear
            // what the aggregator already holds. A resend it misses is refused as replayed, never applied twice.
            lock (_acknowledgedAt) _acknowledgedAt.Clear();
            _ = FlushAfterReceiptAsync(receiptArrived.Task);
        };
        // The last global this device verified and applied survives a reboot.
        if (File.Exists(_globalPath)) Receive(File.ReadAllBytes(_globalPath), persist: false);
    }

    private TaskCompletionSource? _receiptArrived;

    /// <summary>How long a reconnect waits for the retained receipt before it resends the outbox.</summary>
    public TimeSpan ReceiptGrace { get; set; } = TimeSpan.FromSeconds(1);

    private async Task FlushAfterReceiptAsync(Task receiptArrived)
    {
        if (_outbox.PendingSequences().Length > 0) await Task.WhenAny(receiptArrived, Task.Delay(ReceiptGrace)).ConfigureAwait(false);
        await FlushAsync().ConfigureAwait(false);
    }

    public string DeviceId { get; }
    public FleetModel Model { get; }
    public FleetTopics Topics { get; }
    public Outbox Outbox => _outbox;
    public bool IsConnected => _connection.IsConnected;

    /// <summary>The version of the global adapter in use (0: the plan's own parameters).</summary>
    public long GlobalVersion { get; private set; }

    /// <summary>Bytes of update messages handed to the broker.</summary>
    public long BytesSent { get; private set; }

    public int Refused(GlobalRefusal reason) { lock (_staged) return _refused.TryGetValue(reason, out int n) ? n : 0; }

    public int Refused(ReceiptRefusal reason) { lock (_acknowledgedAt) return _receiptsRefused.TryGetValue(reason, out int n) ? n : 0; }

    /// <summary>How long an update the broker acknowledged waits for its receipt before it is sent again.</summary>
    public TimeSpan ResendAfter { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Updates of this process the broker acknowledged (PUBACK) at least once.</summary>
    public int Acknowledged { get; private set; }

    /// <summary>Updates removed from the outbox by a verified receipt.</summary>
    public int Receipted { get; private set; }

    /// <summary>The highest sequence number a verified receipt covered.</summary>
    public long ReceiptedThrough { get { lock (_acknowledgedAt) return _receiptedThrough; } }

    public async Task StartAsync(TimeSpan timeout, CancellationToken cancel = default)
    {
        await _connection.ConnectAsync(timeout, cancel).ConfigureAwait(false);
        _retry ??= Task.Run(RetryLoop);
    }

    /// <summary>Resends what the outbox still holds every half second while connected: a send that failed is never left behind.</summary>
    private async Task RetryLoop()
    {
        while (!_stopping.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(500, _stopping.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            if (_connection.IsConnected && AnyDue()) await FlushAsync().ConfigureAwait(false);
        }
    }

    private readonly CancellationTokenSource _stopping = new();
    private Task? _retry;

    /// <summary>Signs an update (delta from the global in use), puts it in the outbox, and sends what the outbox holds.</summary>
    /// <param name="baseVersion">The global version the delta was computed against; default the one in use now.</param>
    public async Task<long> PublishUpdateAsync(float[] delta, int sampleCount, IReadOnlyDictionary<string, float>? metrics = null,
        Func<UpdateEnvelope, UpdateEnvelope>? tamper = null, long? baseVersion = null)
    {
        ArgumentNullException.ThrowIfNull(delta);
        long sequence = _outbox.TakeSequence();
        var envelope = new UpdateEnvelope
        {
            DeviceId = DeviceId,
            ModelId = Model.ModelId,
            AdapterKind = Model.AdapterKind,
            Task = Model.Task,
            BaseVersion = baseVersion ?? GlobalVersion,
            SampleCount = sampleCount,
            Sequence = sequence,
            Metrics = metrics is null ? [] : new Dictionary<string, float>(metrics),
            Payload = FleetSerializer.Serialize(TensorPayload.Encode(Model.Layout, delta)),
        };
        if (tamper is not null) envelope = tamper(envelope);
        _outbox.Add(sequence, SignedMessage.Sign(envelope, DeviceId, _key));
        await FlushAsync().ConfigureAwait(false);
        return sequence;
    }

    /// <summary>Whether some outbox message was never acknowledged on this connection, or waited past <see cref="ResendAfter"/> for its receipt.</summary>
    private bool AnyDue()
    {
        DateTime now = DateTime.UtcNow;
        lock (_acknowledgedAt)
            foreach (long sequence in _outbox.PendingSequences())
                if (!_acknowledgedAt.TryGetValue(sequence, out DateTime at) || now - at >= ResendAfter) return true;
        return false;
    }

    /// <summary>
    /// Sends, in order, every outbox message not yet acknowledged on this connection or whose receipt is overdue;
    /// stops at the first the broker does not take. Messages stay in the outbox until a receipt covers them.
    /// </summary>
    public async Task<int> FlushAsync()
    {
        await _sending.WaitAsync().ConfigureAwait(false);
        try
        {
            int sent = 0;
            if (!_connection.IsConnected) return 0;
            foreach ((long sequence, byte[] message) in _outbox.Pending())
            {
                lock (_acknowledgedAt)
                    if (sequence <= _receiptedThrough || (_acknowledgedAt.TryGetValue(sequence, out DateTime at) && DateTime.UtcNow - at < ResendAfter)) continue;
                if (!await _connection.PublishAsync(Topics.Update(DeviceId), message).ConfigureAwait(false)) break;
                lock (_acknowledgedAt)
                {
                    _acknowledgedAt[sequence] = DateTime.UtcNow;
                    if (sequence > _receiptedThrough && _acknowledged.Add(sequence)) Acknowledged++;
                }
                BytesSent += message.Length;
                sent++;
            }
            return sent;
        }
        finally
        {
            _sending.Release();
        }
    }

    public Task PublishTelemetryAsync(float accuracy, float oodRate, int sramHighWater, int samples)
    {
        var telemetry = new TelemetryEnvelope
        {
            DeviceId = DeviceId,
            ModelId = Model.ModelId,
            GlobalVersion = GlobalVersion,
            AccuracyEstimate = accuracy,
            OodRate = oodRate,
            SramHighWaterBytes = sramHighWater,
            Samples = samples,
        };
        return _connection.PublishAsync(Topics.Telemetry(DeviceId), SignedMessage.Sign(telemetry, DeviceId, _key));
    }

    private Task OnMessage(MqttApplicationMessageReceivedEventArgs e)
    {
        if (e.ApplicationMessage.Topic == Topics.Global) Receive(e.ApplicationMessage.Payload.ToArray(), persist: true);
        else if (e.ApplicationMessage.Topic == Topics.Receipt(DeviceId))
        {
            ReceiveReceipt(e.ApplicationMessage.Payload.ToArray());
            Volatile.Read(ref _receiptArrived)?.TrySetResult();
        }
        return Task.CompletedTask;
    }

    /// <summary>
    /// Verifies a receipt (aggregator's signature, this device, this model) and drops the outbox messages it covers;
    /// false (counted by reason, outbox untouched) when it must not be trusted.
    /// </summary>
    public bool ReceiveReceipt(byte[] message)
    {
        ReceiptRefusal? refusal = CheckReceipt(message, out long sequence);
        lock (_acknowledgedAt)
        {
            if (refusal is { } r)
            {
                _receiptsRefused[r] = (_receiptsRefused.TryGetValue(r, out int n) ? n : 0) + 1;
                return false;
            }
            if (sequence <= _receiptedThrough) return true;
            _receiptedThrough = sequence;
            Receipted += _outbox.RemoveThrough(sequence);
            foreach (long s in _acknowledgedAt.Keys.Where(s => s <= sequence).ToList()) _acknowledgedAt.Remove(s);
            _acknowledged.RemoveWhere(s => s <= sequence);
        }
        return true;
    }

    private ReceiptRefusal? CheckReceipt(byte[] message, out long sequence)
    {
        sequence = 0;
        if (!FleetSerializer.TryDeserialize(message, out SignedMessage signed)) return ReceiptRefusal.Malformed;
        if (signed.Signer != FleetModel.AggregatorSigner || !signed.Verify(_aggregatorKey)) return ReceiptRefusal.BadSignature;
        if (!FleetSerializer.TryDeserialize(signed.Body, out ReceiptEnvelope receipt) || receipt.SchemaVersion != UpdateEnvelope.CurrentSchema) return ReceiptRefusal.Malformed;
        if (receipt.DeviceId != DeviceId) return ReceiptRefusal.OtherDevice;
        if (receipt.ModelId != Model.ModelId || receipt.AdapterKind != Model.AdapterKind || receipt.Task != Model.Task) return ReceiptRefusal.OtherModel;
        sequence = receipt.Sequence;
        return null;
    }

    /// <summary>Verifies a global adapter message and stages it; false (counted by reason) when it must not be used.</summary>
    public bool Receive(byte[] message, bool persist)
    {
        GlobalRefusal? refusal = Check(message, out long version, out float[] values);
        lock (_staged)
        {
            if (refusal is { } r)
            {
                _refused[r] = (_refused.TryGetValue(r, out int n) ? n : 0) + 1;
                return false;
            }
            if (version <= (_pending?.Version ?? GlobalVersion)) return false;
            _pending = (version, values);
        }
        if (persist) Outbox.WriteAtomically(_globalPath, message);
        return true;
    }

    private GlobalRefusal? Check(byte[] message, out long version, out float[] values)
    {
        version = 0;
        values = [];
        if (!FleetSerializer.TryDeserialize(message, out SignedMessage signed)) return GlobalRefusal.Malformed;
        if (signed.Signer != FleetModel.AggregatorSigner || !signed.Verify(_aggregatorKey)) return GlobalRefusal.BadSignature;
        if (!FleetSerializer.TryDeserialize(signed.Body, out GlobalEnvelope global) || global.SchemaVersion != UpdateEnvelope.CurrentSchema) return GlobalRefusal.Malformed;
        if (global.ModelId != Model.ModelId || global.AdapterKind != Model.AdapterKind || global.Task != Model.Task) return GlobalRefusal.OtherModel;
        AdapterPack pack;
        try
        {
            pack = AdapterPack.Deserialize(global.Payload, $"global adapter {global.Version}");
        }
        catch (TinyTrainException)
        {
            return GlobalRefusal.Malformed;
        }
        if (pack.Identity != Model.ModelId || pack.Kind != Model.AdapterKind || pack.Task != Model.Task) return GlobalRefusal.OtherModel;
        if (Model.FromPack(pack, out values) is not null) return GlobalRefusal.WrongShape;
        version = global.Version;
        return null;
    }

    /// <summary>
    /// Applies the staged global adapter, if any, to <paramref name="parameters"/> (the runtime's Params) in one copy,
    /// at a step boundary. Returns the values applied, or null when nothing newer was staged.
    /// </summary>
    public float[]? TryApplyGlobal(byte[] parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        (long Version, float[] Values) staged;
        lock (_staged)
        {
            if (_pending is not { } p) return null;
            staged = p;
            _pending = null;
        }
        var candidate = (byte[])parameters.Clone();
        Model.Layout.Write(staged.Values, candidate);
        Buffer.BlockCopy(candidate, 0, parameters, 0, candidate.Length);
        GlobalVersion = staged.Version;
        return staged.Values;
    }

    /// <summary>Whether a newer verified global is waiting.</summary>
    public long? StagedVersion { get { lock (_staged) return _pending?.Version; } }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_retry is not null) await _retry.ConfigureAwait(false);
        _stopping.Dispose();
        await _connection.DisposeAsync().ConfigureAwait(false);
        _sending.Dispose();
    }
}
