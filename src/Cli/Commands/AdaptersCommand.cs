using Spectre.Console;
using TinyTrain.Adapters.Packs;

namespace TinyTrain.Cli.Commands;

/// <summary>`tinytrain adapters list|show|export|import`: the adapter packs kept in a device state directory.</summary>
internal static class AdaptersCommand
{
    public static int Run(string[] args, CommandContext context)
    {
        var a = new Arguments(args, new HashSet<string> { "json" });
        string verb = a.Positional.Count > 0 ? a.Positional[0] : throw new UsageException("say what to do: `tinytrain adapters list|show|export|import --state <dir>`");
        string state = a.Option("state") ?? throw new UsageException("--state <dir> is required: the device state directory that holds adapters/");
        string? planPath = a.Option("plan");
        string? output = a.Option("output");
        bool json = a.Flag("json");
        IAnsiConsole console = Consoles.ForMode(context, json);
        var store = new AdapterStore(state);
        switch (verb)
        {
            case "list":
            {
                a.EnsureAllUsed(1);
                var packs = store.Tasks().Select(t => store.Load(t)).ToList();
                string? active = store.Active;
                if (json)
                {
                    Json.Write(context.Stdout, new { state, active, adapters = packs.Select(p => Summary(p, active)).ToList() });
                    return 0;
                }
                if (packs.Count == 0)
                {
                    console.WriteLine($"{state}: no adapters stored");
                    return 0;
                }
                var table = new Table().AddColumns("task", "kind", "version", "samples", "parameters", "bytes", "base model", "created (UTC)");
                foreach (AdapterPack p in packs)
                    table.AddRow((p.Task == active ? "* " : "") + p.Task, p.Kind, p.Version.ToString(), p.Samples.ToString("N0"), p.ParameterCount.ToString("N0"),
                        p.PayloadBytes.ToString("N0"), p.Identity[..12], p.CreatedUtc.ToString("yyyy-MM-dd HH:mm:ss"));
                console.Write(table);
                return 0;
            }
            case "show":
            {
                string task = a.Positional.Count > 1 ? a.Positional[1] : throw new UsageException("say which task: `tinytrain adapters show <task> --state <dir>`");
                a.EnsureAllUsed(2);
                AdapterPack p = store.Load(task);
                if (json)
                {
                    Json.Write(context.Stdout, new
                    {
                        summary = Summary(p, store.Active),
                        tensors = p.Tensors.Select(t => new { name = t.Name, type = t.Type.ToString().ToLowerInvariant(), shape = t.Shape, bytes = t.Data.Length }).ToList(),
                    });
                    return 0;
                }
                console.WriteLine($"task {p.Task}: {p.Kind} adapter, version {p.Version}, {p.Samples:N0} samples, created {p.CreatedUtc:yyyy-MM-dd HH:mm:ss} UTC");
                console.WriteLine($"base model {p.Identity}; {p.ParameterCount:N0} parameters, {p.PayloadBytes:N0} bytes");
                var table = new Table().AddColumns("tensor", "type", "shape", "bytes");
                foreach (PackTensor t in p.Tensors) table.AddRow(t.Name, t.Type.ToString().ToLowerInvariant(), t.ShapeText, t.Data.Length.ToString("N0"));
                console.Write(table);
                return 0;
            }
            case "export":
            {
                string task = a.Positional.Count > 1 ? a.Positional[1] : throw new UsageException("say which task: `tinytrain adapters export <task> --state <dir> -o file.ttpack`");
                if (output is null) throw new UsageException("say where to write the pack: -o file.ttpack");
                a.EnsureAllUsed(2);
                store.Export(task, output);
                console.WriteLine($"exported task {task} to {output}");
                return 0;
            }
            case "import":
            {
                string file = a.Positional.Count > 1 ? a.Positional[1] : throw new UsageException("say which pack: `tinytrain adapters import file.ttpack --state <dir> --plan plan.ttplan`");
                if (planPath is null) throw new UsageException("--plan plan.ttplan is required: a pack is checked against the device's plan before it is stored");
                a.EnsureAllUsed(2);
                AdapterLayout layout = AdapterLayout.Of(PlanFile.Load(planPath));
                AdapterPack p = store.Import(file, layout);
                console.WriteLine($"imported task {p.Task} ({p.Kind}, version {p.Version}, {p.ParameterCount:N0} parameters) into {state}");
                return 0;
            }
            default:
                throw new UsageException($"unknown adapters command '{verb}'; use list, show, export or import");
        }
    }

    private static object Summary(AdapterPack p, string? active) => new
    {
        task = p.Task, kind = p.Kind, version = p.Version, samples = p.Samples, parameters = p.ParameterCount, bytes = p.PayloadBytes,
        identity = p.Identity, created_utc = p.CreatedUtc.ToString("o"), active = p.Task == active,
    };
}
