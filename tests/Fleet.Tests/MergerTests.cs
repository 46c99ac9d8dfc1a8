namespace TinyTrain.Fleet.Tests;

using System.Security.Cryptography;
using TinyTrain.Fleet.Agent;
using TinyTrain.Fleet.Aggregation;
using TinyTrain.Fleet.Messages;
using TinyTrain.Fleet.Transport;

/// <summary>Ingest workers hand updates to one merger: replay protection across workers, out-of-order delivery, refusals, crash recovery.</summary>
public sealed class MergerTests
{
    [Fact]
    public void SequenceWindowTakesNumbersOutOfOrderAndEachOnlyOnce()
    {
        var through = new Dictionary<string, long>();
        var above = new Dictionary<string, List<long>>();
        Assert.Null(SequenceWindow.TryMark(through, above, "d", 2));   // 2 before 1: through another worker
        Assert.Equal([2L], SequenceWindow.Above(above, "d"));
        Assert.Null(SequenceWindow.TryMark(through, above, "d", 1));
        Assert.Equal(2, through["d"]);
        Assert.Empty(SequenceWindow.Above(above, "d"));
        Assert.Equal("sequence 2, already seen up to 2", SequenceWindow.TryMark(through, above, "d", 2));
        Assert.Null(SequenceWindow.TryMark(through, above, "d", 5));
        Assert.Equal("sequence 5, already seen (out of order, above 2)", SequenceWindow.TryMark(through, above, "d", 5));
        Assert.Null(SequenceWindow.TryMark(through, above, "d", 4));
        Assert.Null(SequenceWindow.TryMark(through, above, "d", 3));
        Assert.Equal(5, through["d"]);

        // A number that never comes (taken, then the sender crashed) is given up once the window above it is full.
        for (long s = 7; s <= 7 + SequenceWindow.MaxAbove; s++) Assert.Null(SequenceWindow.TryMark(through, above, "d", s));
        Assert.Equal(7 + SequenceWindow.MaxAbove, through["d"]);
        Assert.NotNull(SequenceWindow.TryMark(through, above, "d", 6));
    }

    [Fact]
    public async Task MergerDecidesUpdatesFromSeveralWorkersOnceEachInAnyOrderAndRefusesStrangers()
    {
        using var fleet = new FleetFixture(2);
        var workerKeys = new Dictionary<string, ECDsa> { ["w1"] = FleetKeys.Create(), ["w2"] = FleetKeys.Create() };
        Aggregator merger = NewMerger(fleet, workerKeys, new AggregatorOptions { BufferSize = 100 });
        var validator = new UpdateValidator(fleet.Model, fleet.Registry, merger.Options.MaxMessageBytes);
        long w1 = 0, w2 = 0;
        byte[] Via(string worker, byte[] update)
        {
            long sequence = worker == "w1" ? ++w1 : ++w2;
            return SignedMessage.Sign(IngestWorker.ToPartial(validator, worker, sequence, update, update.Length), worker, workerKeys[worker]);
        }
        byte[] u1 = fleet.Signed(FleetFixture.Update("dev0", 1, FleetFixture.Delta(1)));
        byte[] u2 = fleet.Signed(FleetFixture.Update("dev0", 2, FleetFixture.Delta(2)));
        byte[] u3 = fleet.Signed(FleetFixture.Update("dev0", 3, FleetFixture.Delta(3)));

        // dev0's 3 reaches the merger through w2 before its 1 through w1; 2 is still on its way.
        byte[] p3 = Via("w2", u3);
        OfferResult r = merger.OfferPartial(p3);
        Assert.True(r.Accepted);
        Assert.Equal("dev0", r.Device);
        Assert.Equal("w2", r.Worker);
        Assert.True(merger.OfferPartial(Via("w1", u1)).Accepted);
        // The device's receipt covers 1 and 3, not 2: the device keeps 2 (still in flight) in its outbox.
        var agent = new DeviceAgent("dev0", fleet.Keys["dev0"], FleetKeys.FromPublicKey(FleetKeys.PublicKey(fleet.AggregatorKey)), fleet.Model,
            new FleetTopics("f", fleet.Model.ModelId, fleet.Model.Task), new BrokerEndpoint("127.0.0.1", 1, false), Path.Combine(fleet.Directory, "dev0"));
        for (int i = 1; i <= 3; i++) await agent.PublishUpdateAsync(FleetFixture.Delta(i), 10);  // no broker: all stay in the outbox
        Assert.True(agent.ReceiveReceipt(merger.SignedReceipt("dev0")!));
        Assert.Equal([2L], agent.Outbox.PendingSequences());
        Assert.True(merger.OfferPartial(Via("w1", u2)).Accepted);
        Assert.True(agent.ReceiveReceipt(merger.SignedReceipt("dev0")!));
        Assert.Equal(0, agent.Outbox.PendingCount);
        Assert.Equal(3, agent.ReceiptedThrough);
        await agent.DisposeAsync();

        // The same update again through the other worker: a replay, refused whichever worker brings it.
        r = merger.OfferPartial(Via("w2", u1));
        Assert.Equal(RejectReason.Replayed, r.Reason);
        Assert.Contains("'dev0' sequence 1, already seen up to 3", r.Detail);
        // A worker sends a partial again (it had no receipt yet): taken once, not counted as a refusal.
        r = merger.OfferPartial(p3);
        Assert.True(r.Duplicate);
        Assert.Equal(1, merger.State.DuplicatePartials);
        // A forged device update: the worker's verdict is counted by the merger for the fleet.
        Assert.False(merger.OfferPartial(Via("w1", SignedMessage.Sign(FleetFixture.Update("dev1", 1, FleetFixture.Delta(9)), "dev1", FleetKeys.Create()))).Accepted);
        Assert.Equal(1, merger.Rejected(RejectReason.BadSignature));

        // A worker the merger does not know, and a known worker's name with another key: refused and counted.
        var stranger = FleetKeys.Create();
        r = merger.OfferPartial(SignedMessage.Sign(IngestWorker.ToPartial(validator, "w9", 1, u1, u1.Length), "w9", stranger));
        Assert.Equal(RejectReason.UnknownWorker, r.Reason);
        Assert.Contains("worker 'w9' is not registered", r.Detail);
        r = merger.OfferPartial(SignedMessage.Sign(IngestWorker.ToPartial(validator, "w1", 99, u1, u1.Length), "w1", stranger));
        Assert.Equal(RejectReason.BadWorkerSignature, r.Reason);
        Assert.Contains("signature of worker 'w1' does not verify", r.Detail);
        Assert.Equal(1, merger.Rejected(RejectReason.UnknownWorker));
        Assert.Equal(1, merger.Rejected(RejectReason.BadWorkerSignature));

        Assert.Equal(3, merger.State.Accepted);
        merger.CloseRound();
        Assert.Equal(["dev0:3", "dev0:1", "dev0:2"], merger.State.Aggregated);
        Assert.Equal(1, merger.State.Version);
    }

    [Fact]
    public void MergerRestartReplaysItsJournalOfPartialsToTheSameState()
    {
        using var fleet = new FleetFixture(3);
        var workerKeys = new Dictionary<string, ECDsa> { ["w1"] = FleetKeys.Create() };
        var options = new AggregatorOptions { BufferSize = 2 };
        var validator = new UpdateValidator(fleet.Model, fleet.Registry, options.MaxMessageBytes);
        var partials = new List<byte[]>();
        for (int i = 0; i < 3; i++)
        {
            byte[] update = fleet.Signed(FleetFixture.Update($"dev{i}", 1, FleetFixture.Delta(i + 1)));
            partials.Add(SignedMessage.Sign(IngestWorker.ToPartial(validator, "w1", i + 1, update, update.Length), "w1", workerKeys["w1"]));
        }
        string dir = Path.Combine(fleet.Directory, "merger");
        var store = new AggregatorStore(dir);
        Aggregator first = NewMerger(fleet, workerKeys, options);
        store.Recover(first);
        foreach (byte[] p in partials)
        {
            store.Append(p, first.MaxPartialBytes, partial: true);
            if (first.OfferPartial(p).RoundClosed) store.Snapshot(first.State);
        }
        store.Dispose();  // killed: the third partial is only in the journal

        var again = new AggregatorStore(dir);
        Aggregator second = NewMerger(fleet, workerKeys, options, again.LoadSnapshot());
        Assert.Equal(1, again.Recover(second));
        Assert.Equal(first.State.Global, second.State.Global);
        Assert.Equal(3, second.State.WorkerThrough["w1"]);
        // The worker had no receipt for it and sends it again: a duplicate, not applied twice.
        Assert.True(second.OfferPartial(partials[2]).Duplicate);
        second.CloseRound();
        Assert.Equal(["dev0:1", "dev1:1", "dev2:1"], second.State.Aggregated);
        again.Dispose();
    }

    internal static Aggregator NewMerger(FleetFixture fleet, Dictionary<string, ECDsa> workerKeys, AggregatorOptions options, AggregatorState? state = null)
    {
        var registry = workerKeys.ToDictionary(p => p.Key, p => FleetKeys.FromPublicKey(FleetKeys.PublicKey(p.Value)));
        return new Aggregator(fleet.Model, options, fleet.Registry, fleet.AggregatorKey, state ?? new AggregatorState { Global = new float[FleetFixture.Layout.TotalCount] },
            registry);
    }
}
