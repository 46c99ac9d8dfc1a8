namespace TinyTrain.Adapters.Kinds;

/// <summary>The four adapter kinds (DESIGN.md: trainable sets that a rewrite inserted).</summary>
public enum AdapterKind
{
    /// <summary>Biases of every conv plus a new classifier head: no rewrite, the cheapest.</summary>
    Bias,
    /// <summary>Channel-wise reprogramming (Ge et al. 2023): a 3x3 depthwise conv after each conv with a kernel
    /// larger than 1x1, started as the identity; its center tap and bias are the per-channel scale and shift.</summary>
    Clr,
    /// <summary>Lite residual (TinyTL, Cai et al. 2020): a side branch from each such conv's input, average-pooled
    /// to the conv's output resolution and a 1x1 conv started at zero, added to the conv's output.</summary>
    Residual,
    /// <summary>Low rank (LoRA, Hu et al. 2021): W + B A on fully connected layers and on pointwise convs without a
    /// following activation; A (rank x in) random, B (out x rank) zero.</summary>
    Lora,
}

/// <summary>`--update adapter:clr|bias|residual|lora[:rank]`, parsed.</summary>
public sealed record AdapterSpec(AdapterKind Kind, int Rank = 0)
{
    public const string Prefix = "adapter:";
    public const int DefaultRank = 4;

    /// <summary>The kind as packs and plans name it: bias, clr, residual, lora:R.</summary>
    public string Name => Kind switch
    {
        AdapterKind.Bias => "bias",
        AdapterKind.Clr => "clr",
        AdapterKind.Residual => "residual",
        _ => $"lora:{Rank}",
    };

    public override string ToString() => Prefix + Name;

    public static bool IsAdapter(string update) => update.StartsWith(Prefix, StringComparison.Ordinal);

    public static AdapterSpec Parse(string update)
    {
        string body = IsAdapter(update) ? update[Prefix.Length..] : update;
        switch (body)
        {
            case "bias": return new AdapterSpec(AdapterKind.Bias);
            case "clr": return new AdapterSpec(AdapterKind.Clr);
            case "residual": return new AdapterSpec(AdapterKind.Residual);
            case "lora": return new AdapterSpec(AdapterKind.Lora, DefaultRank);
        }
        if (body.StartsWith("lora:", StringComparison.Ordinal))
        {
            if (int.TryParse(body.AsSpan(5), out int rank) && rank >= 1 && rank <= 64) return new AdapterSpec(AdapterKind.Lora, rank);
            throw new TinyTrainException($"--update {update}: the LoRA rank must be a whole number from 1 to 64, e.g. adapter:lora:4");
        }
        throw new TinyTrainException($"--update {update}: not an adapter kind; use adapter:clr, adapter:bias, adapter:residual or adapter:lora[:rank]");
    }
}
