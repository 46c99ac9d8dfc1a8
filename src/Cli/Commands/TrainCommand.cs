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
        string? state = a.Option("state");
        string? task = a.Option("task");
        bool json = a.Flag("json");
        a.EnsureAllUsed(1);
        if ((state is null) != (task is null)) throw new UsageException("--state <dir> and --task <name> go together: the learned adapter is stored as that task's pack");
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
        // With --state, what the device learned is stored as the task's pack (a new version when the task has one).
        var store = state is null ? null : new TinyTrain.Adapters.Packs.AdapterStore(state);
        var layout = store is null ? null : TinyTrain.Adapters.Packs.AdapterLayout.Of(plan);
        TinyTrain.Adapters.Packs.AdapterPack? previous = store is not null && store.Contains(task!) ? store.Load(task!) : null;
        TinyTrain.Adapters.Packs.AdapterPack? saved = null;
        void Keep(TinyTrain.Runtime.Execution.Executor executor)
        {
            if (store is null) return;
            saved = layout!.Capture(executor, task!, (previous?.Samples ?? 0) + steps, (previous?.Version ?? 0) + 1);
            store.Save(saved);
        }
        if (previous is not null)
            console.MarkupLine($"[yellow]task {Markup.Escape(task!)} already has an adapter (version {previous.Version}); this run learns a new one from the plan's start and stores it as version {previous.Version + 1}[/]");
        DeviceTrainingResult r = Consoles.WithProgress(console, "training on the device", progress => DeviceTraining.Run(plan, train, test, options, progress, Keep));
        if (saved is not null) console.MarkupLine($"stored the {Markup.Escape(saved.Kind)} adapter of task [bold]{Markup.Escape(saved.Task)}[/] ({saved.ParameterCount:N0} parameters) in {Markup.Escape(state!)}");
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
                skipped_samples = r.Skipped, adapter_task = saved?.Task, adapter_version = saved?.Version,
            });
        }
        return 0;
    }
}
