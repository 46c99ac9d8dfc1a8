namespace TinyTrain.Fleet.Tests;

using System.Security.Cryptography;
using TinyTrain.Fleet.Agent;
using TinyTrain.Fleet.Aggregation;
using TinyTrain.Fleet.Messages;
using TinyTrain.Fleet.Transport;
using Xunit.Abstractions;

/// <summary>
/// Group commit's own failure window: the merger journals a group of partials with one fsync and an ingest worker
/// writes a group of partials to its outbox with one flush, and each is killed after that and before it acknowledged
/// any message of the group. Everything must still be aggregated exactly once: the merger replays the group from its
/// journal and refuses the broker's second copies; the worker's device messages come again and their second partials
/// are refused as replays.
/// </summary>
public sealed class GroupCommitTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task CrashesBetweenAGroupsFsyncAndItsAcknowledgementsLoseNothingAndDoubleNothing()
    {
        await using EmbeddedBroker broker = await EmbeddedBroker.StartAsync();
        using var fleet = new FleetFixture(4);
        var topics = new FleetTopics("g" + Guid.NewGuid().ToString("N")[..8], fleet.Model.ModelId, fleet.Model.Task);
        var workerKeys = new Dictionary<string, ECDsa> { ["w1"] = FleetKeys.Create(), ["w2"] = FleetKeys.Create() };
        ECDsa aggregatorPublic = FleetKeys.FromPublicKey(FleetKeys.PublicKey(fleet.AggregatorKey));
        var options = new AggregatorOptions { BufferSize = 8, MaxStaleness = int.MaxValue };
        string mergerDir = Path.Combine(fleet.Directory, "merger");

        async Task<(AggregatorService, Aggregator)> StartMerger(Action<AggregatorService>? arm = null)
        {
            var store = new AggregatorStore(mergerDir);
            Aggregator merger = MergerTests.NewMerger(fleet, workerKeys, options, store.LoadSnapshot());
            store.Recover(merger);
            var service = new AggregatorService(broker.Endpoint, "merger-" + topics.Fleet, topics, merger, store, group: null, merger: true);
            arm?.Invoke(service);
            await service.StartAsync(Timeout);
            return (service, merger);
        }
        async Task<IngestWorker> StartWorker(string id, Action<IngestWorker>? arm = null)
        {
            var worker = new IngestWorker(broker.Endpoint, id, topics, new UpdateValidator(fleet.Model, fleet.Registry, options.MaxMessageBytes), workerKeys[id],
                aggregatorPublic, Path.Combine(fleet.Directory, id));
            arm?.Invoke(worker);
            await worker.StartAsync(Timeout);
            return worker;
        }

        // Each killed at its first group of two or more, after the fsync and before the acknowledgements; a group of
        // one is held a moment so that messages pile up behind it.
        int mergerCrashGroup = 0, workerCrashGroup = 0;
        var (service, merger) = await StartMerger(s => s.Committed = n =>
        {
            if (mergerCrashGroup > 0) return;
            if (n < 2) { Thread.Sleep(100); return; }
            mergerCrashGroup = n;
            s.Abandon();
        });
        IngestWorker w1 = await StartWorker("w1", w => w.Committed = n =>
        {
            if (workerCrashGroup > 0) return;
            if (n < 2) { Thread.Sleep(50); return; }
            workerCrashGroup = n;
            w.Abandon();
        });
        IngestWorker w2 = await StartWorker("w2");
        var agents = new List<DeviceAgent>();
        foreach (string id in fleet.Keys.Keys)
        {
            var agent = new DeviceAgent(id, fleet.Keys[id], aggregatorPublic, fleet.Model, topics, broker.Endpoint, Path.Combine(fleet.Directory, id), "dev-" + topics.Fleet)
            {
                ResendAfter = TimeSpan.FromSeconds(3),
            };
            await agent.StartAsync(Timeout);
            agents.Add(agent);
        }
        async Task Publish(int each) =>
            await Task.WhenAll(agents.Select(async agent =>
            {
                for (int i = 0; i < each; i++) await agent.PublishUpdateAsync(FleetFixture.Delta(0.5f), 4);
            }));

        const int Each = 12;
        await Publish(Each - 2);
        await EmbeddedBrokerTests.Until(() => mergerCrashGroup > 0 && workerCrashGroup > 0, 30);
        // Both come back from their state directories; the devices keep going.
        (service, merger) = await StartMerger();
        w1 = await StartWorker("w1");
        await Publish(2);
        try
        {
            await EmbeddedBrokerTests.Until(() => agents.All(a => a.Outbox.PendingCount == 0) && w1.Pending == 0 && w2.Pending == 0, 60);
            var expected = new List<string>();
            foreach (DeviceAgent agent in agents)
                for (int s = 1; s <= Each; s++) expected.Add($"{agent.DeviceId}:{s}");
            Assert.Equal(expected.Count, merger.State.Accepted);
            await service.CloseRoundAsync();
            Assert.Equal(expected.Order(), merger.State.Aggregated.Order());  // each once, none lost
            // The merger's crashed group came back from the broker too (never acknowledged) and was taken once.
            Assert.True(merger.State.DuplicatePartials > 0, "the partials of the merger's unacknowledged group must have come again");
            output.WriteLine($"merger crashed after a group of {mergerCrashGroup}, worker after {workerCrashGroup}; accepted {merger.State.Accepted}, " +
                             $"replayed {merger.Rejected(RejectReason.Replayed)}, duplicate partials {merger.State.DuplicatePartials}, {service.Commits} commits after restart");
        }
        finally
        {
            foreach (DeviceAgent agent in agents) await agent.DisposeAsync();
            await w1.DisposeAsync();
            await w2.DisposeAsync();
            await service.DisposeAsync();
        }
    }
}
