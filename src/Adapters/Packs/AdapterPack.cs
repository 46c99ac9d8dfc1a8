namespace TinyTrain.Adapters.Packs;

/// <summary>Element type of a pack tensor: int8 weights, int32 biases, float32 values (scales).</summary>
public enum PackElement : byte
{
    Int8 = 1,
    Int32 = 2,
    Float32 = 3,
}

/// <summary>One named parameter tensor of an adapter: its shape and its raw little-endian bytes.</summary>
public sealed record PackTensor(string Name, PackElement Type, int[] Shape, byte[] Data)
{
    public int ElementCount
    {
        get
        {
            long n = 1;
            foreach (int d in Shape) n *= d;
            return (int)n;
        }
    }

    public static int ElementSize(PackElement type) => type == PackElement.Int8 ? 1 : 4;

    public string ShapeText => string.Join('x', Shape);
}

/// <summary>
/// The parameters of one adapter for one task: the unit a device stores, swaps and shares with
/// its fleet. <see cref="Identity"/> names the base model it belongs to (a hash of the plan's frozen
/// constants, see <see cref="AdapterLayout"/>); a pack is applied only to a plan with the same
/// identity and kind whose writable parameters have exactly the pack's names and shapes.
/// Serialized with MessagePack by <see cref="PackCodec"/>.
/// </summary>
public sealed record AdapterPack
{
    public required string Identity { get; init; }
    /// <summary>The adapter kind, as in `--update adapter:KIND` (bias, clr, residual, lora:R), or the plan's trainable set.</summary>
    public required string Kind { get; init; }
    /// <summary>Counts the updates of this task's adapter (1 for the first one learned).</summary>
    public int Version { get; init; } = 1;
    public required string Task { get; init; }
    /// <summary>Labelled samples the adapter learned from.</summary>
    public long Samples { get; init; }
    public DateTime CreatedUtc { get; init; }
    public required IReadOnlyList<PackTensor> Tensors { get; init; }

    /// <summary>Parameters the pack carries (elements of all its tensors).</summary>
    public long ParameterCount
    {
        get
        {
            long n = 0;
            foreach (PackTensor t in Tensors) n += t.ElementCount;
            return n;
        }
    }

    public long PayloadBytes
    {
        get
        {
            long n = 0;
            foreach (PackTensor t in Tensors) n += t.Data.Length;
            return n;
        }
    }

    public byte[] Serialize() => PackCodec.Serialize(this);

    /// <summary>Reads a pack; refuses damaged, truncated, foreign or malformed bytes with a <see cref="TinyTrainException"/>.</summary>
    public static AdapterPack Deserialize(byte[] bytes, string source = "pack") => PackCodec.Deserialize(bytes, source);
}
