using TinyTrain.Emulator.Corruptions;

namespace TinyTrain.Emulator.Tests.Corruptions;

public class CatalogTests
{
    private static readonly string[] PaperNames =
    [
        "shot-noise", "impulse-noise", "glass-blur", "motion-blur", "shear", "scale", "rotate", "brightness",
        "translate", "stripe", "fog", "spatter", "dotted-line", "zigzag", "canny-edges",
    ];

    [Fact]
    public void Names_AreThePapers15InKebabCaseAndOrder()
    {
        Assert.Equal(PaperNames, CorruptionCatalog.Names);
        Assert.DoesNotContain("clean", CorruptionCatalog.Names);
    }

    [Fact]
    public void Get_ReturnsTheNamedCorruption_IgnoringCase()
    {
        foreach (string name in CorruptionCatalog.Names)
        {
            Assert.Equal(name, CorruptionCatalog.Get(name).Name);
            Assert.Same(CorruptionCatalog.Get(name), CorruptionCatalog.Get(name.ToUpperInvariant()));
        }
        Assert.Equal("clean", CorruptionCatalog.Get("clean").Name);
    }

    [Fact]
    public void Clean_IsTheIdentityForEverySeedAndSeverity()
    {
        byte[] x = Digits.Image(0);
        var y = new byte[x.Length];
        ICorruption clean = CorruptionCatalog.Get("clean");
        Assert.False(clean.IsRandom);
        foreach (double severity in new[] { 0.0, 1.0, 7.5 })
        {
            clean.Apply(x, y, 28, 28, severity, 12345);
            Assert.Equal(x, y);
        }
    }

    [Fact]
    public void UnknownName_ThrowsTinyTrainException_ListingEveryKnownName()
    {
        var e = Assert.Throws<TinyTrainException>(() => CorruptionCatalog.Get("shot_noise"));
        Assert.Contains("'shot_noise'", e.Message);
        Assert.Contains("clean", e.Message);
        foreach (string name in PaperNames)
            Assert.Contains(name, e.Message);
        Assert.Throws<ArgumentNullException>(() => CorruptionCatalog.Get(null!));
    }

    [Fact]
    public void IsRandom_IsFalseOnlyForTheFixedTransforms()
    {
        string[] fixedOnes = ["scale", "brightness", "stripe", "canny-edges"];
        foreach (string name in CorruptionCatalog.Names)
            Assert.Equal(Array.IndexOf(fixedOnes, name) < 0, CorruptionCatalog.Get(name).IsRandom);
    }
}
