namespace TinyTrain.Runtime.Ood;

using TinyTrain.Runtime.Execution;

/// <summary>
/// A per-sample out-of-distribution score, read from the executor's arena after <see cref="Executor.Invoke"/>:
/// higher = more in-distribution. Bind (the constructor) may allocate; <see cref="Score"/> allocates nothing.
/// </summary>
public interface IOodScorer
{
    /// <summary>Short name for reports: "msp", "energy", "hd-int8", "hd-bits".</summary>
    string Name { get; }

    /// <summary>SRAM the scorer needs beside the plan's arena: its stored state (prototypes) and its scratch.</summary>
    long SramBytes { get; }

    /// <summary>The score of the sample the executor ran last.</summary>
    float Score(Executor executor);
}
