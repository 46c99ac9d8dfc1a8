namespace TinyTrain.Fleet.Tests;

using System.Buffers;
using System.Security.Cryptography;
using TinyTrain.Fleet.Agent;
using TinyTrain.Fleet.Aggregation;
using TinyTrain.Fleet.Messages;
using TinyTrain.Fleet.Transport;
using Xunit.Abstractions;

/// <summary>
/// Two ingest workers and one merger over a real broker, with a worker and the merger killed mid-run: one sequence of
/// global adapters, every update aggregated exactly once, every outbox drained.
/// </summary>
public sealed class ClusterTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task TwoWorkersAndAMergerOnTheEmbeddedBrokerSurviveKillsAndAggregateEachUpdateOnce()
    {
        // MQTTnet's broker has no shared subscriptions: both workers take every update, so the merger sees each one
        // twice and must refuse every second copy as a replay.
        await using EmbeddedBroker broker = await EmbeddedBroker.StartAsync();
        var (workers, replayed) = await RunCluster(broker.Endpoint, expectShared: false);
        Assert.Equal(2, workers.Count(h => h > 0));
        Assert.True(replayed > 0, "every update reached both workers; the merger must have refused the second copies");
    }

    [Fact]
    public async Task TwoWorkersOnAMosquittoSharedSubscriptionSplitTheLoadAndTheMergerAggregatesEachUpdateOnce()
    {
        if (!ExternalBroker.Available(output)) return;
        var (workers, _) = await RunCluster(BrokerEndpoint.Parse(ExternalBroker.Url!), expectShared: true);
        // Each update went to one of the two (a killed worker's unacknowledged ones to whichever took them after).
        Assert.True(workers[0] > 0 && workers[1] > 0, $"handled {workers[0]} and {workers[1]}");
    }

    private async Task<(long[] Handled, long Replayed)> RunCluster(BrokerEndpoint broker, bool expectShared)
    {
        using var fleet = new FleetFixture(4);
        var topics = new FleetTopics("c" + Guid.NewGuid().ToString("N")[..8], fleet.Model.ModelId, fleet.Model.Task);
        var workerKeys = new Dictionary<string, ECDsa> { ["w1"] = FleetKeys.Create(), ["w2"] = FleetKeys.Create() };
        ECDsa aggregatorPublic = FleetKeys.FromPublicKey(FleetKeys.PublicKey(fleet.AggregatorKey));
        var options = new AggregatorOptions { BufferSize = 8 };  // 6 versions: every update stays within MaxStaleness of version 0
        string mergerDir = Path.Combine(fleet.Directory, "merger");

        // Everyone who watches the retained global: it must be one sequence, one adapter per version.
        var globals = new Dictionary<long, byte[]>();
        await using var watcher = new FleetConnection(broker, "watch-" + topics.Fleet);
        watcher.Client.ApplicationMessageReceivedAsync += e =>
        {
            Assert.True(FleetSerializer.TryDeserialize(e.ApplicationMessage.Payload.ToArray(), out SignedMessage signed));
            Assert.True(signed.Verify(aggregatorPublic));
            Assert.True(FleetSerializer.TryDeserialize(signed.Body, out GlobalEnvelope global));
            lock (globals)
            {
                if (globals.TryGetValue(global.Version, out byte[]? seen)) Assert.Equal(seen, global.Payload);
                else globals[global.Version] = global.Payload;
            }
            return Task.CompletedTask;
        };
        watcher.OnConnected = async _ => await watcher.SubscribeAsync(topics.Global);
        await watcher.ConnectAsync(Timeout);

        async Task<(AggregatorService, Aggregator)> StartMerger()
        {
            var store = new AggregatorStore(mergerDir);
            Aggregator merger = MergerTests.NewMerger(fleet, workerKeys, options, store.LoadSnapshot());
            store.Recover(merger);
            var service = new AggregatorService(broker, "merger-" + topics.Fleet, topics, merger, store, group: null, merger: true);
            await service.StartAsync(Timeout);
            return (service, merger);
        }
        async Task<IngestWorker> StartWorker(string id)
        {
            var worker = new IngestWorker(broker, id, topics, new UpdateValidator(fleet.Model, fleet.Registry, options.MaxMessageBytes), workerKeys[id],
                aggregatorPublic, Path.Combine(fleet.Directory, id));
            await worker.StartAsync(Timeout);
            Assert.Equal(expectShared, worker.Shared);
            return worker;
        }

        var (service, merger) = await StartMerger();
        IngestWorker w1 = await StartWorker("w1"), w2 = await StartWorker("w2");
        var agents = new List<DeviceAgent>();
        foreach (string id in fleet.Keys.Keys)
        {
            var agent = new DeviceAgent(id, fleet.Keys[id], aggregatorPublic, fleet.Model, topics, broker, Path.Combine(fleet.Directory, id), "dev-" + topics.Fleet)
            {
                ResendAfter = TimeSpan.FromSeconds(3),
            };
            await agent.StartAsync(Timeout);
            agents.Add(agent);
        }
        async Task Publish(int each)
        {
            for (int i = 0; i < each; i++)
                foreach (DeviceAgent agent in agents) await agent.PublishUpdateAsync(FleetFixture.Delta(0.5f), 4);
        }

        long[] handled = new long[2];
        await Publish(4);
        // Worker 1 killed mid-run (no DISCONNECT, nothing more written or acknowledged), while updates keep coming.
        Task more = Publish(4);
        await EmbeddedBrokerTests.Until(() => w1.Handled > 0);
        handled[0] += w1.Handled;
        w1.Abandon();
        await more;
        // The merger killed too; the devices keep going; both come back from their state directories.
        service.Abandon();
        await Publish(2);
        (service, merger) = await StartMerger();
        w1 = await StartWorker("w1");
        await Publish(2);

        int total = 12 * agents.Count;
        try
        {
            await EmbeddedBrokerTests.Until(() => agents.All(a => a.Outbox.PendingCount == 0) && w1.Pending == 0 && w2.Pending == 0, 60);
            Assert.Equal(total, merger.State.Accepted);
            await service.CloseRoundAsync();
            var expected = new List<string>();
            foreach (DeviceAgent agent in agents)
                for (int s = 1; s <= 12; s++) expected.Add($"{agent.DeviceId}:{s}");
            Assert.Equal(expected.Order(), merger.State.Aggregated.Order());  // each once, none lost
            await EmbeddedBrokerTests.Until(() => { lock (globals) return globals.ContainsKey(merger.State.Version); });
            lock (globals)
            {
                // One global per version, from 1 up to the merger's: no competing sequence.
                Assert.Equal(merger.State.Version, globals.Keys.Max());
                Assert.True(merger.State.Version >= total / options.BufferSize);
            }
            handled[0] += w1.Handled;
            handled[1] = w2.Handled;
            output.WriteLine($"workers handled {handled[0]} and {handled[1]}; merger: accepted {merger.State.Accepted}, replayed {merger.Rejected(RejectReason.Replayed)}, " +
                             $"duplicate partials {merger.State.DuplicatePartials}, {merger.State.Version} versions");
            return (handled, merger.Rejected(RejectReason.Replayed));
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
