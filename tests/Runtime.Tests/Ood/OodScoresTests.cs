namespace TinyTrain.Runtime.Tests.Ood;

using TinyTrain.Runtime.Ood;

/// <summary>Maximum softmax probability and energy on hand-made int8 logits, against double-precision formulas.</summary>
public class OodScoresTests
{
    private static byte[] Logits(params int[] q)
    {
        byte[] b = new byte[q.Length + 3];
        for (int i = 0; i < q.Length; i++)
        {
            b[3 + i] = (byte)(sbyte)q[i];
        }
        return b;
    }

    private static double Softmax(int[] q, float scale, int zeroPoint, out double logSumExp)
    {
        double max = double.NegativeInfinity, sum = 0;
        foreach (int v in q) max = Math.Max(max, (v - zeroPoint) * (double)scale);
        foreach (int v in q) sum += Math.Exp((v - zeroPoint) * (double)scale - max);
        logSumExp = max + Math.Log(sum);
        return 1 / sum;
    }

    [Theory]
    [InlineData(2, 0.1f, 0, 17)]
    [InlineData(10, 0.25f, -12, 40)]
    [InlineData(10, 0.05f, 5, -128)]
    [InlineData(100, 1.5f, 127, 127)]
    public void MaxSoftmax_OfUniformLogits_IsOneOverK(int k, float scale, int zeroPoint, int value)
    {
        int[] q = new int[k];
        Array.Fill(q, value);
        Assert.Equal(1f / k, OodScores.MaxSoftmax(Logits(q), 3, k, scale, zeroPoint), 6);
    }

    [Fact]
    public void MaxSoftmax_MatchesTheFormula()
    {
        var rng = new Random(7);
        for (int t = 0; t < 500; t++)
        {
            int k = rng.Next(1, 20);
            int[] q = new int[k];
            for (int i = 0; i < k; i++) q[i] = rng.Next(-128, 128);
            float scale = (float)(0.01 + 0.3 * rng.NextDouble());
            int zeroPoint = rng.Next(-128, 128);
            double want = Softmax(q, scale, zeroPoint, out _);
            float got = OodScores.MaxSoftmax(Logits(q), 3, k, scale, zeroPoint);
            Assert.True(Math.Abs(got - want) <= 2e-6 * Math.Max(1, want), $"k {k}: {got} vs {want}");
            Assert.InRange(got, 1f / k - 1e-6f, 1f);
        }
        // One clear winner: 2 classes at z = 0 and z = 20 (scale 1): 1 / (1 + e^-20).
        Assert.Equal(1 / (1 + Math.Exp(-20)), OodScores.MaxSoftmax(Logits(0, 20), 3, 2, 1f, 0), 6);
    }

    [Fact]
    public void Energy_MatchesTheFormula()
    {
        var rng = new Random(8);
        for (int t = 0; t < 500; t++)
        {
            int k = rng.Next(1, 20);
            int[] q = new int[k];
            for (int i = 0; i < k; i++) q[i] = rng.Next(-128, 128);
            float scale = (float)(0.01 + 0.3 * rng.NextDouble());
            int zeroPoint = rng.Next(-128, 128);
            Softmax(q, scale, zeroPoint, out double logSumExp);
            float got = OodScores.Energy(Logits(q), 3, k, scale, zeroPoint, 1f);
            Assert.True(Math.Abs(got - logSumExp) <= 1e-5 * Math.Max(1, Math.Abs(logSumExp)), $"k {k}: {got} vs {logSumExp}");
        }
        // Uniform logits z: z + ln K.
        Assert.Equal(2.5 + Math.Log(10), OodScores.Energy(Logits(10, 10, 10, 10, 10, 10, 10, 10, 10, 10), 3, 10, 0.25f, 0, 1f), 5);
    }

    [Fact]
    public void Energy_RisesWithEveryLogit()
    {
        // -E = log sum e^z rises in each logit: raise one logit step by step over the whole int8 range. In float32
        // a logit far below the largest adds less than one ulp, so the rise is strict only within 8 (real units) of it.
        int[] q = { -20, 5, 30, -128, 60 };
        const float scale = 0.1f;
        for (int slot = 0; slot < q.Length; slot++)
        {
            int[] v = (int[])q.Clone();
            int othersMax = int.MinValue;
            for (int i = 0; i < v.Length; i++) if (i != slot) othersMax = Math.Max(othersMax, v[i]);
            float previous = float.NegativeInfinity;
            for (int value = -128; value <= 127; value++)
            {
                v[slot] = value;
                float e = OodScores.Energy(Logits(v), 3, v.Length, scale, -3, 1f);
                bool strict = (value - othersMax) * scale > -8;
                Assert.True(strict ? e > previous : e >= previous, $"slot {slot} value {value}: {e} after {previous}");
                previous = e;
            }
        }
    }

    [Fact]
    public void Energy_Temperature()
    {
        int[] q = { 10, 40, -7 };
        const float scale = 0.2f, t = 2.5f;
        double sum = 0;
        foreach (int v in q) sum += Math.Exp(v * scale / t);
        Assert.Equal(t * Math.Log(sum), OodScores.Energy(Logits(q), 3, 3, scale, 0, t), 4);
        // A low temperature approaches the max logit.
        Assert.Equal(40 * scale, OodScores.Energy(Logits(q), 3, 3, scale, 0, 0.01f), 4);
    }

    [Fact]
    public void BadArguments_AreRefused()
    {
        byte[] b = new byte[16];
        Refused(() => OodScores.MaxSoftmax(b, 0, 0, 0.1f, 0), "MaxSoftmax", "k is 0");
        Refused(() => OodScores.MaxSoftmax(b, 0, 10, 0f, 0), "MaxSoftmax", "scale is 0");
        Refused(() => OodScores.MaxSoftmax(b, 0, 10, float.NaN, 0), "scale is NaN");
        Refused(() => OodScores.MaxSoftmax(b, 0, 10, 0.1f, 200), "zeroPoint is 200");
        Refused(() => OodScores.MaxSoftmax(b, 10, 10, 0.1f, 0), "logits needs bytes [10, 20)", "holds 16");
        Refused(() => OodScores.Energy(b, 0, 10, 0.1f, 0, 0f), "Energy", "temperature is 0");
        Refused(() => OodScores.Energy(b, 0, 10, 0.1f, 0, float.PositiveInfinity), "temperature is");
    }

    [Fact]
    public void Scores_AllocateNothing()
    {
        byte[] b = Logits(3, -9, 100, 4, 4, 8, -128, 127, 0, 1);
        float sink = OodScores.MaxSoftmax(b, 3, 10, 0.1f, 2) + OodScores.Energy(b, 3, 10, 0.1f, 2, 1f);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            sink += OodScores.MaxSoftmax(b, 3, 10, 0.1f, 2) + OodScores.Energy(b, 3, 10, 0.1f, 2, 1f);
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.True(float.IsFinite(sink));
    }

    internal static void Refused(Action call, params string[] words)
    {
        var e = Assert.Throws<TinyTrainException>(call);
        foreach (string word in words)
        {
            Assert.Contains(word, e.Message);
        }
    }
}
