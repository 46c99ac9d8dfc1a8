namespace TinyTrain.Runtime.Tests.Training;

using TinyTrain.Runtime.Kernels;

/// <summary>The portable exp and log: relative error below 1e-6 against double precision, and their edge values.</summary>
public class FloatMathTests
{
    [Fact]
    public void Exp_IsAccurate()
    {
        var rng = new Random(301);
        double worst = 0;
        for (int i = 0; i < 200_000; i++)
        {
            float x = i < 100_000 ? (float)(-87 + 175.7 * rng.NextDouble()) : (float)(-2 + 4 * rng.NextDouble());
            double want = Math.Exp(x);
            double err = Math.Abs(FloatMath.Exp(x) - want) / want;
            worst = Math.Max(worst, err);
        }
        foreach (float x in new[] { 0f, 1e-8f, -1e-8f, 0.34657359f, -0.34657359f, 1f, -1f, 10f, -10f, 88.5f, -87.3f })
        {
            worst = Math.Max(worst, Math.Abs(FloatMath.Exp(x) - Math.Exp(x)) / Math.Exp(x));
        }
        Assert.True(worst < 1e-6, $"worst relative error {worst}");
        Assert.Equal(1f, FloatMath.Exp(0f));
    }

    [Fact]
    public void Exp_Edges()
    {
        Assert.Equal(float.PositiveInfinity, FloatMath.Exp(89f));
        Assert.Equal(float.PositiveInfinity, FloatMath.Exp(float.PositiveInfinity));
        Assert.Equal(0f, FloatMath.Exp(-200f));
        Assert.Equal(0f, FloatMath.Exp(float.NegativeInfinity));
        Assert.True(float.IsNaN(FloatMath.Exp(float.NaN)));
        // Subnormal results are still about right.
        Assert.True(Math.Abs(FloatMath.Exp(-95f) - Math.Exp(-95)) / Math.Exp(-95) < 1e-3);
    }

    [Fact]
    public void Log_IsAccurate()
    {
        var rng = new Random(302);
        double worst = 0;
        for (int i = 0; i < 200_000; i++)
        {
            float x = i switch
            {
                < 100_000 => (float)Math.Exp(-85 + 170 * rng.NextDouble()),
                < 150_000 => (float)(0.5 + 1.5 * rng.NextDouble()),
                _ => 1f + (float)((rng.NextDouble() - 0.5) * 1e-4),
            };
            if (x == 1f)
            {
                continue;
            }
            double want = Math.Log(x);
            worst = Math.Max(worst, Math.Abs(FloatMath.Log(x) - want) / Math.Abs(want));
        }
        foreach (float x in new[] { 2f, 0.5f, 10f, 1.41421f, 1.41422f, 0.70710f, float.MaxValue, float.Epsilon, 1e-40f, 1.0000001f, 0.99999994f })
        {
            worst = Math.Max(worst, Math.Abs(FloatMath.Log(x) - Math.Log(x)) / Math.Abs(Math.Log(x)));
        }
        Assert.True(worst < 1e-6, $"worst relative error {worst}");
    }

    [Fact]
    public void Log_Edges()
    {
        Assert.Equal(0f, FloatMath.Log(1f));
        Assert.Equal(float.NegativeInfinity, FloatMath.Log(0f));
        Assert.Equal(float.PositiveInfinity, FloatMath.Log(float.PositiveInfinity));
        Assert.True(float.IsNaN(FloatMath.Log(-1f)));
        Assert.True(float.IsNaN(FloatMath.Log(float.NaN)));
    }
}
