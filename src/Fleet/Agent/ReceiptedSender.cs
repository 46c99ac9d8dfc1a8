namespace TinyTrain.Fleet.Agent;

using System.Security.Cryptography;
using TinyTrain.Fleet.Messages;
using TinyTrain.Fleet.Payload;
using TinyTrain.Fleet.Transport;

/// <summary>Why a receipt was not used (the outbox keeps what it holds).</summary>
public enum ReceiptRefusal
{
    Malformed,
    BadSignature,
    OtherDevice,
    OtherModel,
}

/// <summary>
/// Sends messages from a persisted <see cref="Outbox"/> and keeps each one until a receipt signed by the aggregator
/// covers it (a broker's PUBACK is not enough: it can acknowledge and then lose the message); what is not receipted is
/// sent again after every reconnect and after <see cref="ResendAfter"/>. A device sends its updates this way to the
/// aggregators, an ingest worker its partials to the merger. The owner calls <see cref="OnConnectedAsync"/> from its
/// connection's OnConnected and hands it every message with <see cref="OnMessage"/>.
/// </summary>
public sealed class ReceiptedSender : IAsyncDisposable
{
    private readonly FleetConnection _connection;
    private readonly string _topic;
    private readonly string _receiptTopic;
    private readonly string _recipient;
    private readonly FleetModel _model;
    private readonly ECDsa _aggregatorKey;
    private readonly SemaphoreSlim _sending = new(1, 1);
    private readonly Dictionary<ReceiptRefusal, int> _receiptsRefused = [];
    /// <summary>Sequence -> when the broker last acknowledged it on this connection (cleared at every connect: all goes again).</summary>
    private readonly Dictionary<long, DateTime> _acknowledgedAt = [];
    private readonly HashSet<long> _acknowledged = [];
    private readonly CancellationTokenSource _stopping = new();
    private long _receiptedThrough;
    private TaskCompletionSource? _receiptArrived;
    private Task? _retry;

    /// <param name="topic">Where the outbox's messages go.</param>
    /// <param name="receiptTopic">Where the aggregator publishes, retained, the receipt for <paramref name="recipient"/>.</param>
    /// <param name="recipient">The name a receipt must carry (ReceiptEnvelope.DeviceId) to be used.</param>
    public ReceiptedSender(FleetConnection connection, Outbox outbox, string topic, string receiptTopic, string recipient, FleetModel model, ECDsa aggregatorPublicKey)
    {
        _connection = connection ?? throw new ArgumentNullException(nameof(connection));
        Outbox = outbox ?? throw new ArgumentNullException(nameof(outbox));
        _topic = topic;
        _receiptTopic = receiptTopic;
        _recipient = recipient;
        _model = model ?? throw new ArgumentNullException(nameof(model));
        _aggregatorKey = aggregatorPublicKey ?? throw new ArgumentNullException(nameof(aggregatorPublicKey));
    }

    public Outbox Outbox { get; }

    /// <summary>How long a reconnect waits for the retained receipt before it resends the outbox.</summary>
    public TimeSpan ReceiptGrace { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How long a message the broker acknowledged waits for its receipt before it is sent again.</summary>
    public TimeSpan ResendAfter { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How many outbox messages (the oldest) may be out at once without a receipt: the rest wait until receipts make
    /// room, so a reconnect resends a bounded batch rather than everything queued, and a sender never floods the
    /// broker faster than the aggregator journals. Unbounded by default (a device has few).
    /// </summary>
    public int Window { get; set; } = int.MaxValue;

    /// <summary>Bytes of messages handed to the broker.</summary>
    public long BytesSent { get; private set; }

    /// <summary>Messages of this process the broker acknowledged (PUBACK) at least once.</summary>
    public int Acknowledged { get; private set; }

    /// <summary>Messages removed from the outbox by a verified receipt.</summary>
    public int Receipted { get; private set; }

    /// <summary>The highest sequence number a verified receipt covered (with all below it).</summary>
    public long ReceiptedThrough { get { lock (_acknowledgedAt) return _receiptedThrough; } }

    public int Refused(ReceiptRefusal reason) { lock (_acknowledgedAt) return _receiptsRefused.TryGetValue(reason, out int n) ? n : 0; }

    /// <summary>Starts resending what the outbox holds every half second while connected: a send that failed is never left behind.</summary>
    public void Start() => _retry ??= Task.Run(RetryLoop);

    /// <summary>
    /// After every connect: subscribes to the receipt and resends everything not receipted (the broker may have
    /// restarted and lost what it acknowledged), after the retained receipt has had its moment to clear what the
    /// aggregator already holds. A resend it misses is refused as a replay, never applied twice.
    /// </summary>
    public async Task OnConnectedAsync()
    {
        var receiptArrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _receiptArrived, receiptArrived);
        await _connection.SubscribeAsync(_receiptTopic).ConfigureAwait(false);
        lock (_acknowledgedAt) _acknowledgedAt.Clear();
        _ = FlushAfterReceiptAsync(receiptArrived.Task);
    }

    /// <summary>Takes a receipt on its topic; false for any other topic.</summary>
    public bool OnMessage(string topic, byte[] payload)
    {
        if (topic != _receiptTopic) return false;
        int before = Receipted;
        ReceiveReceipt(payload);
        Volatile.Read(ref _receiptArrived)?.TrySetResult();
        // Room in the window: the next messages go now, not at the next half-second tick.
        if (Receipted != before && Window < int.MaxValue) _kick.Release();
        return true;
    }

    private async Task FlushAfterReceiptAsync(Task receiptArrived)
    {
        if (Outbox.PendingSequences().Length > 0) await Task.WhenAny(receiptArrived, Task.Delay(ReceiptGrace)).ConfigureAwait(false);
        await FlushAsync().ConfigureAwait(false);
    }

    private readonly SemaphoreSlim _kick = new(0, int.MaxValue);

    private async Task RetryLoop()
    {
        while (!_stopping.IsCancellationRequested)
        {
            try
            {
                await _kick.WaitAsync(500, _stopping.Token).ConfigureAwait(false);
                while (_kick.CurrentCount > 0) await _kick.WaitAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            if (_connection.IsConnected && AnyDue()) await FlushAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Takes the next sequence number, puts the message <paramref name="sign"/> makes with it in the outbox, and sends what the outbox holds.</summary>
    public async Task<long> SendAsync(Func<long, byte[]> sign)
    {
        ArgumentNullException.ThrowIfNull(sign);
        long sequence = Outbox.TakeSequence();
        Outbox.Add(sequence, sign(sequence));
        await FlushAsync().ConfigureAwait(false);
        return sequence;
    }

    /// <summary>
    /// Takes the next sequence number and puts the message <paramref name="sign"/> makes with it in the outbox (on disk
    /// when this returns), and has it sent soon from the resend task: for a caller that must not wait for a PUBACK
    /// (an MQTT receive handler).
    /// </summary>
    public long Enqueue(Func<long, byte[]> sign)
    {
        ArgumentNullException.ThrowIfNull(sign);
        long sequence = Outbox.TakeSequence();
        Outbox.Add(sequence, sign(sequence));
        _kick.Release();
        return sequence;
    }

    /// <summary>
    /// <see cref="Enqueue"/> for <paramref name="count"/> messages at once, as one group commit (one sequence write,
    /// the files flushed together): all are on disk when this returns, numbered in the order <paramref name="sign"/>
    /// is called. Returns the first sequence number.
    /// </summary>
    public long EnqueueMany(int count, Func<int, long, byte[]> sign)
    {
        ArgumentNullException.ThrowIfNull(sign);
        long first = Outbox.TakeSequences(count);
        var messages = new (long, byte[])[count];
        for (int i = 0; i < count; i++) messages[i] = (first + i, sign(i, first + i));
        Outbox.AddMany(messages);
        _kick.Release();
        return first;
    }

    /// <summary>Whether some outbox message was never acknowledged on this connection, or waited past <see cref="ResendAfter"/> for its receipt.</summary>
    private bool AnyDue()
    {
        DateTime now = DateTime.UtcNow;
        lock (_acknowledgedAt)
            foreach (long sequence in Outbox.PendingSequences().Take(Window))
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
            // From the in-memory list, each file read only when it goes out: a long outbox costs no rereads.
            foreach (long sequence in Outbox.PendingSequences().Take(Window))
            {
                lock (_acknowledgedAt)
                    if (sequence <= _receiptedThrough || (_acknowledgedAt.TryGetValue(sequence, out DateTime at) && DateTime.UtcNow - at < ResendAfter)) continue;
                if (Outbox.Read(sequence) is not { } message) continue;
                if (!await _connection.PublishAsync(_topic, message).ConfigureAwait(false)) break;
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

    /// <summary>
    /// Verifies a receipt (aggregator's signature, this recipient, this model) and drops the outbox messages it covers;
    /// false (counted by reason, outbox untouched) when it must not be trusted.
    /// </summary>
    public bool ReceiveReceipt(byte[] message)
    {
        ReceiptRefusal? refusal = CheckReceipt(message, out ReceiptEnvelope? receipt);
        lock (_acknowledgedAt)
        {
            if (refusal is { } r)
            {
                _receiptsRefused[r] = (_receiptsRefused.TryGetValue(r, out int n) ? n : 0) + 1;
                return false;
            }
            long through = receipt!.Sequence;
            if (through > _receiptedThrough)
            {
                _receiptedThrough = through;
                Receipted += Outbox.RemoveThrough(through);
                foreach (long s in _acknowledgedAt.Keys.Where(s => s <= through).ToList()) _acknowledgedAt.Remove(s);
                _acknowledged.RemoveWhere(s => s <= through);
            }
            // Decided out of order (through another ingest worker): dropped one by one.
            foreach (long s in receipt.Also ?? [])
                if (s > _receiptedThrough && Outbox.TryRemove(s))
                {
                    Receipted++;
                    _acknowledgedAt.Remove(s);
                    _acknowledged.Remove(s);
                }
        }
        return true;
    }

    private ReceiptRefusal? CheckReceipt(byte[] message, out ReceiptEnvelope? receipt)
    {
        receipt = null;
        if (!FleetSerializer.TryDeserialize(message, out SignedMessage signed)) return ReceiptRefusal.Malformed;
        if (signed.Signer != FleetModel.AggregatorSigner || !signed.Verify(_aggregatorKey)) return ReceiptRefusal.BadSignature;
        if (!FleetSerializer.TryDeserialize(signed.Body, out ReceiptEnvelope r) || r.SchemaVersion != UpdateEnvelope.CurrentSchema) return ReceiptRefusal.Malformed;
        if (r.DeviceId != _recipient) return ReceiptRefusal.OtherDevice;
        if (r.ModelId != _model.ModelId || r.AdapterKind != _model.AdapterKind || r.Task != _model.Task) return ReceiptRefusal.OtherModel;
        receipt = r;
        return null;
    }

    /// <summary>Stops the resend loop (the connection belongs to the owner).</summary>
    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_retry is not null) await _retry.ConfigureAwait(false);
        _stopping.Dispose();
        _sending.Dispose();
    }
}
