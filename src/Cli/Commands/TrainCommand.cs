using Spectre.Console;
using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Data;

namespace TinyTrain.Cli.Commands;

/// <summary>`tinytrain train plan.ttplan --data <name>`: on-device learning with the int8 runtime, batch 1.</summary>
internal static class TrainCommand
{
    public static int Run(string[] args, CommandContext context)
    {
        var a = new Arguments(args, new HashSet<string> { "json" });
        string path = a.Positional.Count > 0 ? a.Positional[0] : throw new UsageException("say which plan: `tinytrain train plan.ttplan --data mnist`");
        string data = a.Required("data", "a data set, e.g. mnist");
        int steps = a.Int("steps", 0, 10_000_000) ?? 1000;
        int batch = a.Int("batch", 1) ?? 1;
        float lr = a.Float("lr") ?? 0.01f;
        float? momentumArg = a.Float("momentum");
        int seed = a.Int("seed", 0) ?? 0;
        int evalSamples = a.Int("eval-samples", 1) ?? 0;
        bool json = a.Flag("json");
        a.EnsureAllUsed(1);
        if (batch != 1)
            throw new UsageException($"--batch {batch}: the device trains at batch 1 (one sample per step, as the published engine does)");
        if (!(lr > 0)) throw new UsageException($"--lr must be positive, got {lr}");
        IAnsiConsole console = Consoles.ForMode(context, json);

        var plan = PlanFile.Load(path);
        // A plan compiled with --momentum keeps optimizer state: it then trains with momentum 0.9 unless told otherwise.
        float momentum = momentumArg ?? (plan.StateBytes > 0 ? 0.9f : 0f);
        Dataset train = DataCatalog.Load(data, Split.Train), test = DataCatalog.Load(data, Split.Test);
        var options = new DeviceTrainingOptions { Steps = steps, LearningRate = lr, Momentum = momentum, Seed = seed, EvalSamples = evalSamples };
        console.MarkupLine($"on-device training of [bold]{Markup.Escape(plan.ModelName)}[/] on {Markup.Escape(data)}: {steps:N0} steps at batch 1, lr {lr}, " +
                           $"arena {plan.ArenaBytes:N0} B + params {plan.SramParamBytes:N0} B + state {plan.StateBytes:N0} B");
        DeviceTrainingResult r = Consoles.WithProgress(console, "training on the device", progress => DeviceTraining.Run(plan, train, test, options, progress));
        var table = new Table().Border(TableBorder.Rounded).AddColumn("").AddColumn(new TableColumn("").RightAligned());
        table.AddRow("accuracy before", $"{r.AccuracyBefore:P2}");
        table.AddRow("accuracy after", $"[green]{r.AccuracyAfter:P2}[/]");
        table.AddRow("mean loss", $"{r.MeanLoss:F4}");
        table.AddRow("steps", $"{r.Steps:N0} ({r.StepsPerSecond:F0} steps/s on this machine)");
        table.AddRow("arena (plan)", $"{r.ArenaBytes:N0} B");
        table.AddRow("arena high-water (measured)", $"{r.HighWaterBytes:N0} B");
        console.Write(table);
        if (json)
        {
            Json.Write(context.Stdout, new
            {
                plan = Path.GetFullPath(path), model = plan.ModelName, data, steps = r.Steps, batch = 1, lr, seed,
                accuracy_before = r.AccuracyBefore, accuracy_after = r.AccuracyAfter, mean_loss = r.MeanLoss,
                arena_bytes = r.ArenaBytes, arena_high_water_bytes = r.HighWaterBytes,
                param_bytes = plan.SramParamBytes, state_bytes = plan.StateBytes, steps_per_second = Math.Round(r.StepsPerSecond, 1),
                skipped_samples = r.Skipped,
            });
        }
        return 0;
    }
}
