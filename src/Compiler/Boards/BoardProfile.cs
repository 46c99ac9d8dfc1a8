namespace TinyTrain.Compiler.Boards;

/// <summary>Floating-point hardware: none, single precision (float32), or double precision (float32 and float64).</summary>
public enum BoardFpu { None, Single, Double }

/// <summary>A bare-metal or RTOS microcontroller, or a board that runs Linux (and .NET) itself.</summary>
public enum BoardKind { Mcu, Linux }

/// <summary>
/// One board's limits and speed, read from boards/&lt;id&gt;.json (see boards/README.md for the meaning and source
/// of every figure). On Linux boards <see cref="SramBytes"/> is main memory and <see cref="FlashBytes"/> the SD card.
/// </summary>
public sealed record BoardProfile(
    string Id,
    string Name,
    string Core,
    int ClockMhz,
    int Cores,
    BoardFpu Fpu,
    string Simd,
    long SramBytes,
    long FlashBytes,
    long ReservedSramBytes,
    long ReservedFlashBytes,
    BoardKind Kind,
    string Source,
    IReadOnlyList<string> Notes,
    BoardThroughput Throughput)
{
    /// <summary>SRAM left to a plan (arena, writable parameters, state) after the runtime, stack and OS take theirs.</summary>
    public long UsableSramBytes => SramBytes - ReservedSramBytes;

    /// <summary>Flash left to a plan (frozen constants, plan metadata) after the runtime and application code.</summary>
    public long UsableFlashBytes => FlashBytes - ReservedFlashBytes;

    public bool HasFpu => Fpu != BoardFpu.None;

    /// <summary>The spelling used in the JSON files: "none", "sp" or "dp".</summary>
    public string FpuName => BoardProfileReader.FpuName(Fpu);

    /// <summary>The spelling used in the JSON files: "mcu" or "linux".</summary>
    public string KindName => BoardProfileReader.KindName(Kind);
}

/// <summary>
/// Estimated int8 throughput of one core, for a latency cost model: MACs per cycle by convolution kind, and bytes
/// per cycle of memory traffic. Estimates, not measurements; <see cref="Note"/> says where each comes from.
/// </summary>
public sealed record BoardThroughput(
    double ConvMacsPerCycle,
    double DepthwiseMacsPerCycle,
    double PointwiseMacsPerCycle,
    double MemoryBytesPerCycle,
    string Note);
