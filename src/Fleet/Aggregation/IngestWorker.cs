namespace TinyTrain.Fleet.Aggregation;

using System.Buffers;
using System.Security.Cryptography;
using MQTTnet;
using TinyTrain.Fleet.Agent;
using TinyTrain.Fleet.Messages;
using TinyTrain.Fleet.Transport;

/// <summary>
/// One of several processes that share the devices' updates through a shared subscription ($share/{group}/...) and
/// hand them to the one merger, so that the fleet has one sequence of global adapters however many share the load. A
/// worker runs the checks that need no fleet state (size, device signature, registered device, model, shapes, finite
/// values, sample count: the CPU work, signatures above all), and turns every message it takes into one signed
/// partial: the verdict, and for an authentic update its device, sequence, base version, sample count and payload.
/// The partial goes to its outbox (on disk) before the broker's message is acknowledged, and stays there until the
/// merger's signed receipt covers it (the same <see cref="ReceiptedSender"/> a device uses); the merger journals it
/// before that, and only then receipts the device. So a worker killed at any point loses nothing: an unacknowledged
/// message is delivered again (the merger refuses the second copy as replayed), an unreceipted partial is sent again
/// after the restart (the merger takes each worker sequence number once).
/// </summary>
public sealed class IngestWorker : IAsyncDisposable
{
    private readonly FleetConnection _connection;
    private readonly ReceiptedSender _sender;
    private readonly UpdateValidator _validator;
    private readonly ECDsa _key;
    private volatile bool _abandoned;

    /// <param name="key">This worker's signing key (its public half registered with the merger).</param>
    /// <param name="mergerPublicKey">The aggregator key the merger signs receipts (and globals) with.</param>
    public IngestWorker(BrokerEndpoint broker, string workerId, FleetTopics topics, UpdateValidator validator, ECDsa key, ECDsa mergerPublicKey,
        string stateDirectory, string group = "aggregators")
    {
        WorkerId = FleetTopics.CheckName("worker id", workerId);
        Topics = topics ?? throw new ArgumentNullException(nameof(topics));
        _validator = validator ?? throw new ArgumentNullException(nameof(validator));
        _key = key ?? throw new ArgumentNullException(nameof(key));
        Group = FleetTopics.CheckName("aggregator group", group);
        _connection = new FleetConnection(broker, $"worker-{topics.Fleet}-{workerId}");
        _sender = new ReceiptedSender(_connection, new Outbox(Path.Combine(stateDirectory, "outbox")), Topics.Partial(WorkerId), Topics.PartialReceipt(WorkerId),
            Aggregator.WorkerReceiptPrefix + WorkerId, validator.Model, mergerPublicKey);
        _connection.Client.ApplicationMessageReceivedAsync += OnMessage;
        _connection.OnConnected = OnConnected;
    }

    public string WorkerId { get; }
    public FleetTopics Topics { get; }
    public string Group { get; }

    /// <summary>True when the broker granted the shared subscription; false when this worker subscribed alone (it then sees every update).</summary>
    public bool Shared { get; private set; }

    /// <summary>Device messages this process took (each became one partial).</summary>
    public long Handled { get; private set; }

    /// <summary>Partials waiting for the merger's receipt.</summary>
    public int Pending => _sender.Outbox.PendingCount;

    public int Receipted => _sender.Receipted;

    /// <summary>Connections to the broker lost so far (each one has the broker deliver again what was not acknowledged).</summary>
    public int Disconnects => _connection.Disconnects;

    /// <summary>Why the last connection was lost, or null.</summary>
    public string? LastDisconnect => _connection.LastDisconnect;

    /// <summary>Heard about every message this worker refused (the merger counts them for the fleet).</summary>
    public Action<RejectReason, string>? Log { get; set; }

    public async Task StartAsync(TimeSpan timeout, CancellationToken cancel = default)
    {
        await _connection.ConnectAsync(timeout, cancel).ConfigureAwait(false);
        _sender.Start();
    }

    private async Task OnConnected(bool sessionPresent)
    {
        Shared = _connection.SharedSubscriptionsAvailable && await _connection.SubscribeAsync(Topics.SharedUpdates(Group)).ConfigureAwait(false);
        if (!Shared && !await _connection.SubscribeAsync(Topics.Updates).ConfigureAwait(false))
            throw new TinyTrainException($"broker {_connection.Broker} refused the subscription to {Topics.Updates}");
        await _sender.OnConnectedAsync().ConfigureAwait(false);
    }

    private async Task OnMessage(MqttApplicationMessageReceivedEventArgs e)
    {
        string topic = e.ApplicationMessage.Topic;
        if (topic == Topics.PartialReceipt(WorkerId))
        {
            _sender.OnMessage(topic, e.ApplicationMessage.Payload.ToArray());
            return;
        }
        // Acknowledged below, after the partial is in the outbox on disk.
        e.AutoAcknowledge = false;
        if (_abandoned) return;
        ReadOnlySequence<byte> payload = e.ApplicationMessage.Payload;
        // An oversize message is refused before it is copied.
        byte[] message = payload.Length > _validator.MaxMessageBytes ? [] : payload.ToArray();
        int length = (int)Math.Min(payload.Length, int.MaxValue);
        _sender.Enqueue(sequence =>
        {
            PartialEnvelope partial = ToPartial(_validator, WorkerId, sequence, message, length);
            if (partial.Refusal.Length > 0) Log?.Invoke(RejectReasons.Parse(partial.Refusal)!.Value, partial.Detail);
            return SignedMessage.Sign(partial, WorkerId, _key);
        });
        Handled++;
        if (_abandoned) return;
        await e.AcknowledgeAsync(CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>
    /// The partial for one device message of <paramref name="length"/> bytes (<paramref name="message"/> may be empty
    /// when it is over the size limit): the validator's verdict, and for an authentic update what the merger needs.
    /// </summary>
    public static PartialEnvelope ToPartial(UpdateValidator validator, string workerId, long sequence, ReadOnlyMemory<byte> message, int length)
    {
        ArgumentNullException.ThrowIfNull(validator);
        ValidatedUpdate v = length > validator.MaxMessageBytes
            ? new ValidatedUpdate(RejectReason.Oversize, UpdateValidator.OversizeDetail(length, validator.MaxMessageBytes), null, null)
            : validator.Validate(message);
        var partial = new PartialEnvelope
        {
            WorkerId = workerId,
            WorkerSequence = sequence,
            ModelId = validator.Model.ModelId,
            AdapterKind = validator.Model.AdapterKind,
            Task = validator.Model.Task,
            Refusal = v.Reason is { } r ? RejectReasons.Name(r) : "",
            Detail = v.Detail,
        };
        if (v.Update is { } update)
        {
            partial.DeviceId = update.DeviceId;
            partial.DeviceSequence = update.Sequence;
            partial.BaseVersion = update.BaseVersion;
            partial.SampleCount = update.SampleCount;
            if (v.Reason is null) partial.Payload = update.Payload;
        }
        return partial;
    }

    /// <summary>
    /// For tests and benchmarks: stops as a killed process would: nothing more is written or acknowledged, the
    /// connection is dropped without a DISCONNECT. The broker keeps the session; the outbox stays on disk.
    /// </summary>
    public void Abandon()
    {
        _abandoned = true;
        _connection.Abandon();
        _ = _sender.DisposeAsync().AsTask();
    }

    public async ValueTask DisposeAsync()
    {
        if (_abandoned) return;
        await _sender.DisposeAsync().ConfigureAwait(false);
        await _connection.DisposeAsync().ConfigureAwait(false);
    }
}
