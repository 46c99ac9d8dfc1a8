namespace TinyTrain.Fleet.Tests;

using TinyTrain.Fleet.Agent;
using TinyTrain.Fleet.Aggregation;
using TinyTrain.Fleet.Messages;
using TinyTrain.Fleet.Transport;

/// <summary>The whole path over a real broker in this process: devices -> aggregator -> retained global -> devices.</summary>
public sealed class EmbeddedBrokerTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task DevicesUpdatesBecomeASignedGlobalThatEveryDeviceApplies()
    {
        using var fleet = new FleetFixture(3);
        await using EmbeddedBroker broker = await EmbeddedBroker.StartAsync();
        var topics = new FleetTopics("f1", fleet.Model.ModelId, fleet.Model.Task);
        var store = new AggregatorStore(Path.Combine(fleet.Directory, "agg"));
        Aggregator aggregator = fleet.NewAggregator(new AggregatorOptions { BufferSize = 3 });
        store.Recover(aggregator);
        await using var service = new AggregatorService(broker.Endpoint, "agg-1", topics, aggregator, store);
        await service.StartAsync(Timeout);

        var agents = new List<DeviceAgent>();
        for (int i = 0; i < 3; i++)
        {
            string id = $"dev{i}";
            var agent = new DeviceAgent(id, fleet.Keys[id], FleetKeys.FromPublicKey(FleetKeys.PublicKey(fleet.AggregatorKey)), fleet.Model, topics,
                broker.Endpoint, Path.Combine(fleet.Directory, id));
            await agent.StartAsync(Timeout);
            agents.Add(agent);
        }
        // Sample-weighted: (1*10 + 2*10 + 6*20) / 40 = 3.75 on the weights.
        await agents[0].PublishUpdateAsync(FleetFixture.Delta(1), 10);
        await agents[1].PublishUpdateAsync(FleetFixture.Delta(2), 10);
        await agents[2].PublishUpdateAsync(FleetFixture.Delta(6), 20);

        foreach (DeviceAgent agent in agents)
            await Until(() => agent.StagedVersion == 1);
        var parameters = new byte[20];
        float[]? applied = agents[0].TryApplyGlobal(parameters);
        Assert.NotNull(applied);
        Assert.Equal(1, agents[0].GlobalVersion);
        Assert.Equal(3.75f, aggregator.State.Global[0], 2);  // the aggregator keeps full precision
        Assert.Equal(4f, applied![0]);  // the pack carries it rounded into the int8 weight
        Assert.Equal(4, (sbyte)parameters[0]);
        Assert.Equal(38, BitConverter.ToInt32(parameters, 8));  // 37.5 on the bias, rounded half away from zero
        Assert.Equal(3, aggregator.State.Aggregated.Count);
        foreach (DeviceAgent agent in agents) await agent.DisposeAsync();
    }

    [Fact]
    public async Task ForgedReplayedAndForeignUpdatesOverTheWireAreCountedNotApplied()
    {
        using var fleet = new FleetFixture(1);
        await using EmbeddedBroker broker = await EmbeddedBroker.StartAsync();
        var topics = new FleetTopics("f2", fleet.Model.ModelId, fleet.Model.Task);
        Aggregator aggregator = fleet.NewAggregator();
        var store = new AggregatorStore(Path.Combine(fleet.Directory, "agg"));
        store.Recover(aggregator);
        await using var service = new AggregatorService(broker.Endpoint, "agg-2", topics, aggregator, store);
        await service.StartAsync(Timeout);
        Assert.False(service.Shared);  // MQTTnet's broker has no shared subscriptions: the aggregator subscribed alone

        await using var attacker = new FleetConnection(broker.Endpoint, "attacker");
        await attacker.ConnectAsync(Timeout);
        byte[] good = fleet.Signed(FleetFixture.Update("dev0", 1, FleetFixture.Delta(1)));
        Assert.True(await attacker.PublishAsync(topics.Update("dev0"), good));
        Assert.True(await attacker.PublishAsync(topics.Update("dev0"), good));  // replayed
        Assert.True(await attacker.PublishAsync(topics.Update("dev0"),
            SignedMessage.Sign(FleetFixture.Update("dev0", 2, FleetFixture.Delta(50)), "dev0", FleetKeys.Create())));  // forged
        var other = fleet.Model with { ModelId = "ffffffffffffffff" };
        Assert.True(await attacker.PublishAsync(topics.Update("dev0"), fleet.Signed(FleetFixture.Update("dev0", 3, FleetFixture.Delta(1), model: other))));
        await Until(() => service.Handled == 4);
        Assert.Equal(1, aggregator.Rejected(RejectReason.Replayed));
        Assert.Equal(1, aggregator.Rejected(RejectReason.BadSignature));
        Assert.Equal(1, aggregator.Rejected(RejectReason.OtherModel));
        Assert.Equal(1, aggregator.State.Accepted);
    }

    [Fact]
    public async Task OutboxHoldsUpdatesWhileTheBrokerIsDownAndTheAggregatorRestartsWithoutLosingOrRepeating()
    {
        using var fleet = new FleetFixture(2);
        EmbeddedBroker broker = await EmbeddedBroker.StartAsync();
        int port = broker.Port;
        var topics = new FleetTopics("f3", fleet.Model.ModelId, fleet.Model.Task);
        string aggDir = Path.Combine(fleet.Directory, "agg");
        var options = new AggregatorOptions { BufferSize = 100 };
        var store = new AggregatorStore(aggDir);
        Aggregator aggregator = fleet.NewAggregator(options);
        store.Recover(aggregator);
        var service = new AggregatorService(broker.Endpoint, "agg-3", topics, aggregator, store);
        await service.StartAsync(Timeout);
        var aggregatorPublic = FleetKeys.FromPublicKey(FleetKeys.PublicKey(fleet.AggregatorKey));
        var agent = new DeviceAgent("dev0", fleet.Keys["dev0"], aggregatorPublic, fleet.Model, topics, broker.Endpoint, Path.Combine(fleet.Directory, "dev0"));
        await agent.StartAsync(Timeout);
        await agent.PublishUpdateAsync(FleetFixture.Delta(1), 5);
        await Until(() => aggregator.State.Accepted == 1);

        // The aggregator goes away (its session stays at the broker), the broker restarts, the device keeps learning.
        await service.DisposeAsync();
        await broker.DisposeAsync();
        await agent.PublishUpdateAsync(FleetFixture.Delta(2), 5);
        await agent.PublishUpdateAsync(FleetFixture.Delta(3), 5);
        Assert.Equal(2, agent.Outbox.Count);
        await agent.DisposeAsync();

        // Device reboots: the outbox is still there and goes out once the broker is back.
        await using EmbeddedBroker back = await EmbeddedBroker.StartAsync(port);
        var restartedStore = new AggregatorStore(aggDir);
        Aggregator restarted = fleet.NewAggregator(options, restartedStore.LoadSnapshot());
        restartedStore.Recover(restarted);
        Assert.Equal(1, restarted.State.Accepted);
        await using var service2 = new AggregatorService(back.Endpoint, "agg-3", topics, restarted, restartedStore);
        await service2.StartAsync(Timeout);
        await using var rebooted = new DeviceAgent("dev0", fleet.Keys["dev0"], aggregatorPublic, fleet.Model, topics, back.Endpoint, Path.Combine(fleet.Directory, "dev0"));
        await rebooted.StartAsync(Timeout);
        await Until(() => restarted.State.Accepted == 3);
        await Until(() => rebooted.Outbox.Count == 0);  // the restarted aggregator's receipt
        await service2.CloseRoundAsync();
        Assert.Equal(["dev0:1", "dev0:2", "dev0:3"], restarted.State.Aggregated);
    }

    [Fact]
    public async Task AnUpdateTheBrokerAcknowledgedAndLostIsSentAgainUntilReceiptedAndAggregatedOnce()
    {
        using var fleet = new FleetFixture(1);
        EmbeddedBroker broker = await EmbeddedBroker.StartAsync();
        int port = broker.Port;
        var topics = new FleetTopics("f4", fleet.Model.ModelId, fleet.Model.Task);
        string aggDir = Path.Combine(fleet.Directory, "agg");
        var options = new AggregatorOptions { BufferSize = 100 };
        var store = new AggregatorStore(aggDir);
        Aggregator aggregator = fleet.NewAggregator(options);
        store.Recover(aggregator);
        var service = new AggregatorService(broker.Endpoint, "agg-4", topics, aggregator, store);
        await service.StartAsync(Timeout);
        await using var agent = new DeviceAgent("dev0", fleet.Keys["dev0"], FleetKeys.FromPublicKey(FleetKeys.PublicKey(fleet.AggregatorKey)), fleet.Model, topics,
            broker.Endpoint, Path.Combine(fleet.Directory, "dev0")) { ResendAfter = TimeSpan.FromMilliseconds(300) };
        await agent.StartAsync(Timeout);
        await agent.PublishUpdateAsync(FleetFixture.Delta(1), 5);
        await Until(() => agent.Outbox.Count == 0);
        Assert.Equal(1, agent.ReceiptedThrough);
        long bytesOne = agent.BytesSent;

        // The aggregator goes away and the broker restarts with no memory of sessions or retained messages. The device
        // reconnects and sends update 2: the broker acknowledges it and, with no subscriber, drops it.
        await service.DisposeAsync();
        await broker.DisposeAsync();
        await using EmbeddedBroker back = await EmbeddedBroker.StartAsync(port);
        await Until(() => agent.IsConnected);
        await agent.PublishUpdateAsync(FleetFixture.Delta(2), 5);
        await Until(() => agent.Acknowledged == 2);   // sent now, or by the resend timer if the reconnect was still settling
        Assert.Equal(1, agent.Outbox.Count);  // acknowledged, not receipted: kept

        var restartedStore = new AggregatorStore(aggDir);
        Aggregator restarted = fleet.NewAggregator(options, restartedStore.LoadSnapshot());
        restartedStore.Recover(restarted);
        await using var service2 = new AggregatorService(back.Endpoint, "agg-4", topics, restarted, restartedStore);
        await service2.StartAsync(Timeout);
        // Sent again after ResendAfter, aggregated, receipted.
        await Until(() => agent.Outbox.Count == 0);
        Assert.Equal(2, agent.ReceiptedThrough);
        Assert.True(agent.BytesSent >= 3 * bytesOne, $"update 2 was sent {(agent.BytesSent - bytesOne) / (double)bytesOne} times, expected at least twice");
        await service2.CloseRoundAsync();
        Assert.Equal(["dev0:1", "dev0:2"], restarted.State.Aggregated);
    }

    // Generous: it returns as soon as the condition holds; a loaded CI machine can take many seconds to reconnect.
    internal static async Task Until(Func<bool> condition, double seconds = 45)
    {
        DateTime deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("condition not met in time");
            await Task.Delay(20);
        }
    }
}
