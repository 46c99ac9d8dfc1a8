namespace TinyTrain.Runtime.Ood;

/// <summary>
/// Class prototypes of a hyperdimensional score, as a board stores them: <see cref="Count"/> prototypes of
/// <see cref="HdConfig.PrototypeBytes"/> bytes each, class after class (prototype i belongs to class
/// i / PrototypesPerClass). Int8: D signed bytes (the direction of the bundled projections). Bits: D bits,
/// dimension d in byte d / 8, bit d % 8 (LSB first), set where the bundled sum is positive.
/// <see cref="Features"/> is the feature count the projection was built for.
/// </summary>
public sealed class HdPrototypes
{
    public HdPrototypes(HdConfig config, int classes, int features, byte[] data)
    {
        if (config is null) throw new ArgumentNullException(nameof(config));
        if (data is null) throw new ArgumentNullException(nameof(data));
        if (classes < 1)
            throw new TinyTrainException($"hyperdimensional prototypes: {classes} classes; at least one is needed");
        if (features < 1 || features > HdProjection.MaxFeatures)
            throw new TinyTrainException($"hyperdimensional prototypes: {features} features; it must lie in [1, {HdProjection.MaxFeatures}]");
        if (data.Length != config.StateBytes(classes))
            throw new TinyTrainException(
                $"hyperdimensional prototypes: {data.Length} bytes, but {(long)classes * config.PrototypesPerClass} {config.Name} prototypes of D = {config.Dimensions} need {config.StateBytes(classes)}");
        Config = config;
        Classes = classes;
        Features = features;
        Data = data;
    }

    public HdConfig Config { get; }
    public int Classes { get; }
    public int Features { get; }

    /// <summary>Classes x prototypes per class.</summary>
    public int Count => Classes * Config.PrototypesPerClass;

    /// <summary>The prototypes' bytes (on a board, an SRAM or Flash buffer).</summary>
    public byte[] Data { get; }

    /// <summary>Prototypes plus the scorer's scratch.</summary>
    public long SramBytes => Config.SramBytes(Classes);
}
