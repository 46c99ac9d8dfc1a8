namespace TinyTrain.Compiler.Quantization;

using TinyTrain.Compiler.Graphs;

public enum Activation { None, Relu, Relu6 }

public enum QOpKind { Conv, DepthwiseConv, FullyConnected, Add, AvgPool, GlobalAvgPool }

/// <summary>One int8 tensor of the lowered model: per-sample shape and per-tensor asymmetric quantization.</summary>
public sealed class QTensor
{
    public required int Id { get; init; }
    public required string Name { get; init; }
    public required Shape Shape { get; init; }
    /// <summary>The float graph node whose output this tensor holds (after fused activations).</summary>
    public required int SourceNode { get; init; }
    public float Min { get; set; }
    public float Max { get; set; }
    public float Scale { get; set; }
    public int ZeroPoint { get; set; }

    public float Dequantize(sbyte q) => (q - ZeroPoint) * Scale;
}

/// <summary>
/// One op of the lowered model. Float fields come from the folded graph; the int8 fields are filled
/// by the quantizer. Weights: conv (OC, IC/G, K, K), depthwise (C, 1, K, K), fully connected (OUT, IN).
/// </summary>
public sealed class QOp
{
    public required QOpKind Kind { get; init; }
    public required string Name { get; init; }
    public required int[] Inputs { get; init; }
    public required int Output { get; init; }
    public Activation Activation { get; init; }
    public int Kernel { get; init; }
    public int Stride { get; init; } = 1;
    public int Padding { get; init; }
    public int Groups { get; init; } = 1;
    public float[]? Weight { get; init; }
    public float[]? Bias { get; init; }
    public int OutChannels { get; init; }
    /// <summary>Smallest per-channel weight scale (see Node.WeightScaleFloor).</summary>
    public float WeightScaleFloor { get; init; }

    // int8 form (TFLite): weights symmetric per output channel, bias int32 at s_x * s_w[c].
    public sbyte[]? WeightQ { get; set; }
    public float[]? WeightScale { get; set; }
    public int[]? BiasQ { get; set; }
    public int[]? Multiplier { get; set; }
    public int[]? Shift { get; set; }
    public int ActMin { get; set; } = -128;
    public int ActMax { get; set; } = 127;
    /// <summary>Add: input0Multiplier, input0Shift, input1Multiplier, input1Shift, outputMultiplier, outputShift, leftShift.</summary>
    public int[]? AddParams { get; set; }

    public long Macs(IReadOnlyList<QTensor> tensors)
    {
        Shape y = tensors[Output].Shape;
        return Kind switch
        {
            QOpKind.Conv or QOpKind.DepthwiseConv or QOpKind.FullyConnected => (long)Weight!.Length * y.H * y.W,
            _ => 0,
        };
    }
}

/// <summary>The int8-ready model: ops in execution order over tensors; tensor 0 is the input.</summary>
public sealed class QuantizedModel
{
    public QuantizedModel(string name, List<QTensor> tensors, List<QOp> ops, int output)
    {
        Name = name;
        Tensors = tensors;
        Ops = ops;
        Output = output;
    }

    public string Name { get; }
    public List<QTensor> Tensors { get; }
    public List<QOp> Ops { get; }
    public int Input => 0;
    public int Output { get; }
    public int NumClasses => Tensors[Output].Shape.Size;
    public bool IsQuantized => Ops.All(o => o.Kind is QOpKind.AvgPool or QOpKind.GlobalAvgPool || o.Multiplier is not null || o.AddParams is not null);
}
