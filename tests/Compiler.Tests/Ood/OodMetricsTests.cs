using TinyTrain.Compiler.Ood;

namespace TinyTrain.Compiler.Tests.Ood;

/// <summary>AUROC by the rank-sum formula against hand-worked cases and pair counting; thresholds at a true-positive rate.</summary>
public class OodMetricsTests
{
    [Fact]
    public void Auroc_HandWorked()
    {
        Assert.Equal(1.0, OodMetrics.Auroc(new[] { 3f, 4f }, new[] { 1f, 2f }));
        Assert.Equal(0.0, OodMetrics.Auroc(new[] { 1f, 2f }, new[] { 3f, 4f }));
        Assert.Equal(0.5, OodMetrics.Auroc(new[] { 1f, 1f }, new[] { 1f, 1f, 1f }));
        // in {1, 3, 5}, out {2, 4}: pairs in > out are (3,2) (5,2) (5,4) = 3 of 6.
        Assert.Equal(0.5, OodMetrics.Auroc(new[] { 1f, 3f, 5f }, new[] { 2f, 4f }));
        // in {2, 3}, out {1, 2}: (2,1) (3,1) (3,2) win, (2,2) ties for a half: 3.5 of 4.
        Assert.Equal(0.875, OodMetrics.Auroc(new[] { 2f, 3f }, new[] { 1f, 2f }));
    }

    [Fact]
    public void Auroc_EqualsCountingPairs()
    {
        var rng = new Random(11);
        for (int t = 0; t < 50; t++)
        {
            float[] a = new float[rng.Next(1, 60)], b = new float[rng.Next(1, 60)];
            // Few distinct values, so that ties are common.
            for (int i = 0; i < a.Length; i++) a[i] = rng.Next(0, 12);
            for (int i = 0; i < b.Length; i++) b[i] = rng.Next(-3, 9);
            double wins = 0;
            foreach (float x in a)
                foreach (float y in b)
                    wins += x > y ? 1 : x == y ? 0.5 : 0;
            Assert.Equal(wins / (a.Length * b.Length), OodMetrics.Auroc(a, b), 12);
        }
    }

    [Fact]
    public void Threshold_KeepsTheRequestedShare()
    {
        float[] scores = new float[1000];
        for (int i = 0; i < scores.Length; i++) scores[i] = (i * 7919) % 1000;   // 0..999, shuffled
        var t = OodCalibration.Threshold(scores);
        Assert.Equal(50f, t.Value);
        Assert.Equal(0.95, OodMetrics.AcceptedRate(scores, t.Value));
        Assert.Equal(0.9, OodMetrics.AcceptedRate(scores, OodCalibration.Threshold(scores, 0.9).Value));
        Assert.Equal(0f, OodCalibration.Threshold(scores, 1.0).Value);
        // 19 scores at 95 %: keep ceil(18.05) = 19, so the lowest.
        Assert.Equal(1f, OodCalibration.Threshold(Enumerable.Range(1, 19).Select(i => (float)i).ToArray()).Value);
        // FPR at 95 % TPR: out-of-distribution scores at or above that threshold.
        float[] outScores = { 10f, 49f, 50f, 51f, 999f };
        Assert.Equal(0.6, OodMetrics.FprAtTpr(scores, outScores));
    }

    [Fact]
    public void BadInput_IsRefused()
    {
        Assert.Contains("both kinds", Assert.Throws<TinyTrainException>(() => OodMetrics.Auroc(Array.Empty<float>(), new[] { 1f })).Message);
        Assert.Contains("NaN", Assert.Throws<TinyTrainException>(() => OodMetrics.Auroc(new[] { float.NaN }, new[] { 1f })).Message);
        Assert.Contains("no in-distribution scores", Assert.Throws<TinyTrainException>(() => OodCalibration.Threshold(Array.Empty<float>())).Message);
        Assert.Contains("finite", Assert.Throws<TinyTrainException>(() => OodCalibration.Threshold(new[] { 1f, float.NegativeInfinity })).Message);
        Assert.Contains("(0, 1]", Assert.Throws<TinyTrainException>(() => OodCalibration.Threshold(new[] { 1f }, 0)).Message);
        Assert.Contains("(0, 1]", Assert.Throws<TinyTrainException>(() => OodCalibration.Threshold(new[] { 1f }, 1.01)).Message);
    }
}
