namespace TinyTrain.Runtime.Ood;

/// <summary>How class prototypes are stored: one int8 per dimension (cosine score), or one bit (Hamming score).</summary>
public enum HdStorage : byte
{
    Int8 = 0,
    Bits = 1,
}

/// <summary>
/// The shape of a hyperdimensional prototype score: D (a positive multiple of 32, the projection's word
/// size), the storage of the prototypes, the seed of the random bipolar projection (regenerated on the
/// fly, never stored), and how many prototypes each class has (one bundle per class, or several bundles of
/// sub-clusters: a class such as "shirt" is rarely one direction). Its SRAM is the prototypes plus the
/// scorer's scratch; <see cref="ForBudget"/> picks the largest D that fits a byte budget.
/// </summary>
public sealed class HdConfig
{
    public const uint DefaultSeed = 0x2545F491;

    /// <summary>Dimensions per projection word: the scorer computes 32 dimensions at a time.</summary>
    public const int WordDimensions = 32;

    /// <summary>The largest D <see cref="ForBudget"/> chooses unless told otherwise; beyond it the score's time grows with no measured gain.</summary>
    public const int DefaultMaxDimensions = 4096;

    /// <summary>The most prototypes per class a config may have.</summary>
    public const int MaxPrototypesPerClass = 64;

    public HdConfig(int dimensions, HdStorage storage, uint seed = DefaultSeed, int prototypesPerClass = 1)
    {
        if (dimensions < WordDimensions || dimensions % WordDimensions != 0)
            throw new TinyTrainException($"hyperdimensional score: D is {dimensions}; it must be a positive multiple of {WordDimensions} (32, 64, ..., 1024, ...)");
        if (storage != HdStorage.Int8 && storage != HdStorage.Bits)
            throw new TinyTrainException($"hyperdimensional score: storage {(int)storage} is unknown; use int8 or bits");
        if (prototypesPerClass < 1 || prototypesPerClass > MaxPrototypesPerClass)
            throw new TinyTrainException($"hyperdimensional score: {prototypesPerClass} prototypes per class; it must lie in [1, {MaxPrototypesPerClass}]");
        Dimensions = dimensions;
        Storage = storage;
        Seed = seed;
        PrototypesPerClass = prototypesPerClass;
    }

    public int Dimensions { get; }
    public HdStorage Storage { get; }
    public uint Seed { get; }
    public int PrototypesPerClass { get; }
    public int Words => Dimensions / WordDimensions;

    /// <summary>"hd-int8" or "hd-bits", with "-xP" for P prototypes per class when P &gt; 1.</summary>
    public string Name => (Storage == HdStorage.Int8 ? "hd-int8" : "hd-bits") + (PrototypesPerClass > 1 ? "-x" + PrototypesPerClass : "");

    /// <summary>One prototype: D bytes (int8) or D / 8 bytes (bits).</summary>
    public int PrototypeBytes => Storage == HdStorage.Int8 ? Dimensions : Dimensions / 8;

    /// <summary>The stored state: <see cref="PrototypesPerClass"/> prototypes per class.</summary>
    public long StateBytes(int classes) => (long)classes * PrototypesPerClass * PrototypeBytes;

    /// <summary>
    /// The scorer's working memory: 32 int32 accumulators (one projection word) and 128 int32 buckets that
    /// compute it (<see cref="HdProjection.ProjectWord"/>), and per prototype a 64-bit dot product and a
    /// float32 norm (int8) or a 32-bit match count (bits).
    /// </summary>
    public long ScratchBytes(int classes) => ScratchBytes(Storage, (long)classes * PrototypesPerClass);

    /// <summary>State plus scratch: what the score adds to the board's SRAM.</summary>
    public long SramBytes(int classes) => StateBytes(classes) + ScratchBytes(classes);

    private static long ScratchBytes(HdStorage storage, long prototypes) =>
        4L * (WordDimensions + HdProjection.BucketCount) + prototypes * (storage == HdStorage.Int8 ? 8 + 4 : 4);

    /// <summary>
    /// The largest D (a multiple of 32, at most <paramref name="maxDimensions"/>) whose <see cref="SramBytes"/>
    /// for <paramref name="classes"/> fits <paramref name="budgetBytes"/>. Refuses a budget below D = 32.
    /// </summary>
    public static HdConfig ForBudget(long budgetBytes, int classes, HdStorage storage, uint seed = DefaultSeed,
        int prototypesPerClass = 1, int maxDimensions = DefaultMaxDimensions)
    {
        if (classes < 1)
            throw new TinyTrainException($"hyperdimensional score: {classes} classes; a prototype score needs at least one class");
        if (maxDimensions < WordDimensions)
            throw new TinyTrainException($"hyperdimensional score: the largest D allowed is {maxDimensions}; it must be at least {WordDimensions}");
        var smallest = new HdConfig(WordDimensions, storage, seed, prototypesPerClass);
        long least = smallest.SramBytes(classes);
        if (budgetBytes < least)
            throw new TinyTrainException(
                $"hyperdimensional score: a budget of {budgetBytes} B is too small: {(long)classes * prototypesPerClass} {(storage == HdStorage.Int8 ? "int8" : "bit")} prototypes " +
                $"at the smallest D = 32 need {least} B ({smallest.StateBytes(classes)} B prototypes + {smallest.ScratchBytes(classes)} B scratch); " +
                $"raise the budget{(prototypesPerClass > 1 ? ", use fewer prototypes per class" : "")}{(storage == HdStorage.Int8 ? " or store bits" : "")}");
        long perWord = (long)classes * prototypesPerClass * (storage == HdStorage.Int8 ? WordDimensions : WordDimensions / 8);
        long words = (budgetBytes - smallest.ScratchBytes(classes)) / perWord;
        long cap = maxDimensions / WordDimensions;
        return new HdConfig((int)(words < cap ? words : cap) * WordDimensions, storage, seed, prototypesPerClass);
    }

    public override string ToString() => $"{Name} D={Dimensions} x{PrototypesPerClass} per class, seed {Seed}";
}
