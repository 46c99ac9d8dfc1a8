namespace TinyTrain.Boards.RaspberryPi;

using TinyTrain.Boards.RaspberryPi.Simulation;

/// <summary>How the host runs (from the command line; see Program.Usage).</summary>
public sealed class HostOptions
{
    public string PlanPath { get; set; } = "";
    public string BoardId { get; set; } = "raspberry-pi-zero-2w";
    public string StatePath { get; set; } = "tinytrain-state.bin";
    public bool Simulate { get; set; }
    public bool LearnFromLabels { get; set; } = true;
    public bool AlignGravity { get; set; } = true;

    /// <summary>Runtime test-time adaptation (a plan compiled with --update tta:...): one label-free step per trusted window.</summary>
    public bool AdaptWithoutLabels { get; set; }

    /// <summary>False until --adapt is given: the host then picks by the plan (tta+gravity for a tta: plan, both otherwise).</summary>
    public bool AdaptGiven { get; set; }
    public float LearningRate { get; set; } = 0.02f;
    public ulong Seed { get; set; } = 1;
    public int LabelEvery { get; set; } = 2;
    public int I2cBus { get; set; } = 1;
    public int ButtonPin { get; set; } = 17;
    public int LedPin { get; set; } = 27;

    /// <summary>Windows to run; 0 = until stopped (real sensor) or the end of the simulated stream.</summary>
    public int Windows { get; set; }

    /// <summary>Save the state after this many training steps (and at exit).</summary>
    public int SaveEvery { get; set; } = 20;

    /// <summary>The simulated stream's segments.</summary>
    public List<WorldSegment> Segments { get; } = [];

    /// <summary>Simulated faults: I2C errors or a stuck value from a sample tick, for a number of ticks.</summary>
    public long ErrorFrom { get; set; } = -1;
    public long ErrorTicks { get; set; }
    public long StuckFrom { get; set; } = -1;
    public long StuckTicks { get; set; }

    /// <summary>Fleet link (--fleet mqtt://host:port | embedded[:port]); null: no fleet, nothing sent.</summary>
    public string? FleetUrl { get; set; }
    public string FleetId { get; set; } = "default";
    public string DeviceId { get; set; } = Environment.MachineName.ToLowerInvariant();
    public string? AggregatorKeyPath { get; set; }

    /// <summary>Publish an update after this many labelled adaptations (and at exit).</summary>
    public int FleetEvery { get; set; } = 20;

    /// <summary>When set: exit 3 unless the accuracy over the last quarter of the last segment reaches this.</summary>
    public double? RequireRecovery { get; set; }
}
