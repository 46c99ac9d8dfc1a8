using TinyTrain.Emulator.Corruptions;

namespace TinyTrain.Emulator.Tests.Corruptions;

public class ArgumentTests
{
    public static TheoryData<string> Names => new([.. CorruptionCatalog.Names, "clean"]);

    [Theory]
    [MemberData(nameof(Names))]
    public void WrongSizes_OverlapAndBadSeverities_AreRefused(string name)
    {
        ICorruption c = CorruptionCatalog.Get(name);
        var x = new byte[784];
        var y = new byte[784];

        var e = Assert.Throws<ArgumentException>(() => c.Apply(x.AsSpan(0, 783), y, 28, 28, 1, 0));
        Assert.Contains("783", e.Message);
        e = Assert.Throws<ArgumentException>(() => c.Apply(x, new byte[785], 28, 28, 1, 0));
        Assert.Contains("785", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => c.Apply(x, y, 0, 28, 1, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => c.Apply(x, y, 28, -1, 1, 0));
        e = Assert.Throws<ArgumentException>(() => c.Apply(x, x, 28, 28, 1, 0));
        Assert.Contains("overlaps", e.Message);
        foreach (double bad in new[] { -0.5, double.NaN, double.PositiveInfinity, CorruptionCatalog.MaxSeverity + 0.01 })
        {
            var range = Assert.Throws<ArgumentOutOfRangeException>(() => c.Apply(x, y, 28, 28, bad, 0));
            Assert.Contains("0..10", range.Message);
        }
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void AnySizeAndSeverity_Works(string name)
    {
        ICorruption c = CorruptionCatalog.Get(name);
        (int w, int h)[] sizes = [(1, 1), (2, 3), (3, 2), (5, 7), (28, 28), (31, 40), (300, 9)];
        foreach ((int w, int h) in sizes)
        {
            var x = new byte[w * h];
            for (int i = 0; i < x.Length; i++) x[i] = (byte)(i * 37 % 256);
            var y = new byte[w * h];
            foreach (double severity in new[] { 0.01, 1.0, 3.3, CorruptionCatalog.MaxSeverity })
            {
                c.Apply(x, y, w, h, severity, 5);
                var again = new byte[w * h];
                c.Apply(x, again, w, h, severity, 5);
                Assert.Equal(y, again);
            }
        }
    }
}
