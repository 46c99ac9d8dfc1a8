using System.IO.Compression;
using System.Security.Cryptography;

namespace TinyTrain.Compiler.Data;

/// <summary>
/// Writes and reads one set's directory: train/t10k images and labels as IDX.gz plus manifest.json. Reading goes
/// through a file-reader function so the same checks serve the cache on disk and the bundled resources.
/// Problems come out as InvalidDataException with the reason; the caller adds what to do.
/// </summary>
internal static class CacheFiles
{
    public static string ImagesFile(Split split) => split == Split.Train ? "train-images-idx3-ubyte.gz" : "t10k-images-idx3-ubyte.gz";
    public static string LabelsFile(Split split) => split == Split.Train ? "train-labels-idx1-ubyte.gz" : "t10k-labels-idx1-ubyte.gz";

    public static void Write(string directory, CatalogEntry entry, Dataset train, Dataset test, CompressionLevel level)
    {
        Directory.CreateDirectory(directory);
        var manifest = new CacheManifest
        {
            Name = entry.Name,
            Source = entry.NpmSpec,
            SourceIntegrity = entry.Integrity,
            SubsetOf = entry.BundledFrom,
            SplitRule = entry.IsBundled
                ? $"prefixes of {entry.BundledFrom}'s train and test splits"
                : entry.Layout == JsonLayout.FlatUnitFloats
                    ? "per class in file order: first floor(0.8 n) train, rest test"
                    : "per class in file order: first 6000 valid images train, rest test",
            ShuffleSeed = DataCatalog.ShuffleSeed,
            TrainCount = train.Count,
            TestCount = test.Count,
        };
        foreach (Dataset set in new[] { train, test })
        {
            manifest.Files.Add(WriteFile(directory, ImagesFile(set.Split), set.Count,
                Idx.EncodeImages(set.Images, set.Count, set.Rows, set.Cols), level));
            manifest.Files.Add(WriteFile(directory, LabelsFile(set.Split), set.Count, Idx.EncodeLabels(set.Labels), level));
        }
        // The manifest goes last: a directory with a manifest is a complete one.
        File.WriteAllBytes(Path.Combine(directory, CacheManifest.FileName), manifest.ToJson());
    }

    private static CacheFile WriteFile(string directory, string name, int count, byte[] idx, CompressionLevel level)
    {
        byte[] gz = Idx.Gzip(idx, level);
        File.WriteAllBytes(Path.Combine(directory, name), gz);
        return new CacheFile { Name = name, Count = count, Bytes = gz.Length, Sha256 = Convert.ToHexStringLower(SHA256.HashData(gz)) };
    }

    public static CacheManifest ReadManifest(CatalogEntry entry, Func<string, byte[]?> readFile)
    {
        byte[] json = readFile(CacheManifest.FileName) ?? throw new InvalidDataException($"{CacheManifest.FileName} is missing");
        CacheManifest manifest = CacheManifest.Parse(json);
        if (manifest.Name != entry.Name)
            throw new InvalidDataException($"{CacheManifest.FileName} describes '{manifest.Name}', not '{entry.Name}'");
        return manifest;
    }

    /// <summary>Reads one split, checking hashes, headers, counts and labels against the manifest.</summary>
    public static Dataset Read(CatalogEntry entry, Split split, Func<string, byte[]?> readFile)
    {
        CacheManifest manifest = ReadManifest(entry, readFile);
        (byte[] pixels, int count, int rows, int cols) = Idx.DecodeImages(ReadChecked(manifest, ImagesFile(split), readFile));
        byte[] labels = Idx.DecodeLabels(ReadChecked(manifest, LabelsFile(split), readFile));

        string imagesFile = ImagesFile(split);
        if (rows != 28 || cols != 28)
            throw new InvalidDataException($"{imagesFile} holds {rows}x{cols} images, not 28x28");
        int listed = manifest.Find(imagesFile)!.Count;
        if (count != listed)
            throw new InvalidDataException($"{imagesFile} holds {count} images; {CacheManifest.FileName} says {listed}");
        if (labels.Length != count)
            throw new InvalidDataException($"{LabelsFile(split)} holds {labels.Length} labels for {count} images");
        for (int i = 0; i < labels.Length; i++)
        {
            if (labels[i] >= entry.ClassNames.Length)
                throw new InvalidDataException($"{LabelsFile(split)} has label {labels[i]} at {i}, outside 0..{entry.ClassNames.Length - 1}");
        }
        return new Dataset(entry.Name, split, pixels, labels, (string[])entry.ClassNames.Clone());
    }

    private static byte[] ReadChecked(CacheManifest manifest, string name, Func<string, byte[]?> readFile)
    {
        CacheFile listed = manifest.Find(name) ?? throw new InvalidDataException($"{CacheManifest.FileName} does not list {name}");
        byte[] gz = readFile(name) ?? throw new InvalidDataException($"{name} is missing");
        string sha = Convert.ToHexStringLower(SHA256.HashData(gz));
        if (!string.Equals(sha, listed.Sha256, StringComparison.OrdinalIgnoreCase))
            throw new InvalidDataException($"{name} does not match its SHA-256 in {CacheManifest.FileName} ({gz.Length} bytes, {listed.Bytes} expected)");
        try
        {
            return Idx.Gunzip(gz);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{name} is not a valid gzip file: {e.Message}");
        }
    }
}
