namespace TinyTrain.Fleet.Aggregation;

using System.Buffers;
using System.Threading.Channels;
using MQTTnet;
using TinyTrain.Fleet.Transport;

/// <summary>
/// An aggregator on the broker: takes device updates from a shared subscription ($share/{group}/..., or a plain one
/// where the broker has none), journals each to disk before acknowledging it, offers it to the aggregator, and
/// publishes each new global adapter retained. A message is acknowledged only once it is on disk, so a crash at any
/// point either replays it from the journal or has the broker deliver it again (then refused as replayed): every
/// acknowledged update is aggregated exactly once. After a device's updates are journaled it publishes that device a
/// signed, retained receipt (the highest sequence number decided), so the device keeps each update until the aggregator,
/// not just the broker, has it: a broker that acknowledges and then loses a message costs nothing.
/// As the merger behind ingest workers (<see cref="IngestWorker"/>) it takes their signed partials from partials/+
/// instead, journals each before acknowledging it, decides replay and staleness for the whole fleet, receipts the
/// worker (on partial-receipts/{worker}) and the device, and is the one publisher of the global adapter.
/// </summary>
public sealed class AggregatorService : IAsyncDisposable
{
    private readonly FleetConnection _connection;
    private readonly AggregatorStore _store;
    private readonly SemaphoreSlim _gate = new(1, 1);

    /// <param name="group">The shared-subscription group; null subscribes plainly (one aggregator).</param>
    /// <param name="merger">Take ingest workers' partials (partials/+) rather than devices' updates.</param>
    /// <param name="timeout">How long an operation waits for the broker; <see cref="FleetConnection.BulkTimeout"/> when null.</param>
    public AggregatorService(BrokerEndpoint broker, string clientId, FleetTopics topics, Aggregator aggregator, AggregatorStore store, string? group = "aggregators",
        bool merger = false, TimeSpan? timeout = null)
    {
        Merger = merger;
        Topics = topics ?? throw new ArgumentNullException(nameof(topics));
        Aggregator = aggregator ?? throw new ArgumentNullException(nameof(aggregator));
        _store = store ?? throw new ArgumentNullException(nameof(store));
        Group = group is null ? null : FleetTopics.CheckName("aggregator group", group);
        _connection = new FleetConnection(broker, clientId, timeout ?? FleetConnection.BulkTimeout);
        _connection.Client.ApplicationMessageReceivedAsync += OnMessage;
        _connection.OnConnected = OnConnected;
    }

    public FleetTopics Topics { get; }
    public Aggregator Aggregator { get; }
    public string? Group { get; }

    /// <summary>Whether this service merges ingest workers' partials.</summary>
    public bool Merger { get; }

    /// <summary>True when the broker granted the shared subscription; false when this aggregator subscribed alone.</summary>
    public bool Shared { get; private set; }

    /// <summary>Messages handled (accepted or refused) by this process.</summary>
    public long Handled { get; private set; }

    /// <summary>Heard after each new global version is published.</summary>
    public Action<long>? RoundClosed { get; set; }

    public Task StartAsync(TimeSpan timeout, CancellationToken cancel = default)
    {
        _publisher ??= Task.Run(PublishLoop);
        _receipts ??= Task.Run(ReceiptLoop);
        _committer ??= Task.Run(CommitLoop);
        return _connection.ConnectAsync(timeout, cancel);
    }

    private readonly SemaphoreSlim _globalChanged = new(0, int.MaxValue);
    private readonly CancellationTokenSource _stopping = new();
    private Task? _publisher;

    private void SignalGlobal() => _globalChanged.Release();

    private readonly HashSet<string> _receiptsDue = [];
    private readonly SemaphoreSlim _receiptsChanged = new(0, int.MaxValue);
    private Task? _receipts;

    private void ReceiptDue(IEnumerable<string> devices)
    {
        lock (_receiptsDue) foreach (string device in devices) _receiptsDue.Add(device);
        _receiptsChanged.Release();
    }

    /// <summary>Publishes the latest receipt of every device that has new ones (coalesced: one message per device however many updates).</summary>
    private async Task ReceiptLoop()
    {
        while (!_stopping.IsCancellationRequested)
        {
            try
            {
                await _receiptsChanged.WaitAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            while (_receiptsChanged.CurrentCount > 0) await _receiptsChanged.WaitAsync().ConfigureAwait(false);
            string[] due;
            lock (_receiptsDue)
            {
                due = [.. _receiptsDue];
                _receiptsDue.Clear();
            }
            foreach (string device in due)
            {
                if (_abandoned) return;
                byte[]? receipt;
                bool worker = device.StartsWith(Aggregator.WorkerReceiptPrefix, StringComparison.Ordinal);
                string name = worker ? device[Aggregator.WorkerReceiptPrefix.Length..] : device;
                await _gate.WaitAsync().ConfigureAwait(false);
                try
                {
                    receipt = worker ? Aggregator.SignedWorkerReceipt(name) : Aggregator.SignedReceipt(name);
                }
                finally
                {
                    _gate.Release();
                }
                // Not taken (disconnected): sent again with all the others after the next connect.
                string topic = worker ? Topics.PartialReceipt(name) : Topics.Receipt(name);
                if (receipt is not null && !await _connection.PublishAsync(topic, receipt, retain: true).ConfigureAwait(false)) break;
            }
        }
    }

    /// <summary>Publishes the current global whenever it changed; one publisher, so the retained message never goes back a version.</summary>
    private async Task PublishLoop()
    {
        while (!_stopping.IsCancellationRequested)
        {
            try
            {
                await _globalChanged.WaitAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            while (_globalChanged.CurrentCount > 0) await _globalChanged.WaitAsync().ConfigureAwait(false);
            await PublishGlobalAsync().ConfigureAwait(false);
        }
    }

    private async Task OnConnected(bool sessionPresent)
    {
        // A broker without shared subscriptions may still grant "$share/..." as a literal filter that matches nothing,
        // so its CONNACK decides.
        string filter = Merger ? Topics.Partials : Topics.Updates;
        Shared = !Merger && Group is not null && _connection.SharedSubscriptionsAvailable && await _connection.SubscribeAsync(Topics.SharedUpdates(Group)).ConfigureAwait(false);
        if (!Shared && !await _connection.SubscribeAsync(filter).ConfigureAwait(false))
            throw new TinyTrainException($"broker {_connection.Broker} refused the subscription to {filter}");
        SignalGlobal();
        // A restarted broker may have lost retained receipts (or a restarted aggregator never sent them): all again.
        string[] devices;
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            AggregatorState state = Aggregator.State;
            devices = [.. state.LastSequence.Keys.Union(state.SeenAbove.Keys),
                       .. state.WorkerThrough.Keys.Union(state.WorkerAbove.Keys).Select(w => Aggregator.WorkerReceiptPrefix + w)];
        }
        finally
        {
            _gate.Release();
        }
        ReceiptDue(devices);
    }

    private volatile bool _abandoned;

    /// <summary>
    /// For tests and benchmarks: stops as a killed process would: nothing more is journaled or acknowledged, the
    /// connection is dropped without a DISCONNECT, the journal is closed where it is. The broker keeps the session.
    /// </summary>
    public void Abandon()
    {
        _abandoned = true;
        _stopping.Cancel();
        _connection.Abandon();
        _store.Dispose();
    }

    /// <summary>The most messages one group commit journals with one fsync (Mosquitto's default in-flight window is 20 per client).</summary>
    public int MaxBatch { get; set; } = 64;

    /// <summary>
    /// For tests: heard inside the commit, after a group's fsync and before any of it is offered or acknowledged,
    /// with the number of messages it covers (a crash there must lose nothing and double nothing).
    /// </summary>
    public Action<int>? Committed { get; set; }

    /// <summary>Group commits so far (each one fsync for one or more messages).</summary>
    public long Commits { get; private set; }

    private readonly Channel<(MqttApplicationMessageReceivedEventArgs E, byte[] Message)> _incoming = Channel.CreateUnbounded<(MqttApplicationMessageReceivedEventArgs, byte[])>(
        new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private Task? _committer;

    private Task OnMessage(MqttApplicationMessageReceivedEventArgs e)
    {
        // Acknowledged by the commit loop, after the fsync that covers it: the receive loop goes on to the next
        // message meanwhile, so the broker's in-flight window fills one group.
        e.AutoAcknowledge = false;
        if (_abandoned) return Task.CompletedTask;
        // Copied here: the payload's buffer may be reused once the handler returns.
        _incoming.Writer.TryWrite((e, e.ApplicationMessage.Payload.ToArray()));
        return Task.CompletedTask;
    }

    /// <summary>
    /// Group commit: takes every message that has arrived (up to <see cref="MaxBatch"/>), appends them all to the
    /// journal and flushes once, then offers each in arrival order, snapshots if a round closed, and only then
    /// acknowledges them and queues their receipts. A crash before the fsync loses nothing acknowledged (the broker
    /// delivers the group again); one after it replays the group from the journal and refuses the broker's second
    /// copies (replayed update, duplicate partial).
    /// </summary>
    private async Task CommitLoop()
    {
        var group = new List<MqttApplicationMessageReceivedEventArgs>(MaxBatch);
        var messages = new List<byte[]>(MaxBatch);
        var due = new HashSet<string>();
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
            messages.Clear();
            due.Clear();
            while (group.Count < MaxBatch && _incoming.Reader.TryRead(out (MqttApplicationMessageReceivedEventArgs E, byte[] Message) item))
            {
                group.Add(item.E);
                messages.Add(item.Message);
            }
            bool closed = false;
            await _gate.WaitAsync().ConfigureAwait(false);
            try
            {
                if (_abandoned) return;
                int limit = Merger ? Aggregator.MaxPartialBytes : Aggregator.Options.MaxMessageBytes;
                foreach (byte[] message in messages) _store.Write(message, limit, partial: Merger);
                _store.Flush();
                Commits++;
                Committed?.Invoke(group.Count);
                if (_abandoned) return;
                for (int i = 0; i < group.Count; i++)
                {
                    byte[] message = messages[i];
                    OfferResult result;
                    if (Merger)
                    {
                        result = message.Length > limit ? Aggregator.RejectOversize(message.Length) : Aggregator.OfferPartial(message);
                        // The worker's partial and the device's update are both held for good now (journaled).
                        if (result.Worker is not null) due.Add(Aggregator.WorkerReceiptPrefix + result.Worker);
                        if (result.Device is not null) due.Add(result.Device);
                    }
                    else
                    {
                        result = Aggregator.Offer(message);
                        // The topic names the device; its receipt says only what the aggregator decided for it, whoever sent this.
                        string topic = group[i].ApplicationMessage.Topic;
                        due.Add(topic[(topic.LastIndexOf('/') + 1)..]);
                    }
                    closed |= result.RoundClosed;
                    Handled++;
                }
                // One snapshot covers every round the group closed (the journal it replaces held the whole group).
                if (closed) _store.Snapshot(Aggregator.State);
            }
            finally
            {
                _gate.Release();
            }
            // Published from another task: waiting for a PUBACK here would hold up the next group.
            if (closed) SignalGlobal();
            foreach (MqttApplicationMessageReceivedEventArgs e in group)
            {
                if (_abandoned) return;
                try
                {
                    await e.AcknowledgeAsync(CancellationToken.None).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is MQTTnet.Exceptions.MqttCommunicationException or InvalidOperationException or ObjectDisposedException)
                {
                    // The connection dropped: the broker delivers it again, refused then as a replay or duplicate.
                }
            }
            if (due.Count > 0) ReceiptDue(due);
        }
    }

    /// <summary>Closes the round now with whatever is buffered (a simulation's round end), and publishes the result.</summary>
    public async Task CloseRoundAsync()
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (Aggregator.State.Buffer.Count == 0) return;
            Aggregator.CloseRound();
            _store.Snapshot(Aggregator.State);
        }
        finally
        {
            _gate.Release();
        }
        await PublishGlobalAsync().ConfigureAwait(false);
    }

    private readonly SemaphoreSlim _publishing = new(1, 1);

    private async Task PublishGlobalAsync()
    {
        // One publish at a time, each reading the state inside: the retained global never goes back a version.
        await _publishing.WaitAsync().ConfigureAwait(false);
        try
        {
            byte[] global;
            long version;
            await _gate.WaitAsync().ConfigureAwait(false);
            try
            {
                global = Aggregator.SignedGlobal();
                version = Aggregator.State.Version;
            }
            finally
            {
                _gate.Release();
            }
            // A lost publish is repeated on the next connect: the retained global is always the state's current one.
            await _connection.PublishAsync(Topics.Global, global, retain: true).ConfigureAwait(false);
            RoundClosed?.Invoke(version);
        }
        finally
        {
            _publishing.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_abandoned) return;
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_publisher is not null) await _publisher.ConfigureAwait(false);
        if (_committer is not null) await _committer.ConfigureAwait(false);
        if (_receipts is not null) await _receipts.ConfigureAwait(false);
        await _connection.DisposeAsync().ConfigureAwait(false);
        _store.Dispose();
        _gate.Dispose();
    }
}
