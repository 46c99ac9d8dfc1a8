namespace TinyTrain.Runtime.Ood;

/// <summary>How class prototypes are stored: one int8 per dimension (cosine score), or one bit (Hamming score).</summary>
public enum HdStorage : byte
{
    Int8 = 0,
    Bits = 1,
}

/// <summary>
/// The shape of a hyperdimensional prototype score: D (a positive multiple of 32, the projection's word
/// size), the storage of the prototypes, and the seed of the random bipolar projection (regenerated on the
/// fly, never stored). Its SRAM is the prototypes plus the scorer's scratch; <see cref="ForBudget"/> picks
/// the largest D that fits a byte budget.
/// </summary>
public sealed class HdConfig
{
    public const uint DefaultSeed = 0x2545F491;

    /// <summary>Dimensions per projection word: the scorer computes 32 dimensions at a time.</summary>
    public const int WordDimensions = 32;

    /// <summary>The largest D <see cref="ForBudget"/> chooses unless told otherwise; beyond it the score's time grows with no measured gain.</summary>
    public const int DefaultMaxDimensions = 4096;

    public HdConfig(int dimensions, HdStorage storage, uint seed = DefaultSeed)
    {
        if (dimensions < WordDimensions || dimensions % WordDimensions != 0)
            throw new TinyTrainException($"hyperdimensional score: D is {dimensions}; it must be a positive multiple of {WordDimensions} (32, 64, ..., 1024, ...)");
        if (storage != HdStorage.Int8 && storage != HdStorage.Bits)
            throw new TinyTrainException($"hyperdimensional score: storage {(int)storage} is unknown; use int8 or bits");
        Dimensions = dimensions;
        Storage = storage;
        Seed = seed;
    }

    public int Dimensions { get; }
    public HdStorage Storage { get; }
    public uint Seed { get; }
    public int Words => Dimensions / WordDimensions;

    /// <summary>"hd-int8" or "hd-bits".</summary>
    public string Name => Storage == HdStorage.Int8 ? "hd-int8" : "hd-bits";

    /// <summary>One prototype: D bytes (int8) or D / 8 bytes (bits).</summary>
    public int PrototypeBytes => Storage == HdStorage.Int8 ? Dimensions : Dimensions / 8;

    /// <summary>The stored state: one prototype per class.</summary>
    public long StateBytes(int classes) => (long)classes * PrototypeBytes;

    /// <summary>
    /// The scorer's working memory: 32 int32 accumulators (one projection word), and per class a 64-bit dot
    /// product and a float32 prototype norm (int8) or a 32-bit match count (bits).
    /// </summary>
    public static long ScratchBytes(HdStorage storage, int classes) =>
        4L * WordDimensions + (long)classes * (storage == HdStorage.Int8 ? 8 + 4 : 4);

    /// <summary>State plus scratch: what the score adds to the board's SRAM.</summary>
    public long SramBytes(int classes) => StateBytes(classes) + ScratchBytes(Storage, classes);

    /// <summary>
    /// The largest D (a multiple of 32, at most <paramref name="maxDimensions"/>) whose <see cref="SramBytes"/>
    /// for <paramref name="classes"/> fits <paramref name="budgetBytes"/>. Refuses a budget below D = 32.
    /// </summary>
    public static HdConfig ForBudget(long budgetBytes, int classes, HdStorage storage, uint seed = DefaultSeed, int maxDimensions = DefaultMaxDimensions)
    {
        if (classes < 1)
            throw new TinyTrainException($"hyperdimensional score: {classes} classes; a prototype score needs at least one class");
        if (maxDimensions < WordDimensions)
            throw new TinyTrainException($"hyperdimensional score: the largest D allowed is {maxDimensions}; it must be at least {WordDimensions}");
        var smallest = new HdConfig(WordDimensions, storage, seed);
        long least = smallest.SramBytes(classes);
        if (budgetBytes < least)
            throw new TinyTrainException(
                $"hyperdimensional score: a budget of {budgetBytes} B is too small: {classes} {(storage == HdStorage.Int8 ? "int8" : "bit")} prototypes at the smallest D = 32 need {least} B " +
                $"({smallest.StateBytes(classes)} B prototypes + {ScratchBytes(storage, classes)} B scratch); raise the budget{(storage == HdStorage.Int8 ? " or store bits" : "")}");
        long perWord = (long)classes * (storage == HdStorage.Int8 ? WordDimensions : WordDimensions / 8);
        long words = (budgetBytes - ScratchBytes(storage, classes)) / perWord;
        long cap = maxDimensions / WordDimensions;
        return new HdConfig((int)(words < cap ? words : cap) * WordDimensions, storage, seed);
    }

    public override string ToString() => $"{Name} D={Dimensions} seed={Seed}";
}
