namespace TinyTrain.Fleet.Payload;

using MessagePack;

/// <summary>
/// Named tensors on the wire: per tensor a name and an element count, then either int8 values with a float32 scale per
/// tensor (value = q * scale; device deltas: about one byte per trained parameter) or float32 values (Bits = 32; the
/// global adapter, whose absolute int32 biases would lose too much in 8 bits).
/// </summary>
[MessagePackObject]
public sealed class TensorPayload
{
    [Key(0)] public string[] Names { get; set; } = [];
    [Key(1)] public int[] Counts { get; set; } = [];
    [Key(2)] public float[] Scales { get; set; } = [];
    [Key(3)] public byte[] Values { get; set; } = [];
    /// <summary>8: int8 values with per-tensor scales; 32: float32 little-endian values.</summary>
    [Key(4)] public int Bits { get; set; } = 8;

    /// <summary>The values as float32, unquantized (for the global adapter).</summary>
    public static TensorPayload EncodeFloat(ParamLayout layout, float[] values)
    {
        ArgumentNullException.ThrowIfNull(layout);
        ArgumentNullException.ThrowIfNull(values);
        if (values.Length != layout.TotalCount) throw new ArgumentException($"expected {layout.TotalCount} values, got {values.Length}", nameof(values));
        int n = layout.Slices.Count;
        var payload = new TensorPayload { Names = new string[n], Counts = new int[n], Scales = new float[n], Values = new byte[4 * values.Length], Bits = 32 };
        for (int t = 0; t < n; t++)
        {
            payload.Names[t] = layout.Slices[t].Name;
            payload.Counts[t] = layout.Slices[t].Count;
            payload.Scales[t] = 1f;
        }
        for (int i = 0; i < values.Length; i++)
            System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(payload.Values.AsSpan(4 * i), values[i]);
        return payload;
    }

    /// <summary>Quantizes <paramref name="values"/> (flat, in the layout's order) per tensor to int8 with a max-abs scale.</summary>
    public static TensorPayload Encode(ParamLayout layout, float[] values)
    {
        ArgumentNullException.ThrowIfNull(layout);
        ArgumentNullException.ThrowIfNull(values);
        if (values.Length != layout.TotalCount) throw new ArgumentException($"expected {layout.TotalCount} values, got {values.Length}", nameof(values));
        int n = layout.Slices.Count;
        var payload = new TensorPayload { Names = new string[n], Counts = new int[n], Scales = new float[n], Values = new byte[values.Length] };
        int at = 0;
        for (int t = 0; t < n; t++)
        {
            ParamSlice slice = layout.Slices[t];
            payload.Names[t] = slice.Name;
            payload.Counts[t] = slice.Count;
            float max = 0f;
            bool finite = true;
            for (int i = 0; i < slice.Count; i++)
            {
                float v = values[at + i];
                if (!float.IsFinite(v)) finite = false;
                else if (MathF.Abs(v) > max) max = MathF.Abs(v);
            }
            // A non-finite value is carried as a NaN scale: the receiver must see it and refuse, not a silently clamped value.
            float scale = !finite ? float.NaN : max == 0f ? 1f : max / 127f;
            payload.Scales[t] = scale;
            for (int i = 0; i < slice.Count; i++)
            {
                float q = finite ? MathF.Round(values[at + i] / scale, MidpointRounding.AwayFromZero) : 0f;
                payload.Values[at + i] = (byte)(sbyte)Math.Clamp(q, -127f, 127f);
            }
            at += slice.Count;
        }
        return payload;
    }

    /// <summary>True when the tensors have exactly the layout's names and counts, in order.</summary>
    public bool Matches(ParamLayout layout)
    {
        if (Names is null || Counts is null || Scales is null || Values is null) return false;
        if (Names.Length != layout.Slices.Count || Counts.Length != Names.Length || Scales.Length != Names.Length) return false;
        for (int t = 0; t < Names.Length; t++)
            if (Names[t] != layout.Slices[t].Name || Counts[t] != layout.Slices[t].Count) return false;
        return Bits == 8 ? Values.Length == layout.TotalCount : Bits == 32 && Values.Length == 4 * layout.TotalCount;
    }

    /// <summary>True when every scale and value is a finite number (call Matches first).</summary>
    public bool IsFinite()
    {
        foreach (float s in Scales) if (!float.IsFinite(s)) return false;
        if (Bits == 32)
            for (int i = 0; i < Values.Length; i += 4)
                if (!float.IsFinite(System.Buffers.Binary.BinaryPrimitives.ReadSingleLittleEndian(Values.AsSpan(i)))) return false;
        return true;
    }

    /// <summary>The flat float values (call Matches first).</summary>
    public float[] Decode()
    {
        if (Bits == 32)
        {
            var raw = new float[Values.Length / 4];
            for (int i = 0; i < raw.Length; i++) raw[i] = System.Buffers.Binary.BinaryPrimitives.ReadSingleLittleEndian(Values.AsSpan(4 * i));
            return raw;
        }
        var values = new float[Values.Length];
        int at = 0;
        for (int t = 0; t < Counts.Length; t++)
            for (int i = 0; i < Counts[t]; i++, at++)
                values[at] = (sbyte)Values[at] * Scales[t];
        return values;
    }
}
