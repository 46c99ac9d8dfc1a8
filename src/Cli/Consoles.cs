using Spectre.Console;

namespace TinyTrain.Cli;

internal static class Consoles
{
    /// <summary>With --json, stdout carries only the JSON object; people still see progress on stderr.</summary>
    public static IAnsiConsole ForMode(CommandContext context, bool json)
        => json ? AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) }) : context.Console;

    /// <summary>Runs work under a progress bar with one task; the work reports (done, total).</summary>
    public static T WithProgress<T>(IAnsiConsole console, string description, Func<Action<int, int>, T> work)
    {
        if (!console.Profile.Capabilities.Interactive)
        {
            // Redirected output (CI, pipes): a few plain lines instead of a redrawn bar.
            int lastTenth = -1;
            return work((done, total) =>
            {
                int tenth = total > 0 ? (int)(10L * done / total) : 10;
                if (tenth == lastTenth) return;
                lastTenth = tenth;
                console.MarkupLine($"[grey]{Markup.Escape(description)}: {done}/{total}[/]");
            });
        }
        T result = default!;
        console.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                ProgressTask task = ctx.AddTask(Markup.Escape(description));
                result = work((done, total) =>
                {
                    task.MaxValue = Math.Max(1, total);
                    task.Value = done;
                });
            });
        return result;
    }
}
