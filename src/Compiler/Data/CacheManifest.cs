using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace TinyTrain.Compiler.Data;

/// <summary>
/// manifest.json beside a set's IDX files: where the data came from, how it was split and shuffled, and the
/// SHA-256 of each stored .gz file (as on disk, so `sha256sum` agrees), checked on every load.
/// </summary>
internal sealed class CacheManifest
{
    public const int CurrentFormat = 1;
    public const string FileName = "manifest.json";

    public int Format { get; set; } = CurrentFormat;
    public string Name { get; set; } = "";
    public string Source { get; set; } = "";
    public string SourceIntegrity { get; set; } = "";
    public string? SubsetOf { get; set; }
    public string SplitRule { get; set; } = "";
    public int ShuffleSeed { get; set; }
    public int TrainCount { get; set; }
    public int TestCount { get; set; }
    public List<CacheFile> Files { get; set; } = [];

    // The relaxed encoder keeps '+' in base64 integrities readable instead of writing \u002B.
    private static readonly ManifestJson Writer =
        new(new JsonSerializerOptions(ManifestJson.Default.Options) { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });

    public CacheFile? Find(string fileName) => Files.Find(f => f.Name == fileName);

    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(this, Writer.CacheManifest);

    /// <summary>Parses manifest.json; throws InvalidDataException when it is not one.</summary>
    public static CacheManifest Parse(byte[] json)
    {
        CacheManifest? manifest;
        try
        {
            manifest = JsonSerializer.Deserialize(json, ManifestJson.Default.CacheManifest);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{FileName} is not valid JSON ({e.Message})");
        }
        if (manifest is null || manifest.Files.Count == 0)
            throw new InvalidDataException($"{FileName} lists no files");
        if (manifest.Format != CurrentFormat)
            throw new InvalidDataException($"{FileName} has format {manifest.Format}; this TinyTrain reads format {CurrentFormat}");
        return manifest;
    }
}

internal sealed class CacheFile
{
    public string Name { get; set; } = "";
    public int Count { get; set; }
    public long Bytes { get; set; }
    public string Sha256 { get; set; } = "";
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(CacheManifest))]
internal sealed partial class ManifestJson : JsonSerializerContext;
