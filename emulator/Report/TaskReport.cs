namespace TinyTrain.Emulator.Report;

/// <summary>
/// One task of a class-incremental stream (a class subset), scored on its held-out images at the end of every window
/// of the report: <see cref="Accuracy"/> lines up with EmulationReport.WindowedAccuracy and is null before the task's
/// first sample.
/// </summary>
public sealed record TaskReport(string Name, IReadOnlyList<int> Classes, int FirstSample, int HeldOut, IReadOnlyList<double?> Accuracy)
{
    /// <summary>The highest held-out accuracy over the stream.</summary>
    public double Best => Fold(double.NegativeInfinity, Math.Max);

    /// <summary>The held-out accuracy at the end of the stream.</summary>
    public double Final => Accuracy.Count > 0 && Accuracy[^1] is double v ? v : 0;

    /// <summary>Best minus final: how much of the task was forgotten by the end (0 when it never dropped).</summary>
    public double Forgetting => Math.Max(0, Best - Final);

    private double Fold(double seed, Func<double, double, double> f)
    {
        double r = seed;
        foreach (double? v in Accuracy)
            if (v is double d) r = f(r, d);
        return double.IsInfinity(r) ? 0 : r;
    }
}
