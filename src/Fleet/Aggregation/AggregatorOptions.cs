namespace TinyTrain.Fleet.Aggregation;

public enum AggregationMode
{
    /// <summary>Sample-count (and staleness) weighted mean: FedAvg.</summary>
    Mean,
    /// <summary>Coordinate-wise trimmed mean.</summary>
    TrimmedMean,
    /// <summary>Coordinate-wise median.</summary>
    Median,
}

public sealed record AggregatorOptions
{
    public AggregationMode Mode { get; init; } = AggregationMode.Mean;
    /// <summary>Share dropped from each end per coordinate in TrimmedMean.</summary>
    public double TrimFraction { get; init; } = 0.2;
    /// <summary>Clip every update to this L2 norm before combining; 0 = no clipping; negative = the buffer's median norm.</summary>
    public double ClipNorm { get; init; }
    /// <summary>Updates buffered before a round closes (buffered asynchronous aggregation).</summary>
    public int BufferSize { get; init; } = 10;
    /// <summary>A late update's weight is multiplied by 1 / (1 + staleness)^alpha.</summary>
    public double StalenessAlpha { get; init; } = 0.5;
    /// <summary>Updates more versions behind than this are refused (stale_version).</summary>
    public int MaxStaleness { get; init; } = 8;
    /// <summary>The combined delta is scaled by this before it is added to the global adapter.</summary>
    public float ServerLearningRate { get; init; } = 1f;
    /// <summary>Larger messages are refused before they are parsed.</summary>
    public int MaxMessageBytes { get; init; } = 256 * 1024;

    /// <summary>Parses a --aggregation flag: mean, trimmed[:F], median, each optionally +clip[:X] (X omitted: median norm).</summary>
    public static AggregatorOptions Parse(string text, AggregatorOptions defaults)
    {
        ArgumentNullException.ThrowIfNull(text);
        AggregatorOptions o = defaults;
        foreach (string part in text.Split('+', StringSplitOptions.TrimEntries))
        {
            string[] kv = part.Split(':', 2);
            string key = kv[0].ToLowerInvariant();
            double? value = kv.Length > 1 && double.TryParse(kv[1], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double v) ? v : null;
            if (kv.Length > 1 && value is null) throw new TinyTrainException($"aggregation '{text}': '{kv[1]}' is not a number");
            o = key switch
            {
                "mean" => o with { Mode = AggregationMode.Mean },
                "trimmed" => o with { Mode = AggregationMode.TrimmedMean, TrimFraction = value ?? o.TrimFraction },
                "median" => o with { Mode = AggregationMode.Median },
                "clip" => o with { ClipNorm = value ?? -1 },
                _ => throw new TinyTrainException($"aggregation '{text}': unknown part '{part}'; use mean, trimmed[:F], median, each optionally +clip[:X]"),
            };
        }
        if (o.Mode == AggregationMode.TrimmedMean && !(o.TrimFraction >= 0 && o.TrimFraction < 0.5))
            throw new TinyTrainException($"aggregation '{text}': the trim fraction must be in [0, 0.5)");
        return o;
    }

    public string Describe()
    {
        string mode = Mode switch { AggregationMode.TrimmedMean => $"trimmed:{TrimFraction:0.##}", AggregationMode.Median => "median", _ => "mean" };
        return ClipNorm == 0 ? mode : ClipNorm < 0 ? mode + "+clip" : $"{mode}+clip:{ClipNorm:0.###}";
    }
}
