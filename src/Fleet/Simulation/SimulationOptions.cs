namespace TinyTrain.Fleet.Simulation;

using TinyTrain.Fleet.Aggregation;
using TinyTrain.Fleet.Transport;

/// <summary>How a hostile device corrupts what it sends (it trains honestly first).</summary>
public enum MaliciousKind
{
    /// <summary>The delta times 20.</summary>
    Scaled,
    /// <summary>The delta times -5.</summary>
    SignFlipped,
    /// <summary>NaN in every value.</summary>
    NotANumber,
}

public sealed record SimulationOptions
{
    public int Devices { get; init; } = 10;
    /// <summary>The data set the devices stream (28x28 images; each device gets its own corruption and class skew).</summary>
    public string Data { get; init; } = FleetBaseModel.Data;
    public int Rounds { get; init; } = 5;
    public int Seed { get; init; }
    /// <summary>Share of devices that send hostile updates (cycling scaled, sign-flipped, NaN).</summary>
    public double MaliciousFraction { get; init; }
    /// <summary>Share of honest devices whose update arrives one round late (built on the previous global).</summary>
    public double LateFraction { get; init; } = 0.1;
    /// <summary>Labelled samples each device learns from per round.</summary>
    public int SamplesPerRound { get; init; } = 16;
    /// <summary>Held-out samples per device for the accuracy figures.</summary>
    public int EvalSamples { get; init; } = 100;
    public float LearningRate { get; init; } = 0.01f;
    /// <summary>Corruptions handed out to devices in turn, each at a severity drawn from [0.8, 1.2].</summary>
    public IReadOnlyList<string> Corruptions { get; init; } = ["fog", "brightness", "impulse-noise"];
    public string Board { get; init; } = "stm32f746-disco";
    /// <summary>The fleet name in topics; a fresh one per run, so runs against one broker do not meet.</summary>
    public string Fleet { get; init; } = "sim-" + Guid.NewGuid().ToString("N")[..8];
    /// <summary>Rounds are closed by the simulation once every update of the round has been handled.</summary>
    public AggregatorOptions Aggregation { get; init; } = new() { BufferSize = int.MaxValue };
    /// <summary>The broker; null starts an embedded one on loopback.</summary>
    public BrokerEndpoint? Broker { get; init; }
    /// <summary>Where devices keep their outboxes and the aggregator its journal; null: a fresh temp folder, removed after.</summary>
    public string? StateDirectory { get; init; }
}
