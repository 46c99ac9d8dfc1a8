using TinyTrain.Emulator.Corruptions;

namespace TinyTrain.Emulator.Tests.Corruptions;

public class RandomAndMathTests
{
    [Fact]
    public void SplitMix64_MatchesTheReferenceSequence()
    {
        // Vigna's splitmix64.c from state 0.
        var rng = new SplitMix64(0);
        Assert.Equal(0xE220A8397B1DCDAFUL, rng.NextUInt64());
        Assert.Equal(0x6E789E6AA1B965F4UL, rng.NextUInt64());
        Assert.Equal(0x06C45D188009454FUL, rng.NextUInt64());
    }

    [Fact]
    public void Draws_HaveTheRightRangesAndMoments()
    {
        var rng = new SplitMix64(2019);
        var counts = new int[6];
        for (int i = 0; i < 60000; i++)
        {
            int v = rng.NextInt(-3, 3);
            Assert.InRange(v, -3, 2);
            counts[v + 3]++;
        }
        Assert.All(counts, n => Assert.InRange(n, 9500, 10500));

        (double mean, double variance) = Moments(20000, ref rng, static (ref SplitMix64 r) => r.NextGaussian());
        Assert.InRange(mean, -0.03, 0.03);
        Assert.InRange(variance, 0.96, 1.04);
        (mean, variance) = Moments(20000, ref rng, static (ref SplitMix64 r) => r.NextPoisson(2.5));
        Assert.InRange(mean, 2.45, 2.55);
        Assert.InRange(variance, 2.4, 2.6);
        (mean, variance) = Moments(20000, ref rng, static (ref SplitMix64 r) => r.NextPoisson(80));
        Assert.InRange(mean, 79.5, 80.5);
        Assert.InRange(variance, 76, 84);
        Assert.Equal(0, rng.NextPoisson(0));
    }

    [Fact]
    public void DeterministicMath_AgreesWithSystemMath()
    {
        for (int i = -2000; i <= 2000; i++)
        {
            double x = i / 40.0 + 0.0123;
            AssertClose(Math.Exp(x), DeterministicMath.Exp(x));
            AssertClose(Math.Sin(x), DeterministicMath.Sin(x), absolute: 2e-16);
            AssertClose(Math.Cos(x), DeterministicMath.Cos(x), absolute: 2e-16);
            double y = Math.Pow(10, i / 13.0);
            AssertClose(Math.Log(y), DeterministicMath.Log(y), absolute: 1e-15);
        }
        Assert.Equal(1.0, DeterministicMath.Exp(0));
        Assert.Equal(0.0, DeterministicMath.Log(1));
        Assert.Equal(0.0, DeterministicMath.Sin(0));
        Assert.Equal(1.0, DeterministicMath.Cos(0));
        Assert.Equal(0.0, DeterministicMath.Exp(-1000));
        Assert.Equal(double.NegativeInfinity, DeterministicMath.Log(0));
        Assert.True(double.IsNaN(DeterministicMath.Log(-1)));
    }

    private delegate double Draw(ref SplitMix64 rng);

    private static (double Mean, double Variance) Moments(int n, ref SplitMix64 rng, Draw draw)
    {
        double sum = 0, squares = 0;
        for (int i = 0; i < n; i++)
        {
            double v = draw(ref rng);
            sum += v;
            squares += v * v;
        }
        double mean = sum / n;
        return (mean, squares / n - mean * mean);
    }

    private static void AssertClose(double expected, double actual, double absolute = 0)
    {
        double tolerance = Math.Max(absolute, 4e-16 * Math.Abs(expected));
        Assert.True(Math.Abs(expected - actual) <= tolerance, $"expected {expected:R}, got {actual:R}");
    }
}
