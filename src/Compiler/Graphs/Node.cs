namespace TinyTrain.Compiler.Graphs;

/// <summary>
/// One op of the float graph. Attributes that an op kind does not use stay at their defaults.
/// Parameters: Conv2d and Linear use Weight and Bias (Bias may be null); BatchNorm uses Weight as
/// gamma, Bias as beta, plus RunningMean and RunningVar.
/// </summary>
public sealed class Node
{
    public required int Id { get; init; }
    public required string Name { get; init; }
    public required OpKind Kind { get; init; }
    public required int[] Inputs { get; init; }
    /// <summary>Output shape of one sample.</summary>
    public required Shape Shape { get; init; }

    // Conv2d, AvgPool (Kernel, Stride, Padding). Kernels are square.
    public int Kernel { get; init; }
    public int Stride { get; init; } = 1;
    public int Padding { get; init; }
    public int Groups { get; init; } = 1;

    // BatchNorm
    public float Epsilon { get; init; } = 1e-5f;
    public float Momentum { get; init; } = 0.1f;

    // Hints for parameters and outputs that start at zero or at the identity (adapters inserted by a
    // rewrite): calibration and quantization cannot see the range they will need once trained.
    /// <summary>Smallest per-channel int8 weight scale (0 = from the weights alone).</summary>
    public float WeightScaleFloor { get; init; }
    /// <summary>When set, the output's calibrated range is widened to RangeFraction x the range of the tensor of this name
    /// (a negative RangeFraction: to +-|RangeFraction| x the larger side of that range, symmetric around zero).</summary>
    public string? RangeLike { get; init; }
    public float RangeFraction { get; init; } = 1f;

    public Tensor? Weight { get; set; }
    public Tensor? Bias { get; set; }
    public Tensor? RunningMean { get; set; }
    public Tensor? RunningVar { get; set; }

    public bool IsDepthwise => Kind == OpKind.Conv2d && Groups > 1 && Groups == Shape.C && Weight!.Dims[1] == 1;

    /// <summary>The trainable tensors of this node, in a fixed order.</summary>
    public IEnumerable<Tensor> Parameters()
    {
        if (Weight is not null) yield return Weight;
        if (Bias is not null) yield return Bias;
    }

    public override string ToString() => $"{Name} ({Kind}) -> {Shape}";
}
