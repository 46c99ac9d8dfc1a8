namespace TinyTrain.Compiler.Learning;

using TinyTrain.Compiler.Graphs;
using TinyTrain.Runtime.Plans;
using RtOpKind = TinyTrain.Runtime.Plans.OpKind;

/// <summary>A tensor of the whole training step: int8 activations, 1-bit masks, float32 gradients.</summary>
public sealed class PTensor
{
    public required int Id { get; init; }
    public required string Name { get; init; }
    public required ElementType Type { get; init; }
    public required Shape Shape { get; init; }
    public required TensorRole Role { get; init; }
    public float Scale { get; init; }
    public int ZeroPoint { get; init; }
    /// <summary>Inside a patch stage: the tensor exists only as tiles in the stage's tile buffer, never whole.</summary>
    public bool Tiled { get; init; }
    /// <summary>The model input, streamed band by band into the first patch stage (PatchStages, --stream-input): never in the arena.</summary>
    public bool Streamed { get; init; }
    /// <summary>Whether the tensor takes arena bytes of its own (not tiled, not streamed).</summary>
    public bool InArena => !Tiled && !Streamed;

    public int Bytes => Type switch
    {
        ElementType.Int8 => Shape.Size,
        ElementType.Bits => (Shape.Size + 7) / 8,
        _ => 4 * Shape.Size,
    };
}

/// <summary>
/// Where an op's weights, bias or per-channel data come from: a constant (Flash), or a writable
/// parameter slot (SRAM) that the runtime fills from its initial constant at bind.
/// The same byte[] object used twice is stored once.
/// </summary>
public sealed class DataRef
{
    private DataRef(byte[] constant, ParamSlot? param)
    {
        Constant = constant;
        Param = param;
    }

    public byte[] Constant { get; }
    public ParamSlot? Param { get; }
    public bool IsParam => Param is not null;

    public static DataRef Const(byte[] bytes) => new(bytes, null);
    public static DataRef InParams(ParamSlot slot) => new(slot.Initial, slot);
}

/// <summary>A writable parameter (trained weights or biases) in the params region.</summary>
public sealed class ParamSlot(string name, byte[] initial)
{
    public string Name { get; } = name;
    public byte[] Initial { get; } = initial;
    /// <summary>A 1x1 conv's weights that train only their first SliceChannels of SliceInChannels input channels, when
    /// the compiler may keep only that slice writable (Planning.TrainedSlices); 0 otherwise.</summary>
    public int SliceChannels { get; set; }
    public int SliceInChannels { get; set; }
    public int SliceBytes => Initial.Length / SliceInChannels * SliceChannels;
}

/// <summary>One op of the step program; emitted one to one as a plan op record.</summary>
public sealed class POp
{
    public required RtOpKind Kind { get; init; }
    public required OpPhase Phase { get; init; }
    public required string Name { get; init; }
    public required int Input0 { get; init; }
    public int Input1 { get; init; } = -1;
    /// <summary>The tensor written, or -1 for update ops (they write parameters, not tensors).</summary>
    public required int Output { get; init; }
    /// <summary>Forward conv / fully connected ops of a training plan: the 1-bit mask tensor they write, or -1.</summary>
    public int Scratch { get; init; } = -1;
    public DataRef? Weights { get; init; }
    public DataRef? Bias { get; init; }
    /// <summary>Forward ops: Q31 multipliers; training ops: float32 weight scales.</summary>
    public DataRef? Multiplier { get; init; }
    public DataRef? Shift { get; init; }
    public int[] Args { get; init; } = Array.Empty<int>();
    /// <summary>The output may take the buffer of an input that dies at this op (elementwise ops).</summary>
    public bool MayRunInPlace { get; init; }
    /// <summary>Float32 momentum entries this op keeps in the state region; its offset goes to Args[StateArg].</summary>
    public int StateFloats { get; init; }
    public int StateArg { get; init; } = -1;
    public long Macs { get; init; }
    /// <summary>The forward op of the lowered model this op belongs to (for reports), or -1.</summary>
    public int Layer { get; init; } = -1;
}

/// <summary>The whole step: forward ops (inference), then the derived backward and update ops.</summary>
public sealed class PlanProgram
{
    public required string Name { get; init; }
    public required List<PTensor> Tensors { get; init; }
    public required List<POp> Ops { get; init; }
    public required int Input { get; init; }
    public required int Output { get; init; }
    public required TrainableSet Trainable { get; init; }
    /// <summary>The patch stage the program starts with, or null (see Planning.PatchStages).</summary>
    public Planning.PatchInfo? Patch { get; init; }
    /// <summary>Patch stages further in (frozen conv chains past the first stage; see Planning.PatchStages), in order.</summary>
    public IReadOnlyList<Planning.PatchInfo> MidStages { get; init; } = [];
    public int NumClasses => Tensors[Output].Shape.Size;
}
