using TinyTrain.Compiler.Onnx;
using TinyTrain.Compiler.Zoo;

namespace TinyTrain.Cli;

/// <summary>Resolves --model: a zoo name, or a path to an .onnx file.</summary>
internal static class ModelSource
{
    public static TinyTrain.Compiler.Graphs.Graph Load(string model, int? resolution, int? classes, int seed = 0)
    {
        bool looksLikeFile = model.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase) || model.Contains('/') || model.Contains('\\');
        if (!looksLikeFile) return ModelZoo.Build(model, resolution, classes, seed);
        if (!File.Exists(model))
            throw new TinyTrainException($"{model}: no such file; give a zoo model ({string.Join(", ", ModelZoo.Names)}) or an existing .onnx file");
        if (resolution is not null || classes is not null)
            throw new UsageException("--resolution and --classes apply to zoo models; an ONNX file has its own shape");
        return OnnxImporter.Import(model);
    }
}
