using Spectre.Console;
using TinyTrain.Compiler.Onnx;

namespace TinyTrain.Cli.Commands;

/// <summary>`tinytrain export plan.ttplan --onnx out.onnx`: the plan's int8 inference pass as an ONNX QDQ model, for ONNX Runtime.</summary>
internal static class ExportCommand
{
    public static int Run(string[] args, CommandContext context)
    {
        var a = new Arguments(args, new HashSet<string> { "json" });
        string path = a.Positional.Count > 0 ? a.Positional[0] : throw new UsageException("say which plan: `tinytrain export plan.ttplan --onnx model.onnx`");
        string onnx = a.Required("onnx", "the ONNX file to write, e.g. --onnx model.int8.onnx");
        bool json = a.Flag("json");
        a.EnsureAllUsed(1);
        IAnsiConsole console = Consoles.ForMode(context, json);

        var plan = PlanFile.Load(path);
        try
        {
            string? dir = Path.GetDirectoryName(Path.GetFullPath(onnx));
            if (dir is not null) Directory.CreateDirectory(dir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new TinyTrainException($"{onnx}: cannot create its folder: {e.Message}", e);
        }
        QdqExporter.Export(plan, onnx);

        var input = plan.Tensor(plan.InputTensor);
        long bytes = new FileInfo(onnx).Length;
        console.MarkupLine($"wrote [bold]{Markup.Escape(onnx)}[/] ({bytes:N0} bytes): [bold]{Markup.Escape(plan.ModelName)}[/] as ONNX QDQ (opset 13), " +
            $"input int8 (1, {input.C}, {input.H}, {input.W}) scale {input.Scale:G6} zero point {input.ZeroPoint}, outputs {QdqExporter.Int8OutputName} int8 and {QdqExporter.OutputName} float (1, {plan.NumClasses})");
        if (json)
        {
            Json.Write(context.Stdout, new
            {
                plan = Path.GetFullPath(path),
                onnx = Path.GetFullPath(onnx),
                model = plan.ModelName,
                bytes,
                input = new { name = QdqExporter.InputName, shape = new[] { 1, input.C, input.H, input.W }, scale = input.Scale, zero_point = input.ZeroPoint },
                outputs = new[] { QdqExporter.Int8OutputName, QdqExporter.OutputName },
                classes = plan.NumClasses,
            });
        }
        return 0;
    }
}
