namespace TinyTrain.Fleet.Aggregation;

/// <summary>
/// Ways to combine N update vectors into one, coordinate by coordinate. Plain loops over arrays: each function is
/// the specification of its rule, checked by hand-worked tests.
/// </summary>
public static class AggregationMath
{
    /// <summary>sum_i w_i x_i / sum_i w_i.</summary>
    public static float[] WeightedMean(float[][] updates, double[] weights)
    {
        int n = Check(updates);
        if (weights.Length != n) throw new ArgumentException("one weight per update", nameof(weights));
        double total = 0;
        for (int i = 0; i < n; i++)
        {
            if (!(weights[i] >= 0) || !double.IsFinite(weights[i])) throw new ArgumentException($"weight {i} is {weights[i]}; weights must be finite and not negative", nameof(weights));
            total += weights[i];
        }
        if (!(total > 0)) throw new ArgumentException("weights sum to zero", nameof(weights));
        int d = updates[0].Length;
        var result = new float[d];
        for (int j = 0; j < d; j++)
        {
            double sum = 0;
            for (int i = 0; i < n; i++) sum += weights[i] * updates[i][j];
            result[j] = (float)(sum / total);
        }
        return result;
    }

    /// <summary>
    /// Per coordinate: sort the N values, drop floor(trim * N) from each end, average the rest (unweighted:
    /// a weight is what a hostile device would inflate).
    /// </summary>
    public static float[] TrimmedMean(float[][] updates, double trim)
    {
        int n = Check(updates);
        if (!(trim >= 0 && trim < 0.5)) throw new ArgumentException($"trim fraction must be in [0, 0.5), got {trim}", nameof(trim));
        int cut = (int)(trim * n);
        int d = updates[0].Length;
        var result = new float[d];
        var column = new float[n];
        for (int j = 0; j < d; j++)
        {
            for (int i = 0; i < n; i++) column[i] = updates[i][j];
            Array.Sort(column);
            double sum = 0;
            for (int i = cut; i < n - cut; i++) sum += column[i];
            result[j] = (float)(sum / (n - 2 * cut));
        }
        return result;
    }

    /// <summary>Per coordinate median (the mean of the two middle values when N is even).</summary>
    public static float[] Median(float[][] updates)
    {
        int n = Check(updates);
        int d = updates[0].Length;
        var result = new float[d];
        var column = new float[n];
        for (int j = 0; j < d; j++)
        {
            for (int i = 0; i < n; i++) column[i] = updates[i][j];
            Array.Sort(column);
            result[j] = n % 2 == 1 ? column[n / 2] : (float)(((double)column[n / 2 - 1] + column[n / 2]) / 2);
        }
        return result;
    }

    public static double Norm(float[] x)
    {
        double sum = 0;
        for (int j = 0; j < x.Length; j++) sum += (double)x[j] * x[j];
        return Math.Sqrt(sum);
    }

    /// <summary>x scaled down to L2 norm <paramref name="maxNorm"/> when it is longer; a copy, x is not changed.</summary>
    public static float[] ClipToNorm(float[] x, double maxNorm)
    {
        if (!(maxNorm > 0)) throw new ArgumentException($"clip norm must be positive, got {maxNorm}", nameof(maxNorm));
        double norm = Norm(x);
        double factor = norm > maxNorm ? maxNorm / norm : 1.0;
        var result = new float[x.Length];
        for (int j = 0; j < x.Length; j++) result[j] = (float)(x[j] * factor);
        return result;
    }

    /// <summary>The median of the updates' L2 norms: a clip threshold that most honest updates pass.</summary>
    public static double MedianNorm(float[][] updates)
    {
        int n = Check(updates);
        var norms = new double[n];
        for (int i = 0; i < n; i++) norms[i] = Norm(updates[i]);
        Array.Sort(norms);
        return n % 2 == 1 ? norms[n / 2] : (norms[n / 2 - 1] + norms[n / 2]) / 2;
    }

    /// <summary>Weight of an update that is <paramref name="staleness"/> versions behind: 1 / (1 + staleness)^alpha.</summary>
    public static double StalenessWeight(long staleness, double alpha)
        => staleness <= 0 ? 1.0 : 1.0 / Math.Pow(1.0 + staleness, alpha);

    private static int Check(float[][] updates)
    {
        ArgumentNullException.ThrowIfNull(updates);
        if (updates.Length == 0) throw new ArgumentException("nothing to aggregate", nameof(updates));
        int d = updates[0].Length;
        foreach (float[] u in updates)
            if (u.Length != d) throw new ArgumentException("updates differ in length", nameof(updates));
        return updates.Length;
    }
}
