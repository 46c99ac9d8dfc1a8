namespace TinyTrain.Emulator.Report;

using System.Text.Json;
using System.Text.Json.Nodes;
using TinyTrain.Compiler.Boards;
using TinyTrain.Emulator.CostModel;
using TinyTrain.Emulator.Device;

/// <summary>One segment of the stream, as the report gives it. OodRate: the share scored out of distribution (test-time adaptation plans).</summary>
public sealed record SegmentReport(string Name, int Start, int Samples, double Accuracy, int Trained, int Skipped, double OodRate = 0);

/// <summary>
/// The outcome of a stream run on an emulated board: accuracy per segment and over time, what the runtime measured
/// (arena high-water, speed on this machine), the board's memory, and the cost model's time per step on the board.
/// </summary>
public sealed class EmulationReport
{
    private readonly double[] _rolling;

    private EmulationReport(string board, string boardName, string model, string plan, IReadOnlyList<SegmentReport> segments,
        int window, double?[] windowed, double[] rolling, int arenaBytes, int arenaHighWater, FitReport fit,
        double stepsPerSecond, double msPerInference, double? msPerStep, IReadOnlyList<TaskReport> tasks)
    {
        Tasks = tasks;
        Board = board;
        BoardName = boardName;
        Model = model;
        Plan = plan;
        Segments = segments;
        Window = window;
        WindowedAccuracy = windowed;
        _rolling = rolling;
        ArenaBytes = arenaBytes;
        SramHighWaterBytes = arenaHighWater;
        Fit = fit;
        StepsPerSecond = stepsPerSecond;
        EstimatedMsPerInference = msPerInference;
        EstimatedMsPerStep = msPerStep;
    }

    public string Board { get; }
    public string BoardName { get; }
    public string Model { get; }
    /// <summary>The plan's source (its file name).</summary>
    public string Plan { get; }
    public IReadOnlyList<SegmentReport> Segments { get; }

    /// <summary>Samples per point of <see cref="WindowedAccuracy"/>.</summary>
    public int Window { get; }

    /// <summary>Accuracy over consecutive windows of <see cref="Window"/> samples; null where all were skipped.</summary>
    public IReadOnlyList<double?> WindowedAccuracy { get; }

    /// <summary>
    /// Class-incremental streams (two or more class subsets): each task's accuracy on its held-out images at the end of
    /// every window (see Device/TaskProbe); empty otherwise.
    /// </summary>
    public IReadOnlyList<TaskReport> Tasks { get; }

    /// <summary>Accuracy over the trailing <see cref="Window"/> samples at every sample (NaN where all were skipped); for plots.</summary>
    public IReadOnlyList<double> RollingAccuracy => _rolling;

    public int Samples => Sum(s => s.Samples);
    public int Trained => Sum(s => s.Trained);
    public int Skipped => Sum(s => s.Skipped);

    /// <summary>The arena bytes the runtime touched, measured by paint (Executor.HighWaterMark); at most <see cref="ArenaBytes"/>.</summary>
    public int SramHighWaterBytes { get; }

    /// <summary>The plan's arena, which the runtime allocated exactly.</summary>
    public int ArenaBytes { get; }

    /// <summary>The plan's SRAM and Flash against the board's, part by part.</summary>
    public FitReport Fit { get; }

    /// <summary>The board's SRAM.</summary>
    public long SramBytes => Fit.Sram.CapacityBytes;

    /// <summary>SRAM in use at the high-water: measured arena + writable parameters + state + the board's reserve.</summary>
    public long SramUsedBytes => SramHighWaterBytes + Fit.Sram.ParamBytes + Fit.Sram.StateBytes + Fit.Sram.ReserveBytes;

    /// <summary>Flash in use: the plan file (constants and tables) plus the board's runtime reserve.</summary>
    public long FlashBytes => Fit.Flash.TotalBytes;

    /// <summary>The board's Flash.</summary>
    public long FlashCapacityBytes => Fit.Flash.CapacityBytes;

    /// <summary>Samples through the runtime per second on this machine (inference, plus a training step where it learned).</summary>
    public double StepsPerSecond { get; }

    public double EstimatedMsPerInference { get; }

    /// <summary>The cost model's time of one training step on the board; null for a plan that cannot train.</summary>
    public double? EstimatedMsPerStep { get; }

    public static EmulationReport Create(string plan, string model, FitReport fit, CostEstimate cost, SampleLog log, int window,
        int arenaBytes, int arenaHighWater, double seconds, IReadOnlyList<TaskReport>? tasks = null)
    {
        ArgumentNullException.ThrowIfNull(fit);
        ArgumentNullException.ThrowIfNull(cost);
        ArgumentNullException.ThrowIfNull(log);
        ArgumentOutOfRangeException.ThrowIfLessThan(window, 1);
        var segments = new List<SegmentReport>();
        int processed = 0;
        foreach (SegmentSummary s in log.Segments())
        {
            segments.Add(new SegmentReport(s.Name, s.Start, s.Samples, s.Accuracy, s.Trained, s.Skipped,
                s.Samples == 0 ? 0 : (double)s.OutOfDistribution / s.Samples));
            processed += s.Predicted;
        }
        return new EmulationReport(fit.Board.Id, fit.Board.Name, model, plan, segments, window, log.Windowed(window), log.Rolling(window),
            arenaBytes, arenaHighWater, fit, seconds > 0 ? processed / seconds : 0, cost.MsPerInference, cost.MsPerTrainStep, tasks ?? []);
    }

    /// <summary>The report as one JSON object (snake_case keys); only steps_per_second depends on this machine.</summary>
    public JsonObject ToJsonNode()
    {
        var segments = new JsonArray();
        foreach (SegmentReport s in Segments)
            segments.Add(new JsonObject
            {
                ["name"] = s.Name, ["samples"] = s.Samples, ["accuracy"] = s.Accuracy, ["trained"] = s.Trained, ["skipped"] = s.Skipped, ["ood_rate"] = s.OodRate,
            });
        var windowed = new JsonArray();
        foreach (double? v in WindowedAccuracy) windowed.Add(v is double d ? JsonValue.Create(d) : null);
        var tasks = new JsonArray();
        foreach (TaskReport t in Tasks)
        {
            var classes = new JsonArray();
            foreach (int c in t.Classes) classes.Add(c);
            var accuracy = new JsonArray();
            foreach (double? v in t.Accuracy) accuracy.Add(v is double d ? JsonValue.Create(d) : null);
            tasks.Add(new JsonObject
            {
                ["name"] = t.Name, ["classes"] = classes, ["first_sample"] = t.FirstSample, ["held_out"] = t.HeldOut,
                ["windowed_accuracy"] = accuracy, ["best"] = t.Best, ["final"] = t.Final, ["forgetting"] = t.Forgetting,
            });
        }
        return new JsonObject
        {
            ["board"] = Board,
            ["plan"] = Plan,
            ["model"] = Model,
            ["segments"] = segments,
            ["sram_high_water_bytes"] = SramHighWaterBytes,
            ["sram_bytes"] = SramBytes,
            ["sram_used_bytes"] = SramUsedBytes,
            ["arena_bytes"] = ArenaBytes,
            ["flash_bytes"] = FlashBytes,
            ["flash_capacity_bytes"] = FlashCapacityBytes,
            ["steps_per_second"] = Math.Round(StepsPerSecond, 1),
            ["estimated_ms_per_inference"] = Math.Round(EstimatedMsPerInference, 3),
            ["estimated_ms_per_step"] = EstimatedMsPerStep is double ms ? JsonValue.Create(Math.Round(ms, 3)) : null,
            ["window"] = Window,
            ["windowed_accuracy"] = windowed,
            ["tasks"] = tasks,
        };
    }

    public string ToJson() => ToJsonNode().ToJsonString(new JsonSerializerOptions { WriteIndented = true });

    /// <summary>Writes the accuracy-over-the-stream plot (PNG); see <see cref="AccuracyPlot"/>.</summary>
    public void WritePlot(string pngPath) => AccuracyPlot.Write(this, pngPath);

    private int Sum(Func<SegmentReport, int> what)
    {
        int total = 0;
        foreach (SegmentReport s in Segments) total += what(s);
        return total;
    }
}
