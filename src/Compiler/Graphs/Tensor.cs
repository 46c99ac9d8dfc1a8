namespace TinyTrain.Compiler.Graphs;

/// <summary>A float parameter tensor, row-major. Conv weights are (OC, IC/groups, KH, KW); linear weights are (Out, In).</summary>
public sealed class Tensor
{
    public Tensor(params int[] dims)
    {
        Dims = dims;
        int n = 1;
        foreach (int d in dims) n *= d;
        Data = new float[n];
    }

    public Tensor(int[] dims, float[] data)
    {
        int n = 1;
        foreach (int d in dims) n *= d;
        if (n != data.Length)
            throw new ArgumentException($"tensor of shape [{string.Join(",", dims)}] needs {n} values, got {data.Length}");
        Dims = dims;
        Data = data;
    }

    public int[] Dims { get; }
    public float[] Data { get; }
    public int Length => Data.Length;

    public Tensor Clone() => new((int[])Dims.Clone(), (float[])Data.Clone());

    public override string ToString() => $"[{string.Join("x", Dims)}]";
}
