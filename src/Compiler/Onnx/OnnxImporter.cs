using Google.Protobuf;
using Onnx;

namespace TinyTrain.Compiler.Onnx;

using TinyTrain.Compiler.Graphs;

/// <summary>
/// Reads an ONNX model into a float graph: what <see cref="OnnxExporter"/> writes, and the usual
/// shapes of PyTorch exports of the same ops (see README.md in this folder for the list).
/// </summary>
public static class OnnxImporter
{
    /// <exception cref="TinyTrainException">The file cannot be read, is not an ONNX model, or uses
    /// something TinyTrain does not support; the message names the file, the node and what to do.</exception>
    public static Graph Import(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new TinyTrainException(OnnxFormat.OneLine($"{path}: file not found"), ex);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new TinyTrainException(OnnxFormat.OneLine($"{path}: cannot read the file: {ex.Message}"), ex);
        }
        return Import(bytes, path);
    }

    /// <param name="sourceName">The file name used in messages, and as the graph name when the
    /// model does not carry one.</param>
    public static Graph Import(Stream stream, string sourceName = "model.onnx")
    {
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        return Import(buffer.ToArray(), sourceName);
    }

    private static Graph Import(byte[] bytes, string source)
    {
        if (bytes.Length == 0)
            throw new TinyTrainException(OnnxFormat.OneLine($"{source}: the file is empty; it is not an ONNX model"));
        ModelProto model;
        try
        {
            model = ModelProto.Parser.ParseFrom(bytes);
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new TinyTrainException(OnnxFormat.OneLine(
                $"{source}: the file is damaged (truncated?) or is not an ONNX model: it is not valid protobuf; export the model again"), ex);
        }
        // Every ONNX model since IR version 3 names its opsets; a protobuf without them is something else.
        GraphProto? graph = model.Graph;
        string? missing = graph is null ? "graph" : model.IrVersion < 3 ? "IR version" : model.OpsetImport.Count == 0 ? "opset" : null;
        if (graph is null || missing is not null)
            throw new TinyTrainException(OnnxFormat.OneLine($"{source}: the file is damaged or is not an ONNX model: it holds no {missing}; export the model again"));

        string name = Path.GetFileNameWithoutExtension(source);
        foreach (StringStringEntryProto entry in model.MetadataProps)
            if (entry.Key == OnnxFormat.ModelNameKey && entry.Value.Length > 0)
                name = entry.Value;
        return new OnnxGraphReader(source, graph).Read(name);
    }
}
