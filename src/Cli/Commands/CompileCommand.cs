using Spectre.Console;
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
        string qas = a.Option("qas") ?? "on";
        bool momentum = a.Flag("momentum");
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
        CompileResult result = PlanCompiler.Compile(graph, calibration, new CompileOptions
        {
            Update = update,
            Planner = planner,
            CalibrationPercentile = percentile,
            Training = new TinyTrain.Compiler.Learning.TrainingOptions { Qas = qas == "on", Momentum = momentum },
        });
        var report = PlanReport.From(result, board, update);
        if (output is not null)
        {
            string? dir = Path.GetDirectoryName(Path.GetFullPath(output));
            if (dir is not null) Directory.CreateDirectory(dir);
            File.WriteAllBytes(output, result.Image);
        }

        if (json) Json.Write(context.Stdout, report.ToJson(output));
        else report.Print(console, output);
        if (report.Fit is { Fits: false })
            throw new TinyTrainException(report.Fit.Summary);
        return 0;
    }
}
