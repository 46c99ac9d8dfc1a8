namespace TinyTrain.Fleet.Aggregation;

using System.Buffers;
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
    public AggregatorService(BrokerEndpoint broker, string clientId, FleetTopics topics, Aggregator aggregator, AggregatorStore store, string? group = "aggregators",
        bool merger = false)
    {
        Merger = merger;
        Topics = topics ?? throw new ArgumentNullException(nameof(topics));
        Aggregator = aggregator ?? throw new ArgumentNullException(nameof(aggregator));
        _store = store ?? throw new ArgumentNullException(nameof(store));
        Group = group is null ? null : FleetTopics.CheckName("aggregator group", group);
        _connection = new FleetConnection(broker, clientId);
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

    private async Task OnMessage(MqttApplicationMessageReceivedEventArgs e)
    {
        // Acknowledged below, after the journal is on disk.
        e.AutoAcknowledge = false;
        if (_abandoned) return;
        byte[] message = e.ApplicationMessage.Payload.ToArray();
        bool closed;
        OfferResult result;
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_abandoned) return;
            if (Merger)
            {
                _store.Append(message, Aggregator.MaxPartialBytes, partial: true);
                result = message.Length > Aggregator.MaxPartialBytes ? Aggregator.RejectOversize(message.Length) : Aggregator.OfferPartial(message);
            }
            else
            {
                _store.Append(message, Aggregator.Options.MaxMessageBytes);
                result = Aggregator.Offer(message);
            }
            closed = result.RoundClosed;
            if (closed) _store.Snapshot(Aggregator.State);
            Handled++;
        }
        finally
        {
            _gate.Release();
        }
        // Published from another task: waiting for a PUBACK inside the receive handler would stall the receive loop.
        if (closed) SignalGlobal();
        await e.AcknowledgeAsync(CancellationToken.None).ConfigureAwait(false);
        if (Merger)
        {
            // The worker's partial and the device's update are both held for good now (journaled).
            var due = new List<string>(2);
            if (result.Worker is not null) due.Add(Aggregator.WorkerReceiptPrefix + result.Worker);
            if (result.Device is not null) due.Add(result.Device);
            if (due.Count > 0) ReceiptDue(due);
            return;
        }
        // The topic names the device; its receipt says only what the aggregator decided for it, whoever sent this.
        string topic = e.ApplicationMessage.Topic;
        ReceiptDue([topic[(topic.LastIndexOf('/') + 1)..]]);
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
        if (_receipts is not null) await _receipts.ConfigureAwait(false);
        await _connection.DisposeAsync().ConfigureAwait(false);
        _store.Dispose();
        _gate.Dispose();
    }
}
