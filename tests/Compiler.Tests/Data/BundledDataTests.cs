using TinyTrain.Compiler.Data;

namespace TinyTrain.Compiler.Tests.Data;

/// <summary>The bundled subsets embedded in TinyTrain.Compiler: no network, no cache.</summary>
public class BundledDataTests
{
    [Theory]
    [InlineData("mnist-mini", Split.Train, 3000)]
    [InlineData("mnist-mini", Split.Test, 1000)]
    [InlineData("fashion-mnist-mini", Split.Train, 3000)]
    [InlineData("fashion-mnist-mini", Split.Test, 1000)]
    public void Loads_WithTheDocumentedCountsAndEveryClass(string name, Split split, int count)
    {
        Dataset set = DataCatalog.Load(name, split);

        Assert.Equal(name, set.Name);
        Assert.Equal(split, set.Split);
        Assert.Equal(count, set.Count);
        Assert.Equal((28, 28, 10), (set.Rows, set.Cols, set.NumClasses));
        Assert.Equal(count * 784, set.Images.Length);
        Assert.All(set.Labels, label => Assert.InRange(label, 0, 9));
        // A shuffled prefix of a balanced-ish split: every class is there, none dominates.
        Assert.All(set.CountPerClass(), n => Assert.InRange(n, count / 20, count / 5));
        // The first 100 already hold every class.
        Assert.All(set.Take(100).CountPerClass(), n => Assert.True(n > 0));
    }

    [Theory]
    [InlineData("mnist-mini", 20, 50, 0.6, 0.9)]
    [InlineData("fashion-mnist-mini", 55, 95, 0.35, 0.65)]
    public void Pixels_LookLikeTheRealData(string name, double meanLow, double meanHigh, double zeroLow, double zeroHigh)
    {
        Dataset set = DataCatalog.Load(name, Split.Train);

        long sum = 0, zeros = 0;
        foreach (byte pixel in set.Images)
        {
            sum += pixel;
            zeros += pixel == 0 ? 1 : 0;
        }
        double mean = (double)sum / set.Images.Length;
        double zeroFraction = (double)zeros / set.Images.Length;
        Assert.InRange(mean, meanLow, meanHigh);
        Assert.InRange(zeroFraction, zeroLow, zeroHigh);
        // Images use the full range and are not blank: each has some bright pixels.
        for (int i = 0; i < set.Count; i++)
            Assert.Contains(set.Image(i).ToArray(), p => p > 128);
        var x = new float[784];
        set.CopyImage(0, x);
        Assert.All(x, v => Assert.InRange(v, 0f, 1f));
    }

    [Fact]
    public void ClassNames_AreTheDatasetsOwn()
    {
        Assert.Equal("Ankle boot", DataCatalog.Load("fashion-mnist-mini", Split.Test).ClassNames[9]);
        Assert.Equal("T-shirt/top", DataCatalog.Load("fashion-mnist-mini", Split.Test).ClassNames[0]);
        Assert.Equal("7", DataCatalog.Load("mnist-mini", Split.Test).ClassNames[7]);
    }

    [Fact]
    public void TrainAndTest_ShareNoImages()
    {
        Dataset train = DataCatalog.Load("mnist-mini", Split.Train);
        Dataset test = DataCatalog.Load("mnist-mini", Split.Test);
        var trainImages = new HashSet<string>();
        for (int i = 0; i < train.Count; i++)
            trainImages.Add(Convert.ToBase64String(train.Image(i)));
        for (int i = 0; i < test.Count; i++)
            Assert.DoesNotContain(Convert.ToBase64String(test.Image(i)), trainImages);
    }

    /// <summary>
    /// The bundled sets are prefixes of the full fetched splits. Checked when the full set is in the default cache
    /// (`tinytrain data fetch ...`); with TINYTRAIN_REGENERATE_BUNDLED=1 it rewrites data/bundled instead
    /// (see src/Compiler/Data/README.md). Without the full data there is nothing to compare and it passes.
    /// </summary>
    [Theory]
    [InlineData("mnist-mini")]
    [InlineData("fashion-mnist-mini")]
    public void Bundled_IsThePrefixOfTheFetchedSet(string name)
    {
        CatalogEntry subset = DataCatalog.Find(name);
        string cache = DataCatalog.CacheDirectory;
        if (!DataCatalog.IsAvailable(subset.BundledFrom!, cache))
            return;

        if (Environment.GetEnvironmentVariable("TINYTRAIN_REGENERATE_BUNDLED") == "1")
        {
            DataCatalog.WriteSubset(subset, cache, Path.Combine(RepositoryRoot(), "data", "bundled"));
            return;
        }
        foreach (Split split in new[] { Split.Train, Split.Test })
        {
            Dataset full = DataCatalog.Load(subset.BundledFrom!, split);
            Dataset bundled = DataCatalog.Load(name, split);
            Assert.Equal(full.Take(bundled.Count).Labels, bundled.Labels);
            Assert.Equal(full.Take(bundled.Count).Images, bundled.Images);
        }
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "TinyTrain.sln")))
                return dir.FullName;
        }
        throw new InvalidOperationException("TinyTrain.sln not found above the test binaries.");
    }
}
