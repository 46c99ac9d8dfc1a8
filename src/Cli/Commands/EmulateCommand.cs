using Spectre.Console;
using TinyTrain.Compiler.Boards;
using TinyTrain.Emulator.Device;
using TinyTrain.Emulator.Report;
using TinyTrain.Emulator.Streams;

namespace TinyTrain.Cli.Commands;

/// <summary>
/// `tinytrain emulate plan.ttplan --board B --stream SPEC`: the plan on an emulated board, over a stream with drift,
/// predicting each sample and then learning from it (where it is labelled and the plan can train).
/// </summary>
internal static class EmulateCommand
{
    public static int Run(string[] args, CommandContext context)
    {
        var a = new Arguments(args, new HashSet<string> { "json" });
        string path = a.Positional.Count > 0 ? a.Positional[0]
            : throw new UsageException("say which plan: `tinytrain emulate plan.ttplan --board stm32f746-disco --stream mnist-mini:clean*500,mnist-mini-c:fog*500`");
        string boardId = a.Required("board", $"a board: {string.Join(", ", BoardCatalog.Ids)}");
        string spec = a.Required("stream", "segments such as mnist:clean*2000,mnist-c:fog*2000, or @stream.json");
        int seed = a.Int("seed", 0) ?? 0;
        float lr = a.Float("lr") ?? 0.01f;
        float oodThreshold = a.Float("ood-threshold") ?? 0f;
        int window = a.Int("window", 1) ?? EmulatedDevice.DefaultWindow;
        int taskHeldOut = a.Int("task-holdout", 0, 10_000) ?? TaskProbe.DefaultHeldOut;
        string? plotPath = a.Option("plot");
        bool json = a.Flag("json");
        a.EnsureAllUsed(1);
        if (!(lr > 0)) throw new UsageException($"--lr must be positive, got {lr}");
        if (!(oodThreshold >= 0 && oodThreshold < 1)) throw new UsageException($"--ood-threshold is a maximum softmax probability in [0, 1), got {oodThreshold}");
        if (plotPath is not null && string.IsNullOrWhiteSpace(plotPath)) throw new UsageException("--plot needs a file name, e.g. --plot accuracy.png");
        IAnsiConsole console = Consoles.ForMode(context, json);

        BoardProfile board = BoardCatalog.Get(boardId);
        var plan = PlanFile.Load(path);
        if (plan.Board is { } compiledFor && !string.Equals(compiledFor, board.Id, StringComparison.OrdinalIgnoreCase))
            Console.Error.WriteLine($"warning: {path} was compiled for {compiledFor}; checking it against {board.Id}'s limits instead");
        TinyTrain.Runtime.Plans.TensorInfo input = plan.Tensor(plan.InputTensor);
        if (input.Streamed)
            Console.Error.WriteLine($"note: {path} streams its input (--stream-input on): each {input.ByteLength:N0}-byte frame is read band by band from " +
                "outside SRAM (a camera FIFO, external RAM), so the SRAM figures here do not include it");
        var device = new EmulatedDevice(plan, board, lr, (uint)seed, oodThreshold);
        DataStream stream = DataStream.Open(spec, (ulong)seed, device.InputShape);
        console.MarkupLine($"emulating [bold]{Markup.Escape(plan.ModelName)}[/] on [bold]{Markup.Escape(board.Id)}[/] ({Markup.Escape(board.Name)}): " +
                           $"{stream.TotalCount:N0} samples in {stream.Segments.Count} segment(s), " +
                           (device.AdaptsWithoutLabels ? $"predict then adapt without labels (lr {lr}, OOD threshold {oodThreshold})"
                            : device.CanTrain ? $"predict then learn (lr {lr})" : "inference only (the plan has no trainable set)") + $", seed {seed}");
        EmulationReport report = Consoles.WithProgress(console, "streaming through the device", progress => device.Run(stream, progress, window, taskHeldOut));

        var segments = new Table().Border(TableBorder.Rounded).Title("accuracy by segment")
            .AddColumn("segment").AddColumn(new TableColumn("samples").RightAligned()).AddColumn(new TableColumn("accuracy").RightAligned())
            .AddColumn(new TableColumn(device.AdaptsWithoutLabels ? "adapted" : "trained").RightAligned()).AddColumn(new TableColumn("skipped").RightAligned());
        if (device.AdaptsWithoutLabels) segments.AddColumn(new TableColumn("OOD rate").RightAligned());
        foreach (SegmentReport s in report.Segments)
        {
            var cells = new List<string> { Markup.Escape(s.Name), s.Samples.ToString("N0"), s.Samples == s.Skipped ? "-" : $"{s.Accuracy:P1}",
                s.Trained.ToString("N0"), s.Skipped == 0 ? "0" : $"[yellow]{s.Skipped:N0}[/]" };
            if (device.AdaptsWithoutLabels) cells.Add($"{s.OodRate:P1}");
            segments.AddRow(cells.ToArray());
        }
        console.Write(segments);
        if (device.AdaptsWithoutLabels)
            console.MarkupLine($"adaptation: {report.Trained:N0} samples learned from; {device.Resets} reset(s) to the source model (a sustained OOD rate)");

        if (report.Tasks.Count > 0)
        {
            var tasks = new Table().Border(TableBorder.Rounded)
                .Title($"accuracy by task (held-out images from the other split, scored every {report.Window} samples)")
                .AddColumn("task").AddColumn(new TableColumn("first sample").RightAligned()).AddColumn(new TableColumn("held out").RightAligned())
                .AddColumn(new TableColumn("best").RightAligned()).AddColumn(new TableColumn("final").RightAligned()).AddColumn(new TableColumn("forgetting").RightAligned());
            foreach (TaskReport t in report.Tasks)
                tasks.AddRow(Markup.Escape(t.Name), t.FirstSample.ToString("N0"), t.HeldOut.ToString("N0"), $"{t.Best:P1}", $"{t.Final:P1}",
                    t.Forgetting >= 0.1 ? $"[yellow]{t.Forgetting * 100:F1} points[/]" : $"{t.Forgetting * 100:F1} points");
            console.Write(tasks);
        }

        var summary = new Table().Border(TableBorder.Rounded).Title($"{Markup.Escape(board.Id)}: memory and time")
            .AddColumn("").AddColumn(new TableColumn("").RightAligned());
        summary.AddRow("SRAM: arena high-water (measured) / plan arena", $"{report.SramHighWaterBytes:N0} / {report.ArenaBytes:N0} B");
        summary.AddRow("SRAM: + params, state, board reserve", $"{report.SramUsedBytes:N0} B of {report.SramBytes:N0} B ({ByteSize.Format(report.SramBytes)})");
        summary.AddRow("Flash: plan file + runtime reserve", $"{report.FlashBytes:N0} B of {report.FlashCapacityBytes:N0} B ({ByteSize.Format(report.FlashCapacityBytes)})");
        summary.AddRow($"estimated on {Markup.Escape(board.Id)}: inference", $"{report.EstimatedMsPerInference:F1} ms");
        summary.AddRow($"estimated on {Markup.Escape(board.Id)}: training step",
            report.EstimatedMsPerStep is double ms ? $"{ms:F1} ms" : "- (inference plan)");
        summary.AddRow("this machine", $"{report.StepsPerSecond:N0} samples/s");
        console.Write(summary);
        console.MarkupLine("[grey]times on the board are the cost model's estimates (emulator/CostModel/README.md); against the published " +
                           "Tiny Training Engine latencies on an STM32F746 they are about 4x too fast: read them as lower bounds[/]");

        if (plotPath is not null)
        {
            report.WritePlot(plotPath);
            console.MarkupLine($"wrote [bold]{Markup.Escape(plotPath)}[/]");
        }
        if (json)
        {
            context.Stdout.WriteLine(report.ToJson());
            context.Stdout.Flush();
        }
        return 0;
    }
}
