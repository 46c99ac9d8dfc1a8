using Spectre.Console;
using TinyTrain.Compiler.Boards;
using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Planning;

namespace TinyTrain.Cli;

/// <summary>The compile report: memory by category, the planner against the naive layout, per-op rows, and the board check.</summary>
internal sealed record PlanReport(CompileResult Result, FitReport? Fit, string Update, long? AdaptationExtraSram = null)
{
    /// <param name="adaptationExtraSram">Test-time adaptation plans: SRAM beyond the same model's inference plan.</param>
    public static PlanReport From(CompileResult result, BoardProfile? board, string update = "none", long? adaptationExtraSram = null)
    {
        FitReport? fit = board is null ? null : MemoryFit.Check(Requirement(result), board);
        return new PlanReport(result, fit, update, adaptationExtraSram);
    }

    public static MemoryRequirement Requirement(CompileResult r)
        => new(r.Plan.ArenaBytes, r.Plan.ParamBytes, r.Plan.StateBytes, r.Plan.ConstantBytes, r.Image.Length - r.Plan.ConstantBytes);

    /// <summary>What sparse:auto chose, when it chose.</summary>
    public AutoScheme? Auto { get; init; }

    private EmittedPlan Plan => Result.Plan;
    private long SramTotal => Plan.SramBytes;
    // The halo recomputation of every patch stage: the step's own MACs are the ops' sum less this.
    private long StageMacs() => (Result.Program.Patch?.ExtraMacs ?? 0) + Result.Program.MidStages.Sum(m => m.ExtraMacs);

    public object ToJson(string? output) => new
    {
        model = Result.Model.Name,
        plan = output is null ? null : Path.GetFullPath(output),
        update = Update,
        trained_parameters = Result.Program.Trainable.PerOp.Select((t, i) => new { t, i }).Where(x => x.t.Any)
            .Select(x => new { op = Result.Model.Ops[x.i].Name, weight_channels = x.t.WeightChannels, bias = x.t.Bias }),
        auto = Auto is null ? null : new
        {
            budget_bytes = Auto.BudgetBytes, sram_bytes = Auto.SramBytes, smallest_bytes = Auto.SmallestBytes,
            score_share = Math.Round(Auto.ScoreShare, 4), compiles = Auto.Compiles,
            scheme = new { n_bias_update = Auto.Scheme.NBiasUpdate, manual_weight_idx = Auto.Scheme.ManualWeightIdx, weight_update_ratio = Auto.Scheme.WeightUpdateRatio },
            steps = Auto.Steps,
        },
        calibration = Result.Calibration,
        flash_bytes = Result.Image.Length,
        flash = new { constants_bytes = Plan.ConstantBytes, plan_metadata_bytes = Result.Image.Length - Plan.ConstantBytes },
        sram = new { arena_bytes = Plan.ArenaBytes, param_bytes = Plan.ParamBytes, state_bytes = Plan.StateBytes, total_bytes = SramTotal },
        adaptation_extra_sram_bytes = AdaptationExtraSram,
        peak = new
        {
            op = Plan.Peak.OpName, activation_bytes = Plan.Peak.ActivationBytes, saved_for_backward_bytes = Plan.Peak.SavedForBackwardBytes,
            gradient_bytes = Plan.Peak.GradientBytes, scratch_bytes = Plan.Peak.ScratchBytes,
        },
        patch = Result.Program.Patch is not { } patch ? null : new
        {
            first_op = patch.FirstOp, last_op = patch.LastOp, ops = patch.Ops, grid = $"{patch.Rows}x{patch.Cols}", tile_buffer_bytes = patch.TileBufferBytes,
            macs = patch.Macs, patched_macs = patch.PatchedMacs, extra_macs = patch.ExtraMacs, unpatched_arena_bytes = patch.UnpatchedArenaBytes,
            input_streamed = patch.BandRows > 0, band_rows = patch.BandRows, band_bytes = patch.BandBytes,
            output_staged_over_input = patch.SpillRows > 0, spill_rows = patch.SpillRows,
        },
        mid_stages = Result.Program.MidStages.Select(m => new
        {
            first_op = m.FirstOp, last_op = m.LastOp, ops = m.Ops, grid = $"{m.Rows}x{m.Cols}", tile_buffer_bytes = m.TileBufferBytes,
            macs = m.Macs, patched_macs = m.PatchedMacs, extra_macs = m.ExtraMacs,
        }).ToList(),
        planner = new { mode = Plan.Memory.Mode.ToString().ToLowerInvariant(), peak_bytes = Plan.Memory.PeakBytes, naive_bytes = Plan.NaiveMemory.PeakBytes },
        macs = Plan.Ops.Sum(o => o.Macs),
        ops = Plan.Ops.Select(o => new
        {
            index = o.Index, name = o.Name, kind = o.Kind, phase = o.Phase, output = o.Output, arena_offset = o.OutputOffset,
            output_bytes = o.OutputBytes, macs = o.Macs, constant_bytes = o.ConstantBytes, in_place = o.InPlace,
        }),
        board = Fit is null ? null : new
        {
            id = Fit.Board.Id,
            fits = Fit.Fits,
            summary = Fit.Summary,
            sram = new { arena_bytes = Fit.Sram.ArenaBytes, param_bytes = Fit.Sram.ParamBytes, state_bytes = Fit.Sram.StateBytes, reserve_bytes = Fit.Sram.ReserveBytes, total_bytes = Fit.Sram.TotalBytes, capacity_bytes = Fit.Sram.CapacityBytes },
            flash = new { constants_bytes = Fit.Flash.ConstantBytes, plan_bytes = Fit.Flash.PlanBytes, reserve_bytes = Fit.Flash.ReserveBytes, total_bytes = Fit.Flash.TotalBytes, capacity_bytes = Fit.Flash.CapacityBytes },
        },
    };

    public void Print(IAnsiConsole console, string? output)
    {
        var ops = new Table().Border(TableBorder.Rounded).Title($"{Markup.Escape(Result.Model.Name)}: int8 plan, update {Markup.Escape(Update)}, {Plan.Ops.Count} ops")
            .AddColumn(new TableColumn("#").RightAligned()).AddColumn("op").AddColumn("kind").AddColumn("phase").AddColumn("output")
            .AddColumn(new TableColumn("arena offset").RightAligned()).AddColumn(new TableColumn("bytes").RightAligned())
            .AddColumn(new TableColumn("MACs").RightAligned()).AddColumn(new TableColumn("Flash").RightAligned());
        foreach (OpReport o in Plan.Ops)
            ops.AddRow(o.Index.ToString(), Markup.Escape(o.Name), o.Kind + (o.InPlace ? " (in place)" : ""), o.Phase, o.Output,
                o.OutputOffset < 0 ? "" : o.OutputOffset.ToString("N0"), o.OutputBytes.ToString("N0"), o.Macs == 0 ? "" : o.Macs.ToString("N0"),
                o.ConstantBytes == 0 ? "" : ByteSize.Format(o.ConstantBytes));
        console.Write(ops);

        var memory = new Table().Border(TableBorder.Rounded).Title("memory")
            .AddColumn("where").AddColumn("what").AddColumn(new TableColumn("bytes").RightAligned());
        memory.AddRow("Flash", "constants (int8 weights, int32 bias, multipliers, shifts)", Plan.ConstantBytes.ToString("N0"));
        memory.AddRow("Flash", "plan tables (tensors, ops, names)", (Result.Image.Length - Plan.ConstantBytes).ToString("N0"));
        memory.AddRow("[bold]Flash[/]", "[bold]plan file[/]", $"[bold]{Result.Image.Length:N0}[/]");
        memory.AddRow("SRAM", $"arena ({Plan.Memory.Mode.ToString().ToLowerInvariant()} planner; naive layout {Plan.NaiveMemory.PeakBytes:N0})", Plan.ArenaBytes.ToString("N0"));
        memory.AddRow("SRAM", $"  at the peak ({Markup.Escape(Plan.Peak.OpName)}): activations {Plan.Peak.ActivationBytes:N0}, saved for backward {Plan.Peak.SavedForBackwardBytes:N0}, gradients {Plan.Peak.GradientBytes:N0}", "");
        memory.AddRow("SRAM", "writable parameters (trained weights and biases)", Plan.ParamBytes.ToString("N0"));
        memory.AddRow("SRAM", "optimizer state", Plan.StateBytes.ToString("N0"));
        memory.AddRow("[bold]SRAM[/]", "[bold]total[/]", $"[bold]{SramTotal:N0}[/]");
        if (AdaptationExtraSram is { } extra)
            memory.AddRow("SRAM", "  of which test-time adaptation adds (over the inference plan)", extra.ToString("N0"));
        console.Write(memory);
        console.MarkupLine($"calibrated on {Markup.Escape(Result.Calibration)}");
        if (Result.Program.Patch is { } patch)
            console.WriteLine($"patch by patch: {patch.FirstOp}..{patch.LastOp} ({patch.Ops} ops) in {patch.Rows}x{patch.Cols} tiles, tile buffer {patch.TileBufferBytes:N0} B; " +
                $"arena {patch.UnpatchedArenaBytes:N0} -> {Plan.ArenaBytes:N0} B; recompute {patch.ExtraMacs:N0} MACs " +
                $"(+{100.0 * patch.ExtraMacs / Math.Max(1, patch.Macs):F1} % of the stage's {patch.Macs:N0}, +{100.0 * patch.ExtraMacs / Math.Max(1, Plan.Ops.Sum(o => o.Macs) - StageMacs()):F1} % of the step)");
        foreach (PatchInfo m in Result.Program.MidStages)
            console.WriteLine($"patch by patch further in: {m.FirstOp}..{m.LastOp} ({m.Ops} ops) in {m.Rows}x{m.Cols} tiles, tile buffer {m.TileBufferBytes:N0} B; " +
                $"recompute {m.ExtraMacs:N0} MACs (+{100.0 * m.ExtraMacs / Math.Max(1, Plan.Ops.Sum(o => o.Macs) - StageMacs()):F1} % of the step)");
        if (Result.Program.Patch is { SpillRows: > 0 } staged)
            console.WriteLine($"first stage output staged over its input: each output row kept on input rows no later tile reads " +
                $"({staged.SpillRows} rows in a spill buffer first), moved to the input's end after the last tile");
        if (Result.Program.Patch is { BandRows: > 0 } streamed)
            console.WriteLine($"input streamed: the {Result.Program.Tensors[Result.Program.Input].Bytes:N0}-byte input is never in the arena; a band of {streamed.BandRows} " +
                $"rows ({streamed.BandBytes:N0} B, in the tile buffer) is read from the host's frame (outside SRAM: camera FIFO, external RAM) row by row, once each");
        if (Auto is not null)
        {
            PrintAuto(console, Auto);
        }
        if (Fit is not null)
            console.MarkupLine(Fit.Fits ? $"[green]fits {Markup.Escape(Fit.Board.Id)}[/]: {Markup.Escape(Fit.Summary)}" : $"[red]{Markup.Escape(Fit.Summary)}[/]");
        if (output is not null) console.MarkupLine($"wrote [bold]{Markup.Escape(output)}[/] ({Result.Image.Length:N0} bytes)");
    }

    private static void PrintAuto(IAnsiConsole console, AutoScheme auto)
    {
        var s = auto.Scheme;
        console.WriteLine($"sparse:auto under {ByteSize.Format(auto.BudgetBytes)}: n_bias_update {s.NBiasUpdate}, manual_weight_idx [{string.Join(",", s.ManualWeightIdx)}], " +
            $"weight_update_ratio [{string.Join(",", s.WeightUpdateRatio.Select(r => r.ToString(System.Globalization.CultureInfo.InvariantCulture)))}]; " +
            $"{auto.SramBytes:N0} B SRAM as searched (without patch stages further in; the plan below needs at most that), {auto.ScoreShare:P1} of the full " +
            $"update's gradient score ({auto.Steps.Count} moves, {auto.Compiles} plans compiled)");
        foreach (string step in auto.Steps) console.WriteLine("  + " + step);
    }
}
