namespace TinyTrain.Compiler.Zoo;

// Inside the namespace so that `Graph` means the class, not the sibling namespace TinyTrain.Compiler.Graphs.
using TinyTrain.Compiler.Graphs;

/// <summary>
/// The models TinyTrain can build from scratch (random weights from a seed): a small CNN for
/// 28x28 grayscale data and the three networks of "On-Device Training Under 256KB Memory"
/// (data/reference/tte-models.json), at any input resolution and class count.
/// </summary>
public static class ModelZoo
{
    public const int DefaultClasses = 10;

    /// <summary>The names <see cref="Build"/> accepts.</summary>
    public static IReadOnlyList<string> Names { get; } = ["cnn-s", "mbv2-w0.35", "proxyless-w0.3", "mcunet-5fps", "imu-cnn"];

    /// <summary>The input side a model is built for when no resolution is given: 28 for cnn-s, 64 samples for imu-cnn, 128 for the others.</summary>
    public static int DefaultResolution(string name) => Canonical(name) switch
    {
        "cnn-s" => CnnS.DefaultResolution,
        "imu-cnn" => ImuCnn.DefaultWindow,
        _ => MobileNets.DefaultResolution,
    };

    /// <summary>
    /// Builds a float graph with freshly initialised weights. Input is (1, r, r) for cnn-s,
    /// (6, r, 1) for imu-cnn (r samples of a 6-axis IMU) and (3, r, r) for the others; the output is <paramref name="classes"/> logits.
    /// </summary>
    /// <exception cref="TinyTrainException">Unknown name, a resolution smaller than the network's
    /// total stride, or fewer than two classes.</exception>
    public static Graph Build(string name, int? resolution = null, int? classes = null, int seed = 0)
    {
        string model = Canonical(name);
        int r = resolution ?? DefaultResolution(model);
        int k = classes ?? DefaultClasses;
        if (k < 2)
            throw new TinyTrainException($"model '{model}': classes must be at least 2, got {k}");
        return model switch
        {
            "cnn-s" => CnnS.Build(r, k, seed),
            "mbv2-w0.35" => MobileNets.Build(model, MobileNets.MobileNetV2W035, r, k, seed),
            "proxyless-w0.3" => MobileNets.Build(model, MobileNets.ProxylessW03, r, k, seed),
            "mcunet-5fps" => MobileNets.Build(model, MobileNets.McuNet5Fps, r, k, seed),
            "imu-cnn" => ImuCnn.Build(r, k, seed),
            _ => throw new InvalidOperationException($"model '{model}' is listed but has no builder"),
        };
    }

    /// <summary>Refuses a resolution below the network's total stride, where the last feature map would be made of padding.</summary>
    internal static void CheckResolution(string model, int resolution, int totalStride)
    {
        if (resolution < totalStride)
            throw new TinyTrainException(
                $"model '{model}': resolution {resolution} is too small; the network downsamples by {totalStride}, so the input must be at least {totalStride}x{totalStride}");
    }

    private static string Canonical(string name)
    {
        foreach (string known in Names)
            if (string.Equals(known, name?.Trim(), StringComparison.OrdinalIgnoreCase))
                return known;
        throw new TinyTrainException($"unknown model '{name}'; known models: {string.Join(", ", Names)}");
    }
}
