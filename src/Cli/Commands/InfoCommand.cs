using Spectre.Console;
using TinyTrain.Compiler.Analysis;
using TinyTrain.Compiler.Graphs;

namespace TinyTrain.Cli.Commands;

/// <summary>`tinytrain info`: parameters, MACs, per-layer output shapes and activation bytes.</summary>
internal static class InfoCommand
{
    public static int Run(string[] args, CommandContext context)
    {
        var a = new Arguments(args, new HashSet<string> { "json" });
        string model = a.Required("model", "a zoo model or an .onnx file");
        int? resolution = a.Int("resolution", 1, 4096);
        int? classes = a.Int("classes", 2, 100_000);
        bool json = a.Flag("json");
        a.EnsureAllUsed(0);

        var graph = ModelSource.Load(model, resolution, classes);
        ModelStats stats = ModelStats.Compute(graph);
        if (json)
        {
            Json.Write(context.Stdout, new
            {
                model = graph.Name,
                input = new[] { graph.InputShape.C, graph.InputShape.H, graph.InputShape.W },
                classes = graph.NumClasses,
                @params = stats.Params,
                params_float = stats.ParamsFloat,
                macs = stats.Macs,
                peak_activation_bytes_int8 = stats.PeakActivationBytesInt8,
                peak_activation_layer = stats.PeakActivationLayer,
                layers = stats.Layers.Select(l => new
                {
                    name = l.Name,
                    op = l.Kind.ToString(),
                    output = new[] { l.OutputShape.C, l.OutputShape.H, l.OutputShape.W },
                    @params = l.Params,
                    macs = l.Macs,
                    activation_bytes_int8 = l.ActivationBytesInt8,
                    activation_bytes_float32 = l.ActivationBytesFloat32,
                }),
            });
            return 0;
        }

        IAnsiConsole console = context.Console;
        var table = new Table().Border(TableBorder.Rounded)
            .Title($"{Markup.Escape(graph.Name)}: input {graph.InputShape}, {graph.NumClasses} classes")
            .AddColumn("layer").AddColumn("op").AddColumn("output")
            .AddColumn(new TableColumn("params").RightAligned())
            .AddColumn(new TableColumn("MACs").RightAligned())
            .AddColumn(new TableColumn("act. int8").RightAligned())
            .AddColumn(new TableColumn("act. fp32").RightAligned());
        foreach (LayerStats l in stats.Layers)
        {
            if (l.Kind is OpKind.BatchNorm or OpKind.Relu or OpKind.Relu6 && l.Params == 0) continue;
            table.AddRow(Markup.Escape(l.Name), l.Kind.ToString(), l.OutputShape.ToString(),
                l.Params == 0 ? "" : l.Params.ToString("N0"), l.Macs == 0 ? "" : l.Macs.ToString("N0"),
                Bytes(l.ActivationBytesInt8), Bytes(l.ActivationBytesFloat32));
        }
        console.Write(table);
        console.MarkupLine("(BatchNorm and activations are folded into the conv before them and not listed)");
        var totals = new Grid().AddColumn().AddColumn(new GridColumn().RightAligned());
        totals.AddRow("parameters (BN folded, as deployed)", stats.Params.ToString("N0"));
        totals.AddRow("parameters (float graph, BN gamma/beta)", stats.ParamsFloat.ToString("N0"));
        totals.AddRow("MACs per inference", stats.Macs.ToString("N0"));
        totals.AddRow("weights in int8", Bytes(stats.Params));
        totals.AddRow($"peak activation, int8 (at {Markup.Escape(stats.PeakActivationLayer)})", Bytes(stats.PeakActivationBytesInt8));
        console.Write(totals);
        return 0;
    }

    internal static string Bytes(long bytes) => bytes >= 1024 * 1024 ? $"{bytes / (1024.0 * 1024):F2} MB" : bytes >= 1024 ? $"{bytes / 1024.0:F1} KB" : $"{bytes} B";
}
