namespace TinyTrain.Compiler.Ood;

/// <summary>How well a score separates in-distribution (positive, scored higher) from out-of-distribution samples.</summary>
public static class OodMetrics
{
    /// <summary>
    /// Area under the ROC curve, exactly, by the rank-sum (Mann-Whitney U) formula: rank all scores together
    /// (ties share their mean rank), then AUROC = (R_in - n_in (n_in + 1) / 2) / (n_in n_out), where R_in is the
    /// sum of the in-distribution ranks. It is the probability that a random in-distribution sample scores
    /// above a random out-of-distribution one, ties counting one half.
    /// </summary>
    public static double Auroc(float[] inDistribution, float[] outOfDistribution)
    {
        Check(inDistribution, outOfDistribution);
        int nIn = inDistribution.Length, nOut = outOfDistribution.Length, n = nIn + nOut;
        float[] values = new float[n];
        bool[] positive = new bool[n];
        Array.Copy(inDistribution, values, nIn);
        Array.Copy(outOfDistribution, 0, values, nIn, nOut);
        for (int i = 0; i < nIn; i++) positive[i] = true;
        Array.Sort(values, positive);
        double rankSum = 0;
        for (int i = 0; i < n;)
        {
            int j = i;
            while (j < n && values[j] == values[i]) j++;
            double rank = (i + 1 + j) / 2.0;   // mean of ranks i+1 .. j
            for (int t = i; t < j; t++)
                if (positive[t]) rankSum += rank;
            i = j;
        }
        return (rankSum - nIn * (nIn + 1.0) / 2) / ((double)nIn * nOut);
    }

    /// <summary>
    /// False-positive rate at the given true-positive rate: the share of out-of-distribution samples that the
    /// threshold keeping that share of the in-distribution samples (<see cref="OodCalibration.Threshold"/>) accepts.
    /// </summary>
    public static double FprAtTpr(float[] inDistribution, float[] outOfDistribution, double truePositiveRate = OodCalibration.DefaultTruePositiveRate)
    {
        Check(inDistribution, outOfDistribution);
        float threshold = OodCalibration.Threshold(inDistribution, truePositiveRate).Value;
        return AcceptedRate(outOfDistribution, threshold);
    }

    /// <summary>The share of scores at or above the threshold (kept as in-distribution).</summary>
    public static double AcceptedRate(float[] scores, float threshold)
    {
        ArgumentNullException.ThrowIfNull(scores);
        if (scores.Length == 0) throw new TinyTrainException("no scores to measure");
        int kept = 0;
        foreach (float s in scores)
            if (s >= threshold) kept++;
        return (double)kept / scores.Length;
    }

    private static void Check(float[] inDistribution, float[] outOfDistribution)
    {
        ArgumentNullException.ThrowIfNull(inDistribution);
        ArgumentNullException.ThrowIfNull(outOfDistribution);
        if (inDistribution.Length == 0 || outOfDistribution.Length == 0)
            throw new TinyTrainException(
                $"AUROC needs scores of both kinds: {inDistribution.Length} in-distribution, {outOfDistribution.Length} out-of-distribution");
        foreach (float s in inDistribution)
            if (float.IsNaN(s)) throw new TinyTrainException("an in-distribution score is NaN; scores must be numbers");
        foreach (float s in outOfDistribution)
            if (float.IsNaN(s)) throw new TinyTrainException("an out-of-distribution score is NaN; scores must be numbers");
    }
}
