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
        Assert.Equal(3.75f, applied![0], 2);
        Assert.Equal(4, (sbyte)parameters[0]);  // 3.75 rounded into the int8 weight
        Assert.Equal(38, BitConverter.ToInt32(parameters, 8));  // 37.5 on the bias, rounded half away from zero
        Assert.Equal(3, aggregator.State.Aggregated.Count);
        foreach (DeviceAgent agent in agents) await agent.DisposeAsync();
    }

    internal static async Task Until(Func<bool> condition, double seconds = 15)
    {
        DateTime deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("condition not met in time");
            await Task.Delay(20);
        }
    }
}
