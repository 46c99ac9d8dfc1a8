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
    private readonly ReceiptedSender _sender;
    private readonly string _globalPath;
    private readonly object _staged = new();
    private (long Version, float[] Values)? _pending;
    private readonly Dictionary<GlobalRefusal, int> _refused = [];

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
        _globalPath = Path.Combine(stateDirectory, "global.msg");
        _connection = new FleetConnection(broker, clientPrefix + "-" + deviceId);
        _sender = new ReceiptedSender(_connection, new Outbox(Path.Combine(stateDirectory, "outbox")), Topics.Update(DeviceId), Topics.Receipt(DeviceId),
            DeviceId, Model, _aggregatorKey);
        _connection.Client.ApplicationMessageReceivedAsync += OnMessage;
        _connection.OnConnected = async sessionPresent =>
        {
            await _connection.SubscribeAsync(Topics.Global).ConfigureAwait(false);
            await _sender.OnConnectedAsync().ConfigureAwait(false);
        };
        // The last global this device verified and applied survives a reboot.
        if (File.Exists(_globalPath)) Receive(File.ReadAllBytes(_globalPath), persist: false);
    }

    /// <summary>How long a reconnect waits for the retained receipt before it resends the outbox.</summary>
    public TimeSpan ReceiptGrace { get => _sender.ReceiptGrace; set => _sender.ReceiptGrace = value; }

    public string DeviceId { get; }
    public FleetModel Model { get; }
    public FleetTopics Topics { get; }
    public Outbox Outbox => _sender.Outbox;
    public bool IsConnected => _connection.IsConnected;

    /// <summary>The version of the global adapter in use (0: the plan's own parameters).</summary>
    public long GlobalVersion { get; private set; }

    /// <summary>Bytes of update messages handed to the broker.</summary>
    public long BytesSent => _sender.BytesSent;

    public int Refused(GlobalRefusal reason) { lock (_staged) return _refused.TryGetValue(reason, out int n) ? n : 0; }

    public int Refused(ReceiptRefusal reason) => _sender.Refused(reason);

    /// <summary>How long an update the broker acknowledged waits for its receipt before it is sent again.</summary>
    public TimeSpan ResendAfter { get => _sender.ResendAfter; set => _sender.ResendAfter = value; }

    /// <summary>Updates of this process the broker acknowledged (PUBACK) at least once.</summary>
    public int Acknowledged => _sender.Acknowledged;

    /// <summary>Updates removed from the outbox by a verified receipt.</summary>
    public int Receipted => _sender.Receipted;

    /// <summary>The highest sequence number a verified receipt covered.</summary>
    public long ReceiptedThrough => _sender.ReceiptedThrough;

    public async Task StartAsync(TimeSpan timeout, CancellationToken cancel = default)
    {
        await _connection.ConnectAsync(timeout, cancel).ConfigureAwait(false);
        _sender.Start();
    }

    /// <summary>Signs an update (delta from the global in use), puts it in the outbox, and sends what the outbox holds.</summary>
    /// <param name="baseVersion">The global version the delta was computed against; default the one in use now.</param>
    public async Task<long> PublishUpdateAsync(float[] delta, int sampleCount, IReadOnlyDictionary<string, float>? metrics = null,
        Func<UpdateEnvelope, UpdateEnvelope>? tamper = null, long? baseVersion = null)
    {
        ArgumentNullException.ThrowIfNull(delta);
        long baseline = baseVersion ?? GlobalVersion;
        byte[] payload = FleetSerializer.Serialize(TensorPayload.Encode(Model.Layout, delta));
        return await _sender.SendAsync(sequence =>
        {
            var envelope = new UpdateEnvelope
            {
                DeviceId = DeviceId,
                ModelId = Model.ModelId,
                AdapterKind = Model.AdapterKind,
                Task = Model.Task,
                BaseVersion = baseline,
                SampleCount = sampleCount,
                Sequence = sequence,
                Metrics = metrics is null ? [] : new Dictionary<string, float>(metrics),
                Payload = payload,
            };
            if (tamper is not null) envelope = tamper(envelope);
            return SignedMessage.Sign(envelope, DeviceId, _key);
        }).ConfigureAwait(false);
    }

    /// <summary>Sends every outbox message not yet acknowledged on this connection or whose receipt is overdue (ReceiptedSender.FlushAsync).</summary>
    public Task<int> FlushAsync() => _sender.FlushAsync();

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
        else _sender.OnMessage(e.ApplicationMessage.Topic, e.ApplicationMessage.Payload.ToArray());
        return Task.CompletedTask;
    }

    /// <summary>Verifies a receipt and drops the outbox messages it covers (ReceiptedSender.ReceiveReceipt).</summary>
    public bool ReceiveReceipt(byte[] message) => _sender.ReceiveReceipt(message);

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
        await _sender.DisposeAsync().ConfigureAwait(false);
        await _connection.DisposeAsync().ConfigureAwait(false);
    }
}
