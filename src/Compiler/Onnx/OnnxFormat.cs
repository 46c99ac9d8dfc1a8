namespace TinyTrain.Compiler.Onnx;

/// <summary>The conventions the exporter writes and the importer relies on.</summary>
internal static class OnnxFormat
{
    public const long IrVersion = 8;
    public const long Opset = 13;
    public const string InputName = "input";
    public const string OutputName = "logits";
    public const string BatchDim = "batch";
    public const string ModelNameKey = "tinytrain.model";

    /// <summary>
    /// doc_string of a Flatten or Reshape the exporter adds only because ONNX wants a 2-D input for
    /// Gemm (or a 4-D one for Conv); our graph has no node for it, so the importer drops it again.
    /// </summary>
    public const string ImplicitReshape = "tinytrain:implicit-reshape";

    // ONNX TensorProto.DataType values.
    public const int Float = 1;
    public const int Int32 = 6;
    public const int Int64 = 7;

    public static string TypeName(int dataType) =>
        Enum.IsDefined(typeof(global::Onnx.TensorProto.Types.DataType), dataType)
            ? ((global::Onnx.TensorProto.Types.DataType)dataType).ToString().ToUpperInvariant()
            : $"type {dataType}";

    /// <summary>Escapes control characters: names from a damaged file must not break the one-line message.</summary>
    public static string OneLine(string message)
    {
        bool clean = true;
        foreach (char c in message) clean &= !char.IsControl(c);
        if (clean) return message;
        var sb = new System.Text.StringBuilder(message.Length + 16);
        foreach (char c in message)
        {
            if (char.IsControl(c)) sb.Append($"\\x{(int)c:x2}");
            else sb.Append(c);
        }
        return sb.ToString();
    }
}
