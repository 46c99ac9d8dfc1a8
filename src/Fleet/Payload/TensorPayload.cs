namespace TinyTrain.Fleet.Payload;

using MessagePack;

/// <summary>
/// A device's delta on the wire: per tensor a name, an element count, a float32 scale and int8 values (value = q * scale),
/// about one byte per trained parameter. (The global adapter travels as an adapter pack: absolute values, full precision.)
/// </summary>
[MessagePackObject]
public sealed class TensorPayload
{
    [Key(0)] public string[] Names { get; set; } = [];
    [Key(1)] public int[] Counts { get; set; } = [];
    [Key(2)] public float[] Scales { get; set; } = [];
    [Key(3)] public byte[] Values { get; set; } = [];

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
        return Values.Length == layout.TotalCount;
    }

    /// <summary>True when every scale is a finite number (the values are int8).</summary>
    public bool IsFinite()
    {
        foreach (float s in Scales) if (!float.IsFinite(s)) return false;
        return true;
    }

    /// <summary>The flat float values (call Matches first).</summary>
    public float[] Decode()
    {
        var values = new float[Values.Length];
        int at = 0;
        for (int t = 0; t < Counts.Length; t++)
            for (int i = 0; i < Counts[t]; i++, at++)
                values[at] = (sbyte)Values[at] * Scales[t];
        return values;
    }
}
