namespace TinyTrain.Fleet.Aggregation;

using System.Buffers;
using System.Security.Cryptography;
using System.Threading.Channels;
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
    /// <param name="timeout">How long an operation waits for the broker; <see cref="FleetConnection.BulkTimeout"/> when null.</param>
    public IngestWorker(BrokerEndpoint broker, string workerId, FleetTopics topics, UpdateValidator validator, ECDsa key, ECDsa mergerPublicKey,
        string stateDirectory, string group = "aggregators", TimeSpan? timeout = null)
    {
        WorkerId = FleetTopics.CheckName("worker id", workerId);
        Topics = topics ?? throw new ArgumentNullException(nameof(topics));
        _validator = validator ?? throw new ArgumentNullException(nameof(validator));
        _key = key ?? throw new ArgumentNullException(nameof(key));
        Group = FleetTopics.CheckName("aggregator group", group);
        _connection = new FleetConnection(broker, $"worker-{topics.Fleet}-{workerId}", timeout ?? FleetConnection.BulkTimeout);
        _sender = new ReceiptedSender(_connection, new Outbox(Path.Combine(stateDirectory, "outbox")), Topics.Partial(WorkerId), Topics.PartialReceipt(WorkerId),
            Aggregator.WorkerReceiptPrefix + WorkerId, validator.Model, mergerPublicKey)
        {
            Window = DefaultWindow,
        };
        _connection.Client.ApplicationMessageReceivedAsync += OnMessage;
        _connection.OnConnected = OnConnected;
    }

    /// <summary>Partials out at once without the merger's receipt (the rest wait in the outbox): a reconnect resends at most this many.</summary>
    public const int DefaultWindow = 256;

    /// <summary>Partials out at once without the merger's receipt; see <see cref="ReceiptedSender.Window"/>.</summary>
    public int Window { get => _sender.Window; set => _sender.Window = value; }

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
        _committer ??= Task.Run(CommitLoop);
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

    /// <summary>The most device messages one group commit turns into partials with one flush of the outbox.</summary>
    public int MaxBatch { get; set; } = 64;

    /// <summary>
    /// For tests: heard after a group's partials are on disk and before any of the device messages is acknowledged,
    /// with how many it holds (a crash there must lose nothing and double nothing).
    /// </summary>
    public Action<int>? Committed { get; set; }

    private readonly Channel<(MqttApplicationMessageReceivedEventArgs E, byte[] Message, int Length)> _incoming =
        Channel.CreateUnbounded<(MqttApplicationMessageReceivedEventArgs, byte[], int)>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private readonly CancellationTokenSource _stopping = new();
    private Task? _committer;

    private Task OnMessage(MqttApplicationMessageReceivedEventArgs e)
    {
        string topic = e.ApplicationMessage.Topic;
        if (topic == Topics.PartialReceipt(WorkerId))
        {
            _sender.OnMessage(topic, e.ApplicationMessage.Payload.ToArray());
            return Task.CompletedTask;
        }
        // Acknowledged by the commit loop, after its partial is in the outbox on disk.
        e.AutoAcknowledge = false;
        if (_abandoned) return Task.CompletedTask;
        ReadOnlySequence<byte> payload = e.ApplicationMessage.Payload;
        // An oversize message is refused before it is copied; the rest copied now (the buffer may be reused after).
        byte[] message = payload.Length > _validator.MaxMessageBytes ? [] : payload.ToArray();
        _incoming.Writer.TryWrite((e, message, (int)Math.Min(payload.Length, int.MaxValue)));
        return Task.CompletedTask;
    }

    /// <summary>
    /// Group commit: every device message that has arrived (up to <see cref="MaxBatch"/>) becomes one partial each,
    /// all written to the outbox with one flush, and only then are they acknowledged. A crash before that has the
    /// broker deliver them again; one after the flush and before the acknowledgements has them delivered again too,
    /// and their second partials are refused by the merger as replays: nothing lost, nothing twice.
    /// </summary>
    private async Task CommitLoop()
    {
        var group = new List<(MqttApplicationMessageReceivedEventArgs E, byte[] Message, int Length)>(MaxBatch);
        while (!_abandoned)
        {
            try
            {
                if (!await _incoming.Reader.WaitToReadAsync(_stopping.Token).ConfigureAwait(false)) return;
            }
            catch (OperationCanceledException)
            {
                return;
            }
            group.Clear();
            while (group.Count < MaxBatch && _incoming.Reader.TryRead(out (MqttApplicationMessageReceivedEventArgs, byte[], int) item)) group.Add(item);
            if (_abandoned) return;
            _sender.EnqueueMany(group.Count, (i, sequence) =>
            {
                PartialEnvelope partial = ToPartial(_validator, WorkerId, sequence, group[i].Message, group[i].Length);
                if (partial.Refusal.Length > 0) Log?.Invoke(RejectReasons.Parse(partial.Refusal)!.Value, partial.Detail);
                return SignedMessage.Sign(partial, WorkerId, _key);
            });
            Handled += group.Count;
            Committed?.Invoke(group.Count);
            foreach ((MqttApplicationMessageReceivedEventArgs e, _, _) in group)
            {
                if (_abandoned) return;
                try
                {
                    await e.AcknowledgeAsync(CancellationToken.None).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is MQTTnet.Exceptions.MqttCommunicationException or InvalidOperationException or ObjectDisposedException)
                {
                    // The connection dropped: the broker delivers it again; its second partial is refused as a replay.
                }
            }
        }
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
        _stopping.Cancel();
        _connection.Abandon();
        _ = _sender.DisposeAsync().AsTask();
    }

    public async ValueTask DisposeAsync()
    {
        if (_abandoned) return;
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_committer is not null) await _committer.ConfigureAwait(false);
        await _sender.DisposeAsync().ConfigureAwait(false);
        await _connection.DisposeAsync().ConfigureAwait(false);
    }
}
