namespace TinyTrain.Fleet.Payload;

using System.Buffers.Binary;
using TinyTrain.Adapters.Packs;
using TinyTrain.Runtime.Plans;

/// <summary>One trained tensor inside the runtime's writable params region: int8 weights or int32 biases.</summary>
public sealed record ParamSlice(string Name, ElementType Type, int ByteOffset, int Count)
{
    /// <summary>The tensor's shape as an adapter pack names it; [Count] when not given.</summary>
    public int[] Shape { get; init; } = [Count];
}

/// <summary>
/// The adapter a plan trains (its writable parameters, as the adapter pack layout names and shapes them) as one
/// flat vector: what devices learn, what updates carry as deltas and what the aggregator combines. Values cross it as
/// float arrays in the integer units of the params region.
/// </summary>
public sealed class ParamLayout
{
    private ParamLayout(IReadOnlyList<ParamSlice> slices)
    {
        Slices = slices;
        int total = 0;
        foreach (ParamSlice s in slices) total += s.Count;
        TotalCount = total;
    }

    public IReadOnlyList<ParamSlice> Slices { get; }

    /// <summary>Elements over all slices.</summary>
    public int TotalCount { get; }

    /// <summary>A layout of the given slices, in order (for tests and tools; FromPlan reads a plan's).</summary>
    public static ParamLayout Create(IReadOnlyList<ParamSlice> slices)
    {
        ArgumentNullException.ThrowIfNull(slices);
        if (slices.Count == 0) throw new ArgumentException("a layout needs at least one tensor", nameof(slices));
        return new ParamLayout([.. slices]);
    }

    /// <summary>The layout of an adapter pack layout (AdapterLayout.Of(plan)).</summary>
    public static ParamLayout FromAdapter(AdapterLayout adapter)
    {
        ArgumentNullException.ThrowIfNull(adapter);
        if (adapter.Entries.Count == 0)
            throw new TinyTrainException($"model '{adapter.Model}' trains nothing, so a fleet has nothing to share; compile it with --update bias:K, sparse:..., full or adapter:KIND");
        var slices = new List<ParamSlice>();
        foreach (ParamEntry e in adapter.Entries)
        {
            ElementType type = e.Type switch
            {
                PackElement.Int8 => ElementType.Int8,
                PackElement.Int32 => ElementType.Int32,
                _ => throw new TinyTrainException($"adapter tensor '{e.Name}' is {e.Type}; the fleet shares int8 and int32 tensors only"),
            };
            slices.Add(new ParamSlice(e.Name, type, e.Offset, e.Bytes / PackTensor.ElementSize(e.Type)) { Shape = (int[])e.Shape.Clone() });
        }
        return new ParamLayout(slices);
    }

    /// <summary>Reads every slice of <paramref name="parameters"/> (the executor's Params) into one flat array.</summary>
    public float[] Read(byte[] parameters)
    {
        var values = new float[TotalCount];
        int at = 0;
        foreach (ParamSlice s in Slices)
            for (int i = 0; i < s.Count; i++)
                values[at++] = s.Type == ElementType.Int8 ? (sbyte)parameters[s.ByteOffset + i]
                    : BinaryPrimitives.ReadInt32LittleEndian(parameters.AsSpan(s.ByteOffset + 4 * i));
        return values;
    }

    /// <summary>Writes <paramref name="values"/> (rounded to nearest, clamped to the type's range) into <paramref name="parameters"/>.</summary>
    public void Write(float[] values, byte[] parameters)
    {
        if (values.Length != TotalCount) throw new ArgumentException($"expected {TotalCount} values, got {values.Length}", nameof(values));
        int at = 0;
        foreach (ParamSlice s in Slices)
            for (int i = 0; i < s.Count; i++)
            {
                double v = Math.Round((double)values[at++], MidpointRounding.AwayFromZero);
                if (s.Type == ElementType.Int8)
                    parameters[s.ByteOffset + i] = (byte)(sbyte)Math.Clamp(v, -127, 127);
                else
                    BinaryPrimitives.WriteInt32LittleEndian(parameters.AsSpan(s.ByteOffset + 4 * i), (int)Math.Clamp(v, int.MinValue, int.MaxValue));
            }
    }
}
