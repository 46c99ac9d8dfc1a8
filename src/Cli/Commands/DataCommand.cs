using Spectre.Console;
using TinyTrain.Compiler.Data;

namespace TinyTrain.Cli.Commands;

/// <summary>`tinytrain data fetch|list`.</summary>
internal static class DataCommand
{
    public static int Run(string[] args, CommandContext context)
    {
        var a = new Arguments(args, new HashSet<string> { "json" });
        bool json = a.Flag("json");
        string verb = a.Positional.Count > 0 ? a.Positional[0] : throw new UsageException("say `data fetch <name>` or `data list`");
        switch (verb)
        {
            case "fetch":
                a.EnsureAllUsed(2);
                if (a.Positional.Count < 2) throw new UsageException("say which data set: `tinytrain data fetch mnist` or `tinytrain data fetch fashion-mnist`");
                return Fetch(a.Positional[1], context, json);
            case "list":
                a.EnsureAllUsed(1);
                return List(context, json);
            default:
                throw new UsageException($"unknown data command '{verb}' (use fetch or list)");
        }
    }

    private static int Fetch(string name, CommandContext context, bool json)
    {
        IAnsiConsole console = Consoles.ForMode(context, json);
        string dir = "";
        console.Status().Start($"fetching {name}", status =>
        {
            dir = DataCatalog.Fetch(name, new Progress<string>(line => console.MarkupLine($"  [grey]{Markup.Escape(line)}[/]")));
        });
        DatasetInfo info = DataCatalog.Known.First(k => k.Name == name);
        console.MarkupLine($"[green]{Markup.Escape(name)}[/]: {info.TrainCount:N0} train / {info.TestCount:N0} test images in {Markup.Escape(dir)}");
        if (json) Json.Write(context.Stdout, new { name, directory = dir, train = info.TrainCount, test = info.TestCount });
        return 0;
    }

    private static int List(CommandContext context, bool json)
    {
        IReadOnlyList<DatasetInfo> known = DataCatalog.Known;
        if (json)
        {
            Json.Write(context.Stdout, new
            {
                cache_directory = DataCatalog.CacheDirectory,
                datasets = known.Select(k => new { name = k.Name, description = k.Description, source = k.Source, bundled = k.IsBundled, available = k.IsAvailable, train = k.TrainCount, test = k.TestCount, path = k.CachePath }),
            });
            return 0;
        }
        var table = new Table().Border(TableBorder.Rounded).Title("data sets")
            .AddColumn("name").AddColumn("description").AddColumn("source")
            .AddColumn(new TableColumn("train").RightAligned()).AddColumn(new TableColumn("test").RightAligned()).AddColumn("status");
        foreach (DatasetInfo k in known)
        {
            string status = k.IsBundled ? "[green]bundled[/]" : k.IsFetched ? "[green]cached[/]" : $"[yellow]run `tinytrain data fetch {Markup.Escape(k.Name)}`[/]";
            table.AddRow(Markup.Escape(k.Name), Markup.Escape(k.Description), Markup.Escape(k.Source),
                k.IsAvailable || k.TrainCount > 0 ? k.TrainCount.ToString("N0") : "", k.IsAvailable || k.TestCount > 0 ? k.TestCount.ToString("N0") : "", status);
        }
        context.Console.Write(table);
        context.Console.MarkupLine($"cache: {Markup.Escape(DataCatalog.CacheDirectory)} (set TINYTRAIN_DATA to move it)");
        return 0;
    }
}
