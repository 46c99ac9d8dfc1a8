namespace TinyTrain.Compiler.Ood;

using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Runtime.Execution;
using TinyTrain.Runtime.Ood;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

/// <summary>Scores data through the int8 runtime, and sets a score's threshold at a true-positive rate on in-distribution data.</summary>
public static class OodCalibration
{
    /// <summary>The conventional operating point: 95 % of in-distribution samples are kept.</summary>
    public const double DefaultTruePositiveRate = 0.95;

    /// <summary>The score of images [start, start + count) of <paramref name="data"/> (count 0 = to the end), one Invoke each.</summary>
    public static float[] Scores(PlanImage plan, IOodScorer scorer, Dataset data, int start = 0, int count = 0)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(scorer);
        ArgumentNullException.ThrowIfNull(data);
        if (start < 0 || start > data.Count)
            throw new TinyTrainException($"data set '{data.Name}' has {data.Count} images; cannot start scoring at {start}");
        int n = count > 0 ? Math.Min(count, data.Count - start) : data.Count - start;
        var executor = new Executor(plan);
        var quantizer = InputQuantizer.For(plan);
        byte[] input = new byte[quantizer.Length];
        float[] scores = new float[n];
        for (int i = 0; i < n; i++)
        {
            quantizer.Fill(data, start + i, input, 0);
            executor.SetInput(input, 0);
            executor.Invoke();
            scores[i] = scorer.Score(executor);
        }
        return scores;
    }

    /// <summary>
    /// The highest threshold that keeps at least <paramref name="truePositiveRate"/> of the in-distribution
    /// scores (score &gt;= threshold): the ceil(rate n)-th highest score.
    /// </summary>
    public static OodThreshold Threshold(float[] inDistribution, double truePositiveRate = DefaultTruePositiveRate)
    {
        ArgumentNullException.ThrowIfNull(inDistribution);
        if (!(truePositiveRate > 0 && truePositiveRate <= 1))
            throw new TinyTrainException($"true-positive rate {truePositiveRate} must lie in (0, 1]; 0.95 is the convention");
        if (inDistribution.Length == 0)
            throw new TinyTrainException("no in-distribution scores to calibrate a threshold on");
        foreach (float s in inDistribution)
            if (!float.IsFinite(s))
                throw new TinyTrainException($"an in-distribution score is {s}; a threshold needs finite scores");
        float[] sorted = (float[])inDistribution.Clone();
        Array.Sort(sorted);
        int n = sorted.Length;
        // Ceiling with a tolerance, so that 0.95 * 1000 keeps exactly 950 and not 951 by a rounding error.
        int keep = Math.Clamp((int)Math.Ceiling(truePositiveRate * n - 1e-9), 1, n);
        return new OodThreshold(sorted[n - keep], (float)truePositiveRate);
    }

    /// <summary>Scores <paramref name="count"/> in-distribution images from <paramref name="start"/> and sets the threshold on them.</summary>
    public static OodThreshold Calibrate(PlanImage plan, IOodScorer scorer, Dataset inDistribution, int start = 0, int count = 0,
        double truePositiveRate = DefaultTruePositiveRate) =>
        Threshold(Scores(plan, scorer, inDistribution, start, count), truePositiveRate);
}
