namespace TinyTrain.Emulator.Report;

using ScottPlot;

/// <summary>
/// Accuracy over the stream as a PNG: the trailing-window accuracy at every sample, a dashed line at each segment
/// boundary labelled with the segment's name, titled with the model and the board; for a class-incremental stream,
/// one more line per task (its held-out accuracy at the end of every window).
/// </summary>
public static class AccuracyPlot
{
    public const int Width = 1000, Height = 500;

    public static void Write(EmulationReport report, string pngPath)
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentException.ThrowIfNullOrWhiteSpace(pngPath);
        var plot = new Plot();
        var xs = new List<double>(report.RollingAccuracy.Count);
        var ys = new List<double>(report.RollingAccuracy.Count);
        for (int i = 0; i < report.RollingAccuracy.Count; i++)
        {
            double v = report.RollingAccuracy[i];
            if (double.IsNaN(v)) continue;
            xs.Add(i + 1);
            ys.Add(v);
        }
        if (xs.Count > 0)
        {
            var line = plot.Add.ScatterLine(xs.ToArray(), ys.ToArray());
            line.LineWidth = 2;
            line.LegendText = $"accuracy, last {report.Window} samples";
        }
        // Class-incremental streams: each task's held-out accuracy at the end of every window, from its first sample on.
        foreach (TaskReport t in report.Tasks)
        {
            var tx = new List<double>();
            var ty = new List<double>();
            for (int p = 0; p < t.Accuracy.Count; p++)
            {
                if (t.Accuracy[p] is not double v) continue;
                tx.Add(Math.Min((p + 1) * report.Window, report.Samples));
                ty.Add(v);
            }
            if (tx.Count == 0) continue;
            var task = plot.Add.ScatterLine(tx.ToArray(), ty.ToArray());
            task.LineWidth = 1.5f;
            task.MarkerSize = 4;
            task.LegendText = $"task {t.Name}, {t.HeldOut} held-out images";
        }
        if (report.Tasks.Count > 0) plot.ShowLegend(Alignment.LowerLeft);
        foreach (SegmentReport s in report.Segments)
        {
            if (s.Samples == 0) continue;
            if (s.Start > 0)
            {
                var boundary = plot.Add.VerticalLine(s.Start + 0.5);
                boundary.LinePattern = LinePattern.Dashed;
                boundary.LineWidth = 1;
                boundary.Color = Colors.Gray;
            }
            // The name sits inside the plot, above the curve's range, just right of where the segment starts.
            var label = plot.Add.Text(s.Name, s.Start + 0.5, 1.08);
            label.LabelAlignment = Alignment.UpperLeft;
            label.LabelFontSize = 13;
            label.LabelFontColor = Colors.DimGray;
            label.OffsetX = 4;
        }
        plot.Title($"{report.Model} on {report.Board}: accuracy over the stream");
        plot.XLabel("sample");
        plot.YLabel($"accuracy (window {report.Window})");
        plot.Axes.SetLimitsY(0, 1.1);
        plot.Axes.SetLimitsX(0, Math.Max(1, report.Samples));
        string? dir = Path.GetDirectoryName(Path.GetFullPath(pngPath));
        if (dir is not null) Directory.CreateDirectory(dir);
        try
        {
            plot.SavePng(pngPath, Width, Height);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new TinyTrainException($"{pngPath}: cannot write the plot ({e.Message})");
        }
    }
}
