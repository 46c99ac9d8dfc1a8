namespace TinyTrain.Fleet.Tests;

using System.Security.Cryptography;
using TinyTrain.Fleet.Agent;
using TinyTrain.Fleet.Messages;
using TinyTrain.Fleet.Payload;
using TinyTrain.Fleet.Transport;

/// <summary>
/// An ingest worker's send window and group writes: at most <see cref="ReceiptedSender.Window"/> messages out without
/// a receipt (a reconnect resends a bounded batch, never the whole backlog), the next ones as receipts make room; a
/// group of messages written together is on disk, numbered in order, across a restart.
/// </summary>
public sealed class SenderWindowTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task AtMostTheWindowGoesOutUnreceiptedAndReceiptsLetTheRestGo()
    {
        await using EmbeddedBroker broker = await EmbeddedBroker.StartAsync();
        using var fleet = new FleetFixture(1);
        var topics = new FleetTopics("s" + Guid.NewGuid().ToString("N")[..8], fleet.Model.ModelId, fleet.Model.Task);
        var seen = new List<long>();
        await using var watcher = new FleetConnection(broker.Endpoint, "watch-" + topics.Fleet);
        watcher.Client.ApplicationMessageReceivedAsync += e =>
        {
            lock (seen) seen.Add(e.ApplicationMessage.Payload.FirstSpan[0]);
            return Task.CompletedTask;
        };
        watcher.OnConnected = async _ => await watcher.SubscribeAsync(topics.Partial("w1"));
        await watcher.ConnectAsync(Timeout);

        await using var connection = new FleetConnection(broker.Endpoint, "w1-" + topics.Fleet);
        ECDsa aggregatorPublic = FleetKeys.FromPublicKey(FleetKeys.PublicKey(fleet.AggregatorKey));
        string recipient = Aggregation.Aggregator.WorkerReceiptPrefix + "w1";
        await using var sender = new ReceiptedSender(connection, new Outbox(Path.Combine(fleet.Directory, "outbox")), topics.Partial("w1"), topics.PartialReceipt("w1"),
            recipient, fleet.Model, aggregatorPublic) { Window = 2 };
        connection.OnConnected = _ => sender.OnConnectedAsync();
        await connection.ConnectAsync(Timeout);
        sender.Start();
        Assert.Equal(1, sender.EnqueueMany(5, (_, sequence) => [(byte)sequence]));

        await EmbeddedBrokerTests.Until(() => { lock (seen) return seen.Count == 2; });
        await Task.Delay(1500);  // three resend ticks: still only the window
        lock (seen) Assert.Equal(new long[] { 1, 2 }, seen);
        Assert.Equal(5, sender.Outbox.PendingCount);

        byte[] Receipt(long through) => SignedMessage.Sign(new ReceiptEnvelope
        {
            DeviceId = recipient,
            ModelId = fleet.Model.ModelId,
            AdapterKind = fleet.Model.AdapterKind,
            Task = fleet.Model.Task,
            Sequence = through,
        }, FleetModel.AggregatorSigner, fleet.AggregatorKey);
        Assert.True(sender.OnMessage(topics.PartialReceipt("w1"), Receipt(2)));
        await EmbeddedBrokerTests.Until(() => { lock (seen) return seen.Count == 4; });
        Assert.True(sender.OnMessage(topics.PartialReceipt("w1"), Receipt(4)));
        await EmbeddedBrokerTests.Until(() => { lock (seen) return seen.Count == 5; });
        lock (seen) Assert.Equal(new long[] { 1, 2, 3, 4, 5 }, seen);
        Assert.Single(sender.Outbox.PendingSequences());
    }

    [Fact]
    public void AGroupWrittenTogetherSurvivesARestartInOrder()
    {
        using var fleet = new FleetFixture(1);
        string dir = Path.Combine(fleet.Directory, "outbox");
        var outbox = new Outbox(dir);
        long first = outbox.TakeSequences(3);
        outbox.AddMany([(first, [1]), (first + 1, [2, 2]), (first + 2, [3, 3, 3])]);

        var reopened = new Outbox(dir);
        Assert.Equal(first + 3, reopened.NextSequence);
        Assert.Equal(new long[] { 1, 2, 3 }, reopened.Pending().Select(p => p.Sequence));
        Assert.Equal(new byte[] { 3, 3, 3 }, reopened.Pending()[2].Message);
        Assert.Empty(Directory.GetFiles(dir, "*.tmp"));
    }
}
