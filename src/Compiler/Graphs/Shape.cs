namespace TinyTrain.Compiler.Graphs;

/// <summary>The shape of one sample's tensor, channels first (C, H, W); a flat vector is (C, 1, 1).</summary>
public readonly record struct Shape(int C, int H, int W)
{
    public int Size => C * H * W;

    public override string ToString() => H == 1 && W == 1 ? $"{C}" : $"{C}x{H}x{W}";
}
