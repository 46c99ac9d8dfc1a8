namespace TinyTrain.Emulator.Corruptions;

/// <summary>
/// MNIST-C canny_edges: the Canny edge map (skimage's defaults, see Canny) as white on black. The paper has no
/// parameter; severities below 1 blend the edge map with the image (weight = severity), 1 and above give the map.
/// </summary>
public sealed class CannyEdges : Corruption
{
    public override string Name => "canny-edges";

    public override bool IsRandom => false;

    private protected override void Corrupt(ReadOnlySpan<byte> x, Span<byte> y, int width, int height, double severity, ref SplitMix64 rng)
    {
        double weight = Math.Min(1.0, severity);
        double[] rented = Pixels.Rent(x.Length);
        try
        {
            Span<double> edges = rented.AsSpan(0, x.Length);
            Canny.Detect(x, edges, width, height);
            for (int i = 0; i < x.Length; i++)
                y[i] = Pixels.ToByte((1 - weight) * x[i] + weight * 255.0 * edges[i]);
        }
        finally
        {
            Pixels.Return(rented);
        }
    }
}
