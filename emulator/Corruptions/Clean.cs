namespace TinyTrain.Emulator.Corruptions;

/// <summary>The identity: the image as it is (not one of MNIST-C's 15; a stream's uncorrupted segments use it).</summary>
public sealed class Clean : Corruption
{
    public override string Name => "clean";

    public override bool IsRandom => false;

    private protected override void Corrupt(ReadOnlySpan<byte> x, Span<byte> y, int width, int height, double severity, ref SplitMix64 rng) =>
        x.CopyTo(y);
}
