namespace TinyTrain.Compiler.Graphs;

/// <summary>The small set of float ops every model in TinyTrain is built from.</summary>
public enum OpKind
{
    Input,
    Conv2d,        // groups: 1 = standard, C = depthwise; a 1x1 kernel is pointwise
    Linear,
    BatchNorm,
    Relu,
    Relu6,
    Add,           // residual add of two tensors of one shape
    AvgPool,
    GlobalAvgPool,
    Flatten,
}
