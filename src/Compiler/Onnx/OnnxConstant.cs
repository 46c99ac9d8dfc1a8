using System.Buffers.Binary;
using Onnx;

namespace TinyTrain.Compiler.Onnx;

/// <summary>
/// A tensor whose value is known at import time: an initializer, a Constant node's output, or a
/// shape computed from the input's shape. Floats for weights, Ints for shapes and axes.
/// </summary>
internal sealed class OnnxConstant
{
    /// <summary>Stands for the (unknown) batch size in shapes computed at import time.</summary>
    public const long Batch = long.MinValue;

    // Weights larger than this are refused before anything is allocated for them.
    private const long MaxElements = 1L << 28;

    public OnnxConstant(long[] dims, float[]? floats, long[]? ints)
    {
        Dims = dims;
        Floats = floats;
        Ints = ints;
    }

    public long[] Dims { get; }
    public float[]? Floats { get; }
    public long[]? Ints { get; }
    public int Count => Floats?.Length ?? Ints!.Length;

    public string DimsText => $"[{string.Join(", ", Dims)}]";

    public static OnnxConstant Scalar(float value) => new(Array.Empty<long>(), new[] { value }, null);

    public static OnnxConstant Vector(float[] values) => new(new long[] { values.Length }, values, null);

    public static OnnxConstant Scalar(long value) => new(Array.Empty<long>(), null, new[] { value });

    public static OnnxConstant Vector(long[] values) => new(new long[] { values.Length }, null, values);

    /// <summary>Decodes a TensorProto; <paramref name="fail"/> makes the exception for a message.</summary>
    public static OnnxConstant Read(TensorProto t, string what, Func<string, TinyTrainException> fail)
    {
        if (t.DataLocation == TensorProto.Types.DataLocation.External)
            throw fail($"{what} keeps its data in an external file; TinyTrain needs the weights inside the .onnx file (export without external data)");
        var dims = new long[t.Dims.Count];
        long count = 1;
        for (int i = 0; i < dims.Length; i++)
        {
            dims[i] = t.Dims[i];
            if (dims[i] < 0 || dims[i] > MaxElements)
                throw fail($"{what} has an invalid dimension {dims[i]} in [{string.Join(", ", t.Dims)}]");
            count *= dims[i];
            if (count > MaxElements)
                throw fail($"{what} of shape [{string.Join(", ", t.Dims)}] is too large");
        }
        int n = (int)count;
        int width = t.DataType switch
        {
            OnnxFormat.Float or OnnxFormat.Int32 => 4,
            OnnxFormat.Int64 => 8,
            _ => throw fail($"{what} has element type {OnnxFormat.TypeName(t.DataType)}; TinyTrain reads float32 weights (and int64 shapes): export the model in float32"),
        };
        int stored = t.DataType switch
        {
            OnnxFormat.Float => t.FloatData.Count,
            OnnxFormat.Int64 => t.Int64Data.Count,
            _ => t.Int32Data.Count,
        };
        // raw_data, when present, holds the values little-endian; otherwise the typed field does.
        ReadOnlySpan<byte> raw = t.RawData.Span;
        if (raw.Length > 0) CheckLength(raw.Length, (long)width * n, "bytes", what, dims, fail);
        else CheckLength(stored, n, "values", what, dims, fail);

        if (t.DataType == OnnxFormat.Float)
        {
            var floats = new float[n];
            for (int i = 0; i < n; i++)
                floats[i] = raw.Length > 0 ? BinaryPrimitives.ReadSingleLittleEndian(raw.Slice(4 * i)) : t.FloatData[i];
            return new OnnxConstant(dims, floats, null);
        }
        var ints = new long[n];
        for (int i = 0; i < n; i++)
        {
            if (raw.Length == 0) ints[i] = t.DataType == OnnxFormat.Int64 ? t.Int64Data[i] : t.Int32Data[i];
            else ints[i] = width == 8 ? BinaryPrimitives.ReadInt64LittleEndian(raw.Slice(8 * i)) : BinaryPrimitives.ReadInt32LittleEndian(raw.Slice(4 * i));
        }
        return new OnnxConstant(dims, null, ints);
    }

    private static void CheckLength(long actual, long expected, string unit, string what, long[] dims, Func<string, TinyTrainException> fail)
    {
        if (actual != expected)
            throw fail($"{what} of shape [{string.Join(", ", dims)}] should hold {expected} {unit} of data but holds {actual}; the file is damaged");
    }
}
