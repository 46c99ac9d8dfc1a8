namespace TinyTrain.Runtime.Tests.Training;

using TinyTrain.Runtime.Kernels;

/// <summary>Stochastic rounding: floor or ceil only, exact on integers, unbiased for either sign down to tiny fractions.</summary>
public class StochasticRoundingTests
{
    [Fact]
    public void Integers_AreExact_AndResultsAreFloorOrCeil()
    {
        uint s = StochasticRounding.DefaultSeed;
        var rng = new Random(401);
        for (int i = 0; i < 10_000; i++)
        {
            int n = rng.Next(-1000, 1000);
            Assert.Equal(n, StochasticRounding.Round(n, ref s));
            float v = (float)((rng.NextDouble() - 0.5) * 2000);
            int r = StochasticRounding.Round(v, ref s);
            Assert.True(r == Math.Floor(v) || r == Math.Ceiling(v), $"{v} -> {r}");
        }
    }

    [Theory]
    [InlineData(0.3f)]
    [InlineData(-0.3f)]
    [InlineData(2.75f)]
    [InlineData(-2.75f)]
    [InlineData(0.001f)]
    [InlineData(-0.001f)]
    [InlineData(-100.5f)]
    public void IsUnbiased(float v)
    {
        uint s = StochasticRounding.DefaultSeed;
        const int n = 400_000;
        long sum = 0;
        for (int i = 0; i < n; i++)
        {
            sum += StochasticRounding.Round(v, ref s);
        }
        double mean = (double)sum / n;
        // Bernoulli variance <= 1/4: 5 standard deviations of the mean.
        Assert.True(Math.Abs(mean - v) < 5 * 0.5 / Math.Sqrt(n), $"mean {mean} for {v}");
    }

    [Theory]
    [InlineData(1e-5f)]
    [InlineData(-1e-5f)]
    public void TinyFractions_StillRoundAway_ForEitherSign(float v)
    {
        // Rounding |v| keeps a negative fraction as precise as a positive one (1 + v would lose its low bits).
        uint s = StochasticRounding.DefaultSeed;
        const int n = 4_000_000;
        int away = 0;
        for (int i = 0; i < n; i++)
        {
            away += StochasticRounding.Round(v, ref s) != 0 ? 1 : 0;
        }
        // Expected 40, standard deviation about 6.3.
        Assert.InRange(away, 15, 70);
    }

    [Fact]
    public void Edges()
    {
        uint s = 1;
        Assert.Equal(0, StochasticRounding.Round(float.NaN, ref s));
        Assert.Equal(StochasticRounding.Limit, StochasticRounding.Round(float.PositiveInfinity, ref s));
        Assert.Equal(-StochasticRounding.Limit, StochasticRounding.Round(-1e20f, ref s));
        Assert.Equal(0, StochasticRounding.Round(0f, ref s));
        Assert.Equal(0, StochasticRounding.Round(-0f, ref s));
    }

    [Fact]
    public void Xorshift_NeverZero_ZeroRestartsAtTheSeed_Replays()
    {
        uint zero = 0, seed = StochasticRounding.DefaultSeed;
        Assert.Equal(StochasticRounding.Next(ref seed), StochasticRounding.Next(ref zero));
        uint s = 12345;
        for (int i = 0; i < 100_000; i++)
        {
            Assert.NotEqual(0u, StochasticRounding.Next(ref s));
        }
        uint a = 77, b = 77;
        for (int i = 0; i < 100; i++)
        {
            Assert.Equal(StochasticRounding.Round(0.5f, ref a), StochasticRounding.Round(0.5f, ref b));
        }
    }
}
