namespace TinyTrain.Compiler.Boards;

/// <summary>
/// What a plan needs, in bytes. SRAM: the planner's arena peak, trainable parameters that must be writable, and
/// runtime state (optimizer state, OOD prototypes, adapters in use). Flash: frozen constants (weights, quantization
/// constants) and the plan's own metadata.
/// </summary>
public sealed record MemoryRequirement(long ArenaBytes, long SramParamBytes, long StateBytes, long FlashConstantBytes, long PlanBytes);

public enum MemoryCategory { Arena, SramParams, State, SramReserve, FlashConstants, Plan, FlashReserve }

public readonly record struct MemoryPart(MemoryCategory Category, long Bytes);

/// <summary>SRAM use: the plan's three parts plus the board's reserve, against the board's SRAM.</summary>
public sealed record SramBreakdown(long ArenaBytes, long ParamBytes, long StateBytes, long ReserveBytes, long CapacityBytes)
{
    public long TotalBytes => checked(ArenaBytes + ParamBytes + StateBytes + ReserveBytes);
    public bool Fits => TotalBytes <= CapacityBytes;
    public long OverBytes => Math.Max(0, TotalBytes - CapacityBytes);
    public long HeadroomBytes => Math.Max(0, CapacityBytes - TotalBytes);

    public IReadOnlyList<MemoryPart> Parts =>
    [
        new(MemoryCategory.Arena, ArenaBytes), new(MemoryCategory.SramParams, ParamBytes),
        new(MemoryCategory.State, StateBytes), new(MemoryCategory.SramReserve, ReserveBytes),
    ];

    /// <summary>The largest part the plan controls (the reserve belongs to the board); the first on a tie.</summary>
    public MemoryPart LargestPlanPart => MemoryFit.Largest(Parts, MemoryCategory.SramReserve);
}

/// <summary>Flash use: the plan's constants and metadata plus the runtime/application reserve, against the board's Flash.</summary>
public sealed record FlashBreakdown(long ConstantBytes, long PlanBytes, long ReserveBytes, long CapacityBytes)
{
    public long TotalBytes => checked(ConstantBytes + PlanBytes + ReserveBytes);
    public bool Fits => TotalBytes <= CapacityBytes;
    public long OverBytes => Math.Max(0, TotalBytes - CapacityBytes);
    public long HeadroomBytes => Math.Max(0, CapacityBytes - TotalBytes);

    public IReadOnlyList<MemoryPart> Parts =>
    [
        new(MemoryCategory.FlashConstants, ConstantBytes), new(MemoryCategory.Plan, PlanBytes),
        new(MemoryCategory.FlashReserve, ReserveBytes),
    ];

    public MemoryPart LargestPlanPart => MemoryFit.Largest(Parts, MemoryCategory.FlashReserve);
}

/// <summary>Whether a plan fits a board, with both breakdowns. What to change is the caller's call: it knows the update schemes.</summary>
public sealed record FitReport(BoardProfile Board, MemoryRequirement Requirement, SramBreakdown Sram, FlashBreakdown Flash)
{
    public bool Fits => Sram.Fits && Flash.Fits;
    public long SramOverBytes => Sram.OverBytes;
    public long FlashOverBytes => Flash.OverBytes;

    /// <summary>The largest plan-controlled part of the first memory that overflows (SRAM before Flash); null when the plan fits.</summary>
    public MemoryPart? LargestOverflowingPart => !Sram.Fits ? Sram.LargestPlanPart : !Flash.Fits ? Flash.LargestPlanPart : null;

    /// <summary>One line for a CLI. A refusal names each memory that overflows with its breakdown; a fit gives both totals.</summary>
    public string Summary
    {
        get
        {
            string id = Board.Id;
            if (Fits)
                return $"plan fits {id}: SRAM {ByteSize.Format(Sram.TotalBytes)} of {ByteSize.Format(Sram.CapacityBytes)} {SramParts()}, "
                    + $"Flash {ByteSize.Format(Flash.TotalBytes)} of {ByteSize.Format(Flash.CapacityBytes)} {FlashParts()}";
            var lines = new List<string>(2);
            if (!Sram.Fits)
                lines.Add($"plan needs {ByteSize.Format(Sram.TotalBytes)} SRAM {SramParts()} but {id} has {ByteSize.Format(Sram.CapacityBytes)}: "
                    + $"over by {ByteSize.Format(Sram.OverBytes)}");
            if (!Flash.Fits)
                lines.Add($"plan needs {ByteSize.Format(Flash.TotalBytes)} Flash {FlashParts()} but {id} has {ByteSize.Format(Flash.CapacityBytes)}: "
                    + $"over by {ByteSize.Format(Flash.OverBytes)}");
            return string.Join("; ", lines);
        }
    }

    private string SramParts() =>
        $"(arena {ByteSize.Format(Sram.ArenaBytes)} + params {ByteSize.Format(Sram.ParamBytes)} + state {ByteSize.Format(Sram.StateBytes)} "
        + $"+ reserve {ByteSize.Format(Sram.ReserveBytes)})";

    private string FlashParts() =>
        $"(constants {ByteSize.Format(Flash.ConstantBytes)} + plan {ByteSize.Format(Flash.PlanBytes)} + runtime reserve {ByteSize.Format(Flash.ReserveBytes)})";
}

/// <summary>Checks a plan's memory requirement against a board profile's SRAM and Flash.</summary>
public static class MemoryFit
{
    public static FitReport Check(MemoryRequirement requirement, BoardProfile board)
    {
        ArgumentNullException.ThrowIfNull(requirement);
        ArgumentNullException.ThrowIfNull(board);
        NotNegative(requirement.ArenaBytes, nameof(requirement.ArenaBytes));
        NotNegative(requirement.SramParamBytes, nameof(requirement.SramParamBytes));
        NotNegative(requirement.StateBytes, nameof(requirement.StateBytes));
        NotNegative(requirement.FlashConstantBytes, nameof(requirement.FlashConstantBytes));
        NotNegative(requirement.PlanBytes, nameof(requirement.PlanBytes));
        var sram = new SramBreakdown(requirement.ArenaBytes, requirement.SramParamBytes, requirement.StateBytes,
            board.ReservedSramBytes, board.SramBytes);
        var flash = new FlashBreakdown(requirement.FlashConstantBytes, requirement.PlanBytes, board.ReservedFlashBytes, board.FlashBytes);
        return new FitReport(board, requirement, sram, flash);
    }

    internal static MemoryPart Largest(IReadOnlyList<MemoryPart> parts, MemoryCategory excluded)
    {
        MemoryPart? best = null;
        foreach (MemoryPart part in parts)
            if (part.Category != excluded && (best is null || part.Bytes > best.Value.Bytes))
                best = part;
        return best!.Value;
    }

    private static void NotNegative(long value, string name)
    {
        if (value < 0) throw new ArgumentOutOfRangeException(name, value, "A memory requirement cannot be negative.");
    }
}
