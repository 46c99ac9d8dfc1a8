using Spectre.Console;
using TinyTrain.Compiler.Boards;

namespace TinyTrain.Cli.Commands;

/// <summary>`tinytrain boards [id] [--json]`: the board profiles (boards/*.json), or one of them with its notes.</summary>
internal static class BoardsCommand
{
    private const int WideConsole = 150;

    public static int Run(string[] args, CommandContext context)
    {
        var a = new Arguments(args, new HashSet<string> { "json" });
        bool json = a.Flag("json");
        a.EnsureAllUsed(1);
        IReadOnlyList<BoardProfile> boards = a.Positional.Count == 1 ? [BoardCatalog.Get(a.Positional[0])] : BoardCatalog.All;

        if (json)
        {
            Json.Write(context.Stdout, new { boards = boards.Select(ToJson) });
            return 0;
        }
        if (a.Positional.Count == 1)
        {
            WriteOne(context.Console, boards[0]);
            return 0;
        }

        IAnsiConsole console = context.Console;
        if (console.Profile.Width >= WideConsole) console.Write(WideTable(boards));
        else
        {
            // The sources are long: a narrow console (80 columns when output is redirected) gets a borderless grid
            // that fits, and the sources under it, so that ids, which people type, are never broken across lines.
            console.Write(NarrowGrid(boards));
            console.MarkupLine("sources:");
            foreach (BoardProfile b in boards)
                console.MarkupLine($"  {Markup.Escape(b.Id)}: {Markup.Escape(b.Source)}");
        }
        console.MarkupLine("usable = SRAM minus what the runtime, stack and RTOS/OS reserve. On Linux boards SRAM is main memory and Flash the SD card.");
        console.MarkupLine("`tinytrain boards <id>` shows a board's notes and assumptions; boards/README.md says where each figure comes from.");
        return 0;
    }

    private static Table WideTable(IReadOnlyList<BoardProfile> boards)
    {
        var table = new Table().Border(TableBorder.Rounded).Title("boards")
            .AddColumn(new TableColumn("id").NoWrap()).AddColumn(new TableColumn("core").NoWrap())
            .AddColumn(new TableColumn("clock").RightAligned().NoWrap())
            .AddColumn(new TableColumn("FPU").NoWrap()).AddColumn(new TableColumn("SIMD").NoWrap())
            .AddColumn(new TableColumn("SRAM").RightAligned().NoWrap()).AddColumn(new TableColumn("Flash").RightAligned().NoWrap())
            .AddColumn(new TableColumn("usable SRAM").RightAligned().NoWrap()).AddColumn("source");
        foreach (BoardProfile b in boards)
            table.AddRow([.. Cells(b), Markup.Escape(b.Source)]);
        return table;
    }

    private static Grid NarrowGrid(IReadOnlyList<BoardProfile> boards)
    {
        var grid = new Grid();
        string[] headers = ["id", "core", "clock", "FPU", "SIMD", "SRAM", "Flash", "usable"];
        for (int i = 0; i < headers.Length; i++)
        {
            bool figure = i == 2 || i >= 5;
            grid.AddColumn(new GridColumn { Alignment = figure ? Justify.Right : Justify.Left }.NoWrap().Padding(0, 0, 1, 0));
        }
        grid.AddRow(Array.ConvertAll(headers, h => $"[bold]{h}[/]"));
        foreach (BoardProfile b in boards)
            grid.AddRow(Cells(b));
        return grid;
    }

    private static string[] Cells(BoardProfile b) =>
    [
        Markup.Escape(b.Id), Markup.Escape(Core(b)), $"{b.ClockMhz} MHz", b.FpuName, Markup.Escape(b.Simd),
        ByteSize.Format(b.SramBytes), ByteSize.Format(b.FlashBytes), ByteSize.Format(b.UsableSramBytes),
    ];

    private static void WriteOne(IAnsiConsole console, BoardProfile b)
    {
        var grid = new Grid().AddColumn().AddColumn();
        grid.AddRow("id", Markup.Escape(b.Id));
        grid.AddRow("name", Markup.Escape(b.Name));
        grid.AddRow("kind", b.KindName);
        grid.AddRow("core", $"{Markup.Escape(Core(b))} at {b.ClockMhz} MHz");
        grid.AddRow("FPU / SIMD", $"{b.FpuName} / {Markup.Escape(b.Simd)}");
        grid.AddRow("SRAM", $"{ByteSize.Format(b.SramBytes)} ({ByteSize.Format(b.ReservedSramBytes)} reserved, {ByteSize.Format(b.UsableSramBytes)} usable)");
        grid.AddRow("Flash", $"{ByteSize.Format(b.FlashBytes)} ({ByteSize.Format(b.ReservedFlashBytes)} reserved, {ByteSize.Format(b.UsableFlashBytes)} usable)");
        BoardThroughput t = b.Throughput;
        grid.AddRow("int8 MACs/cycle", $"conv {t.ConvMacsPerCycle:0.##}, depthwise {t.DepthwiseMacsPerCycle:0.##}, pointwise {t.PointwiseMacsPerCycle:0.##} (per core, estimated)");
        grid.AddRow("memory", $"{t.MemoryBytesPerCycle:0.##} bytes/cycle (estimated)");
        grid.AddRow("source", Markup.Escape(b.Source));
        console.Write(grid);
        foreach (string note in b.Notes)
            console.MarkupLine($"  - {Markup.Escape(note)}");
        console.MarkupLine($"  - throughput: {Markup.Escape(t.Note)}");
    }

    private static string Core(BoardProfile b) => b.Cores == 1 ? b.Core : $"{b.Cores}x {b.Core}";

    private static object ToJson(BoardProfile b) => new
    {
        id = b.Id,
        name = b.Name,
        core = b.Core,
        clock_mhz = b.ClockMhz,
        cores = b.Cores,
        fpu = b.FpuName,
        simd = b.Simd,
        sram_bytes = b.SramBytes,
        flash_bytes = b.FlashBytes,
        reserved_sram_bytes = b.ReservedSramBytes,
        reserved_flash_bytes = b.ReservedFlashBytes,
        usable_sram_bytes = b.UsableSramBytes,
        usable_flash_bytes = b.UsableFlashBytes,
        kind = b.KindName,
        source = b.Source,
        notes = b.Notes,
        throughput = new
        {
            conv_macs_per_cycle = b.Throughput.ConvMacsPerCycle,
            depthwise_macs_per_cycle = b.Throughput.DepthwiseMacsPerCycle,
            pointwise_macs_per_cycle = b.Throughput.PointwiseMacsPerCycle,
            memory_bytes_per_cycle = b.Throughput.MemoryBytesPerCycle,
            note = b.Throughput.Note,
        },
    };
}
