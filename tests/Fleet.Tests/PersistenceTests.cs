namespace TinyTrain.Fleet.Tests;

using TinyTrain.Fleet.Agent;
using TinyTrain.Fleet.Aggregation;
using TinyTrain.Fleet.Messages;
using TinyTrain.Fleet.Transport;

/// <summary>What must survive a restart: a device's outbox and sequence numbers, an aggregator's journal and seen state.</summary>
public sealed class PersistenceTests
{
    [Fact]
    public void OutboxKeepsUnacknowledgedMessagesAndSequenceAcrossRestart()
    {
        using var fleet = new FleetFixture(1);
        string dir = Path.Combine(fleet.Directory, "outbox");
        var outbox = new Outbox(dir);
        long a = outbox.TakeSequence(), b = outbox.TakeSequence();
        outbox.Add(a, [1]);
        outbox.Add(b, [2, 2]);
        outbox.Remove(a);  // acknowledged

        var reopened = new Outbox(dir);
        Assert.Equal(3, reopened.NextSequence);
        var pending = reopened.Pending();
        Assert.Single(pending);
        Assert.Equal(2L, pending[0].Sequence);
        Assert.Equal(new byte[] { 2, 2 }, pending[0].Message);
    }

    [Fact]
    public void AggregatorRestartReplaysItsJournalAndAppliesEachUpdateOnce()
    {
        using var fleet = new FleetFixture(3);
        string dir = Path.Combine(fleet.Directory, "agg");
        var options = new AggregatorOptions { BufferSize = 2 };
        var messages = new List<byte[]>();
        for (int i = 0; i < 3; i++) messages.Add(fleet.Signed(FleetFixture.Update($"dev{i}", 1, FleetFixture.Delta(i + 1))));

        var store = new AggregatorStore(dir);
        Aggregator first = fleet.NewAggregator(options);
        store.Recover(first);
        foreach (byte[] m in messages)
        {
            store.Append(m, options.MaxMessageBytes);
            if (first.Offer(m).RoundClosed) store.Snapshot(first.State);
        }
        // Crash: no snapshot after the third message; it is only in the journal.
        store.Dispose();

        var again = new AggregatorStore(dir);
        AggregatorState saved = again.LoadSnapshot()!;
        Aggregator second = fleet.NewAggregator(options, saved);
        Assert.Equal(1, again.Recover(second));
        Assert.Equal(first.State.Version, second.State.Version);
        Assert.Equal(first.State.Global, second.State.Global);
        Assert.Single(second.State.Buffer);
        // The broker delivers the unacknowledged third message again: refused as a replay, not applied twice.
        again.Append(messages[2], options.MaxMessageBytes);
        Assert.Equal(RejectReason.Replayed, second.Offer(messages[2]).Reason);
        second.CloseRound();
        Assert.Equal(["dev0:1", "dev1:1", "dev2:1"], second.State.Aggregated);
        again.Dispose();
    }

    [Fact]
    public async Task ForgedOrMisdirectedReceiptsAreRefusedAndLeaveTheOutboxAlone()
    {
        using var fleet = new FleetFixture(2);
        var topics = new FleetTopics("f", fleet.Model.ModelId, fleet.Model.Task);
        var agent = new DeviceAgent("dev0", fleet.Keys["dev0"], FleetKeys.FromPublicKey(FleetKeys.PublicKey(fleet.AggregatorKey)), fleet.Model, topics,
            new BrokerEndpoint("127.0.0.1", 1, false), Path.Combine(fleet.Directory, "dev0"));
        for (int i = 0; i < 3; i++) await agent.PublishUpdateAsync(FleetFixture.Delta(i), 5);  // no broker: all stay in the outbox
        Assert.Equal(3, agent.Outbox.Count);

        Aggregator aggregator = fleet.NewAggregator();
        Assert.Null(aggregator.SignedReceipt("dev0"));  // nothing seen, nothing to receipt
        foreach (var (sequence, message) in agent.Outbox.Pending()) aggregator.Offer(message);
        aggregator.Offer(fleet.Signed(FleetFixture.Update("dev1", 7, FleetFixture.Delta(1))));

        // Signed by a key that is not the aggregator's, for all three updates.
        var impostor = new Aggregator(fleet.Model, aggregator.Options, fleet.Registry, FleetKeys.Create(), aggregator.State);
        Assert.False(agent.ReceiveReceipt(impostor.SignedReceipt("dev0")!));
        Assert.Equal(1, agent.Refused(ReceiptRefusal.BadSignature));
        // The aggregator's genuine receipt, but for another device.
        Assert.False(agent.ReceiveReceipt(aggregator.SignedReceipt("dev1")!));
        Assert.Equal(1, agent.Refused(ReceiptRefusal.OtherDevice));
        // Another model's aggregator, same key.
        var other = new Aggregator(fleet.Model with { ModelId = "0000000000000000" }, aggregator.Options, fleet.Registry, fleet.AggregatorKey, aggregator.State);
        Assert.False(agent.ReceiveReceipt(other.SignedReceipt("dev0")!));
        Assert.Equal(1, agent.Refused(ReceiptRefusal.OtherModel));
        Assert.False(agent.ReceiveReceipt([0xC1]));
        Assert.Equal(1, agent.Refused(ReceiptRefusal.Malformed));
        Assert.Equal(3, agent.Outbox.Count);
        Assert.Equal(0, agent.ReceiptedThrough);

        // The genuine receipt covers exactly what the aggregator decided.
        Assert.True(agent.ReceiveReceipt(aggregator.SignedReceipt("dev0")!));
        Assert.Equal(3, agent.ReceiptedThrough);
        Assert.Equal(0, agent.Outbox.Count);
        Assert.Equal(3, agent.Receipted);
        await agent.DisposeAsync();
    }

    [Fact]
    public void DeviceRefusesAGlobalThatFailsAnyCheckAndKeepsTheOneInUse()
    {
        using var fleet = new FleetFixture(1);
        var topics = new FleetTopics("f", fleet.Model.ModelId, fleet.Model.Task);
        var agent = new DeviceAgent("dev0", fleet.Keys["dev0"], FleetKeys.FromPublicKey(FleetKeys.PublicKey(fleet.AggregatorKey)), fleet.Model, topics,
            new BrokerEndpoint("127.0.0.1", 1, false), Path.Combine(fleet.Directory, "dev0"));
        Aggregator aggregator = fleet.NewAggregator(new AggregatorOptions { BufferSize = 1 });
        aggregator.Offer(fleet.Signed(FleetFixture.Update("dev0", 1, FleetFixture.Delta(3))));
        var parameters = new byte[20];
        Assert.True(agent.Receive(aggregator.SignedGlobal(), persist: true));
        Assert.NotNull(agent.TryApplyGlobal(parameters));
        byte[] inUse = (byte[])parameters.Clone();

        // Signed by someone else.
        var impostor = new Aggregator(fleet.Model, aggregator.Options, fleet.Registry, FleetKeys.Create(), new AggregatorState { Global = new float[9], Version = 5 });
        Assert.False(agent.Receive(impostor.SignedGlobal(), persist: true));
        Assert.Equal(1, agent.Refused(GlobalRefusal.BadSignature));
        // Another model's global, correctly signed.
        var other = new Aggregator(fleet.Model with { ModelId = "0000000000000000" }, aggregator.Options, fleet.Registry, fleet.AggregatorKey,
            new AggregatorState { Global = new float[9], Version = 6 });
        Assert.False(agent.Receive(other.SignedGlobal(), persist: true));
        Assert.Equal(1, agent.Refused(GlobalRefusal.OtherModel));
        // Another adapter shape, correctly signed.
        var reshaped = fleet.Model with { Layout = TinyTrain.Fleet.Payload.ParamLayout.Create([new("fc.weight", TinyTrain.Runtime.Plans.ElementType.Int8, 0, 9)]) };
        var poisoned = new Aggregator(reshaped, aggregator.Options, fleet.Registry, fleet.AggregatorKey, new AggregatorState { Global = new float[9], Version = 7 });
        Assert.False(agent.Receive(poisoned.SignedGlobal(), persist: true));
        Assert.Equal(1, agent.Refused(GlobalRefusal.WrongShape));
        Assert.False(agent.Receive([0xC1], persist: true));
        Assert.Equal(1, agent.Refused(GlobalRefusal.Malformed));

        Assert.Null(agent.TryApplyGlobal(parameters));
        Assert.Equal(inUse, parameters);
        Assert.Equal(1, agent.GlobalVersion);

        // After a reboot the device starts from the last global it verified.
        var rebooted = new DeviceAgent("dev0", fleet.Keys["dev0"], FleetKeys.FromPublicKey(FleetKeys.PublicKey(fleet.AggregatorKey)), fleet.Model, topics,
            new BrokerEndpoint("127.0.0.1", 1, false), Path.Combine(fleet.Directory, "dev0"));
        var fresh = new byte[20];
        Assert.NotNull(rebooted.TryApplyGlobal(fresh));
        Assert.Equal(inUse, fresh);
    }
}
