using Spectre.Console;
using TinyTrain.Adapters.Kinds;
using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Planning;
using TinyTrain.Compiler.Quantization;

namespace TinyTrain.Cli.Commands;

/// <summary>`tinytrain compile`: model -> int8 plan, with a memory and ops report.</summary>
internal static class CompileCommand
{
    public static int Run(string[] args, CommandContext context)
    {
        var a = new Arguments(args, new HashSet<string> { "json", "momentum" });
        string model = a.Positional.Count > 0 ? a.Positional[0] : throw new UsageException("say which model: `tinytrain compile model.onnx ...` or a zoo name");
        string update = a.Option("update") ?? "none";
        string? calib = a.Option("calib");
        int calibSamples = a.Int("calib-samples", 1, 100_000) ?? 512;
        double percentile = a.Float("calib-percentile") ?? CompileOptions.DefaultCalibrationPercentile;
        int? resolution = a.Int("resolution", 1, 4096);
        int? classes = a.Int("classes", 2, 65_000);
        int seed = a.Int("seed", 0) ?? 0;
        string? boardId = a.Option("board");
        string plannerName = a.Option("planner") ?? "greedy";
        string patch = a.Option("patch") ?? "auto";
        string inPlaceDepthwise = a.Option("inplace-dw") ?? "on";
        string channelBackward = a.Option("channel-backward") ?? "on";
        string inPlacePointwise = a.Option("inplace-pw") ?? "on";
        string trainedSlices = a.Option("trained-slices") ?? "on";
        string streamInput = a.Option("stream-input") ?? "off";
        string midStages = a.Option("patch-mid") ?? "on";
        string stageOverInput = a.Option("stage-over-input") ?? "on";
        string recompute = a.Option("patch-recompute") ?? PatchStages.DefaultAutoRecompute.ToString(System.Globalization.CultureInfo.InvariantCulture);
        string qas = a.Option("qas") ?? "on";
        bool momentum = a.Flag("momentum");
        string? budgetText = a.Option("budget");
        string? output = a.Option("output");
        bool json = a.Flag("json");
        a.EnsureAllUsed(1);
        PlannerMode planner = plannerName switch
        {
            "greedy" => PlannerMode.Greedy,
            "naive" => PlannerMode.Naive,
            _ => throw new UsageException($"--planner must be greedy or naive, got '{plannerName}'"),
        };
        if (qas is not ("on" or "off")) throw new UsageException($"--qas must be on or off, got '{qas}'");
        if (inPlaceDepthwise is not ("on" or "off")) throw new UsageException($"--inplace-dw must be on or off, got '{inPlaceDepthwise}'");
        if (channelBackward is not ("on" or "off")) throw new UsageException($"--channel-backward must be on or off, got '{channelBackward}'");
        if (inPlacePointwise is not ("on" or "off")) throw new UsageException($"--inplace-pw must be on or off, got '{inPlacePointwise}'");
        if (trainedSlices is not ("on" or "off")) throw new UsageException($"--trained-slices must be on or off, got '{trainedSlices}'");
        if (streamInput is not ("on" or "off")) throw new UsageException($"--stream-input must be on or off, got '{streamInput}'");
        if (midStages is not ("on" or "off")) throw new UsageException($"--patch-mid must be on or off, got '{midStages}'");
        if (stageOverInput is not ("on" or "off")) throw new UsageException($"--stage-over-input must be on or off, got '{stageOverInput}'");
        double recomputeLimit = recompute == "none" ? double.PositiveInfinity
            : double.TryParse(recompute, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double share) && share >= 0 && double.IsFinite(share) ? share
            : throw new UsageException($"--patch-recompute must be a share of the step's MACs (e.g. 0.15) or none, got '{recompute}'");
        try
        {
            PatchStages.Parse(patch, out _, out _, out _);
        }
        catch (TinyTrain.TinyTrainException e)
        {
            throw new UsageException(e.Message);
        }
        IAnsiConsole console = Consoles.ForMode(context, json);
        var board = boardId is null ? null : TinyTrain.Compiler.Boards.BoardCatalog.Get(boardId);

        var graph = ModelSource.Load(model, resolution, classes, seed);
        CalibrationSet calibration;
        if (calib is not null)
            calibration = CalibrationSet.FromData(DataCatalog.Load(calib, Split.Train), graph.InputShape, calibSamples);
        else
        {
            calibration = CalibrationSet.Random(graph.InputShape, Math.Min(calibSamples, 64), seed);
            console.MarkupLine("[yellow]no --calib data: calibrating on random inputs; the plan's memory is exact, its accuracy is not meaningful[/]");
        }
        var options = new CompileOptions
        {
            Update = update,
            Planner = planner,
            Patch = patch,
            InPlaceDepthwise = inPlaceDepthwise == "on",
            ChannelBackward = channelBackward == "on",
            InPlacePointwise = inPlacePointwise == "on",
            TrainedSlices = trainedSlices == "on",
            StreamInput = streamInput == "on",
            PatchMidStages = midStages == "on",
            StageOverInput = stageOverInput == "on",
            PatchRecomputeLimit = recomputeLimit,
            CalibrationPercentile = percentile,
            Board = board?.Id,
            Training = new TinyTrain.Compiler.Learning.TrainingOptions { Qas = qas == "on", Momentum = momentum },
        };
        CompileResult result;
        AutoScheme? auto = null;
        if (update == "sparse:auto")
        {
            long budget = budgetText is not null
                ? TinyTrain.Compiler.Boards.ByteSize.Parse(budgetText) ?? throw new UsageException($"--budget '{budgetText}' is not a byte count; write it as 65536, 64KB or 1.5MB")
                : board?.UsableSramBytes ?? throw new UsageException("--update sparse:auto needs a memory budget: give --budget <bytes|KB> or --board <id>");
            Quantized quantized = PlanCompiler.Quantize(graph, calibration, options, training: true);
            // The search compiles every candidate with these options (patch stages, in-place depthwise) but without patch
            // stages further in, so the plan emitted below needs at most the SRAM the search measured.
            auto = SparseAuto.Search(quantized, options, calibration, budget, seed: seed);
            result = SparseAuto.Emit(quantized, auto.Scheme, options);
        }
        else
        {
            if (budgetText is not null) throw new UsageException("--budget applies only to --update sparse:auto");
            result = CompileAny(graph, calibration, options);
        }
        long? adaptationExtra = null;
        if (TinyTrain.Compiler.Learning.TrainableSet.IsTestTime(update))
            adaptationExtra = result.Plan.SramBytes - PlanCompiler.Compile(graph, calibration, options with { Update = "none" }).Plan.SramBytes;
        var report = PlanReport.From(result, board, update, adaptationExtra) with { Auto = auto };
        AdapterCost? adapter = AdapterSpec.IsAdapter(update) ? AdapterCompiler.Cost(result, board?.Id) : null;
        bool fits = report.Fit is not { Fits: false };
        if (output is not null && fits)
        {
            string? dir = Path.GetDirectoryName(Path.GetFullPath(output));
            if (dir is not null) Directory.CreateDirectory(dir);
            File.WriteAllBytes(output, result.Image);
        }

        if (json) Json.Write(context.Stdout, adapter is null ? report.ToJson(fits ? output : null) : new { plan = report.ToJson(fits ? output : null), adapter = AdapterJson(adapter) });
        else
        {
            report.Print(console, fits ? output : null);
            if (adapter is not null)
                console.MarkupLine($"adapter [bold]{adapter.Kind}[/]: {adapter.ParamsPerTask:N0} parameters per task (pack {adapter.PackBytes:N0} B); " +
                    $"SRAM to train it {adapter.SramBytes:N0} B (arena {adapter.ArenaBytes:N0} + adapter {adapter.ParamBytes:N0} + state {adapter.StateBytes:N0})" +
                    (adapter.Board is null ? "" : $" on {adapter.Board}"));
        }
        if (!fits)
        {
            string advice = SmallestChange(model, graph, resolution, update, options, board!);
            throw new TinyTrainException($"{report.Fit!.Summary}; {advice}; nothing was written");
        }
        return 0;
    }

    /// <summary>`--update adapter:KIND` rewrites the model first (src/Adapters); every other update is a trainable set.</summary>
    private static CompileResult CompileAny(TinyTrain.Compiler.Graphs.Graph graph, CalibrationSet calibration, CompileOptions options)
        => AdapterSpec.IsAdapter(options.Update)
            ? AdapterCompiler.Compile(graph, calibration, AdapterSpec.Parse(options.Update), options)
            : PlanCompiler.Compile(graph, calibration, options);

    private static object AdapterJson(AdapterCost c) => new
    {
        kind = c.Kind, params_per_task = c.ParamsPerTask, pack_bytes = c.PackBytes, sram_bytes = c.SramBytes,
        arena_bytes = c.ArenaBytes, param_bytes = c.ParamBytes, state_bytes = c.StateBytes, board = c.Board,
    };

    /// <summary>
    /// The smallest change that makes the plan fit: a smaller trainable set first (the model stays as
    /// trained), then, for a zoo model, a lower resolution. Each candidate is compiled for real; memory
    /// does not depend on calibration, so random inputs calibrate it.
    /// </summary>
    private static string SmallestChange(string model, TinyTrain.Compiler.Graphs.Graph graph, int? resolution, string update,
        CompileOptions options, TinyTrain.Compiler.Boards.BoardProfile board)
    {
        var changes = new List<string>();
        bool Fits(TinyTrain.Compiler.Graphs.Graph g, string u, out long sram)
        {
            CompileResult r = CompileAny(g, CalibrationSet.Random(g.InputShape, 2, 0), options with { Update = u, Trainable = null });
            var fit = TinyTrain.Compiler.Boards.MemoryFit.Check(PlanReport.Requirement(r), board);
            sram = fit.Sram.TotalBytes;
            return fit.Fits;
        }
        if (update != "none")
        {
            int convs = TinyTrain.Compiler.Learning.TrainableSet.ConvOps(PlanCompiler.Compile(graph, CalibrationSet.Random(graph.InputShape, 2, 0),
                options with { Update = "none", Trainable = null }).Model).Count;
            foreach (string smaller in new[] { $"bias:{convs / 2}", "bias:4", "bias:2", "bias:1", "bias:0", "none" }.Distinct())
            {
                if (smaller == update || (smaller.StartsWith("bias:") && int.Parse(smaller[5..]) > convs)) continue;
                if (Fits(graph, smaller, out long sram))
                {
                    changes.Add($"--update {smaller} ({TinyTrain.Compiler.Boards.ByteSize.Format(sram)} SRAM)");
                    break;
                }
            }
        }
        if (TinyTrain.Compiler.Zoo.ModelZoo.Names.Contains(model, StringComparer.OrdinalIgnoreCase))
        {
            int current = resolution ?? graph.InputShape.H;
            for (int r = (current - 1) / 16 * 16; r >= 32; r -= 16)
            {
                var smaller = TinyTrain.Compiler.Zoo.ModelZoo.Build(model, r, graph.NumClasses);
                if (Fits(smaller, update, out long sram))
                {
                    changes.Add($"--resolution {r} ({TinyTrain.Compiler.Boards.ByteSize.Format(sram)} SRAM)");
                    break;
                }
            }
        }
        return changes.Count == 0
            ? $"no smaller update or resolution fits {board.Id}; choose a board with more SRAM (see `tinytrain boards`)"
            : $"smallest changes that fit: {string.Join(", or ", changes)}";
    }
}
