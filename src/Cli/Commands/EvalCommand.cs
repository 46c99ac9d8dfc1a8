using Spectre.Console;
using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Data;

namespace TinyTrain.Cli.Commands;

/// <summary>`tinytrain eval plan.ttplan --data <name>`: accuracy of the int8 runtime on the test split.</summary>
internal static class EvalCommand
{
    public static int Run(string[] args, CommandContext context)
    {
        var a = new Arguments(args, new HashSet<string> { "json" });
        string path = a.Positional.Count > 0 ? a.Positional[0] : throw new UsageException("say which plan: `tinytrain eval plan.ttplan --data fashion-mnist`");
        string data = a.Required("data", "a data set, e.g. fashion-mnist");
        int max = a.Int("max-samples", 1) ?? 0;
        bool json = a.Flag("json");
        a.EnsureAllUsed(1);
        IAnsiConsole console = Consoles.ForMode(context, json);

        var plan = PlanFile.Load(path);
        Dataset test = DataCatalog.Load(data, Split.Test);
        EvalResult r = Consoles.WithProgress(console, $"int8 inference on {data}", progress => PlanEvaluator.Evaluate(plan, test, max, progress));
        console.MarkupLine($"[bold]{Markup.Escape(plan.ModelName)}[/] int8 on {Markup.Escape(data)}: accuracy [bold green]{r.Accuracy:P2}[/] ({r.Correct:N0}/{r.Samples:N0}), arena {plan.ArenaBytes:N0} bytes");
        if (json)
            Json.Write(context.Stdout, new { plan = Path.GetFullPath(path), model = plan.ModelName, data, accuracy = r.Accuracy, samples = r.Samples, correct = r.Correct, arena_bytes = plan.ArenaBytes });
        return 0;
    }
}
