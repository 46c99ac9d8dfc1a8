namespace TinyTrain.Emulator.CostModel;

using System.Globalization;
using System.Text;
using System.Text.Json;
using TinyTrain.Compiler.Boards;
using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Learning;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Compiler.Zoo;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

/// <summary>One model's estimated training step against the published TTE sparse-update latency (paper Fig 10(c)).</summary>
public sealed record CalibrationRow(
    string Model, string Scheme, long InferenceMacs, long TrainStepMacs,
    double EstimatedMsPerInference, double EstimatedMsPerStep, double PublishedMsPerStep, int ClockMhz)
{
    /// <summary>Estimated over published: below 1 the model is optimistic (predicts a faster board than measured).</summary>
    public double Ratio => EstimatedMsPerStep / PublishedMsPerStep;

    /// <summary>How far off, as a factor of at least 1 either way.</summary>
    public double Factor => Ratio >= 1 ? Ratio : 1 / Ratio;

    /// <summary>Signed relative error: (estimated - published) / published.</summary>
    public double RelativeError => Ratio - 1;

    /// <summary>MACs per cycle the estimate amounts to over the whole step (every op's time included).</summary>
    public double EstimatedMacsPerCycle => TrainStepMacs / (EstimatedMsPerStep * ClockMhz * 1000.0);

    /// <summary>MACs per cycle the published time amounts to, for the same step MACs: what the board really sustained.</summary>
    public double PublishedMacsPerCycle => TrainStepMacs / (PublishedMsPerStep * ClockMhz * 1000.0);
}

/// <summary>
/// Checks the cost model against the one published on-device training latency we have: MIT's Tiny Training Engine,
/// sparse update, batch 1, 128x128, on an STM32F746 (Fig 10(c) of "On-Device Training Under 256KB Memory"; figures
/// and schemes from data/reference/tte-models.json). Each zoo model is compiled with its largest shipped sparse
/// scheme (the paper does not name the one it timed) and the estimate of one training step is compared.
/// </summary>
public static class CostModelCalibration
{
    public const string BoardId = "stm32f746-disco";
    public const int Resolution = 128;
    public const int Classes = 10;

    /// <summary>The three networks of the paper, as zoo names (which are also the keys of tte-models.json's `models`).</summary>
    public static IReadOnlyList<string> Models { get; } = ["mbv2-w0.35", "proxyless-w0.3", "mcunet-5fps"];

    /// <summary>data/reference/tte-models.json above the working directory or this assembly; null when neither has it.</summary>
    public static string? FindReference()
    {
        foreach (string start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                string path = Path.Combine(dir.FullName, "data", "reference", "tte-models.json");
                if (File.Exists(path)) return path;
            }
        return null;
    }

    /// <summary>Compiles each model and compares; <paramref name="progress"/> hears each model's name before it compiles.</summary>
    public static IReadOnlyList<CalibrationRow> Run(string referencePath, Action<string>? progress = null)
    {
        if (!File.Exists(referencePath))
            throw new TinyTrainException($"{referencePath}: no such file; the cost-model calibration reads data/reference/tte-models.json");
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(referencePath));
        BoardProfile board = BoardCatalog.Get(BoardId);
        var rows = new List<CalibrationRow>();
        foreach (string name in Models)
        {
            progress?.Invoke(name);
            JsonElement model = Field(doc.RootElement, referencePath, "models", name);
            double published = Field(model, referencePath, "published", "training_latency_ms_per_image_stm32f746", "tte_sparse_update").GetDouble();
            (string schemeName, SparseScheme scheme) = LargestScheme(model, referencePath, name);
            PlanImage plan = Compile(name, scheme, schemeName);
            CostEstimate estimate = CostEstimator.Estimate(plan, board);
            rows.Add(new CalibrationRow(name, schemeName, estimate.InferenceMacs, estimate.TrainStepMacs,
                estimate.MsPerInference, estimate.MsPerTrainStep ?? estimate.MsPerInference, published, board.ClockMhz));
        }
        return rows;
    }

    /// <summary>The zoo model at 128x128, 10 classes, random calibration, trained with <paramref name="scheme"/>.</summary>
    public static PlanImage Compile(string name, SparseScheme scheme, string schemeName)
    {
        var graph = ModelZoo.Build(name, Resolution, Classes, seed: 0);
        CompileResult result = PlanCompiler.Compile(graph, CalibrationSet.Random(graph.InputShape, 4, 0),
            new CompileOptions { Trainable = m => TrainableSet.FromScheme(scheme, m, schemeName) });
        return PlanImage.Load(result.Image, $"{name} ({schemeName})");
    }

    /// <summary>A fixed-width text table of the rows, for a README or a benchmark's output.</summary>
    public static string Format(IReadOnlyList<CalibrationRow> rows)
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture,
            $"{"model",-16} {"scheme",-7} {"fwd MACs",12} {"step MACs",12} {"est. infer ms",13} {"est. step ms",12} {"published ms",12} {"est/pub",8} {"est MAC/cyc",11} {"pub MAC/cyc",11}");
        foreach (CalibrationRow r in rows)
            text.AppendLine(CultureInfo.InvariantCulture,
                $"{r.Model,-16} {r.Scheme,-7} {r.InferenceMacs,12:N0} {r.TrainStepMacs,12:N0} {r.EstimatedMsPerInference,13:F1} {r.EstimatedMsPerStep,12:F1} {r.PublishedMsPerStep,12:F0} {r.Ratio,8:F2} {r.EstimatedMacsPerCycle,11:F2} {r.PublishedMacsPerCycle,11:F2}");
        return text.ToString();
    }

    // The last (largest-memory) scheme in sparse_update_schemes: names grow with the analytic memory they need.
    private static (string Name, SparseScheme Scheme) LargestScheme(JsonElement model, string path, string name)
    {
        JsonElement schemes = Field(model, path, "sparse_update_schemes");
        if (schemes.ValueKind != JsonValueKind.Array || schemes.GetArrayLength() == 0)
            throw new TinyTrainException($"{path}: models.{name}.sparse_update_schemes is not a non-empty array");
        JsonElement largest = schemes[schemes.GetArrayLength() - 1];
        string schemeName = Field(largest, path, "name").GetString() ?? "scheme";
        return (schemeName, SparseScheme.FromJson(largest, $"{path} models.{name} scheme {schemeName}"));
    }

    private static JsonElement Field(JsonElement element, string path, params string[] names)
    {
        JsonElement current = element;
        foreach (string n in names)
            if (current.ValueKind != JsonValueKind.Object || !current.TryGetProperty(n, out current))
                throw new TinyTrainException($"{path}: missing field '{string.Join(".", names)}' (at '{n}')");
        return current;
    }
}
