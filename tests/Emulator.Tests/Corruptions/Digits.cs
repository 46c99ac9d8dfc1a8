using TinyTrain.Compiler.Data;

namespace TinyTrain.Emulator.Tests.Corruptions;

/// <summary>Real digits from the bundled mnist-mini test split, and the measures the corruption tests compare by.</summary>
internal static class Digits
{
    public const int Side = 28;
    public const int Pixels = Side * Side;

    private static readonly Lazy<Dataset> Set = new(() => DataCatalog.Load("mnist-mini", Split.Test));

    public static byte[] Image(int index) => Set.Value.Image(index).ToArray();

    /// <summary>Mean absolute difference per pixel, in gray levels (0..255).</summary>
    public static double MeanAbsoluteDifference(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        long sum = 0;
        for (int i = 0; i < a.Length; i++) sum += Math.Abs(a[i] - b[i]);
        return (double)sum / a.Length;
    }

    public static long Ink(ReadOnlySpan<byte> x)
    {
        long sum = 0;
        foreach (byte p in x) sum += p;
        return sum;
    }

    /// <summary>Pearson correlation of the pixels; 0 when either image is flat.</summary>
    public static double Correlation(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        double ma = (double)Ink(a) / a.Length, mb = (double)Ink(b) / b.Length;
        double ab = 0, aa = 0, bb = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double da = a[i] - ma, db = b[i] - mb;
            ab += da * db;
            aa += da * da;
            bb += db * db;
        }
        return aa > 0 && bb > 0 ? ab / Math.Sqrt(aa * bb) : 0;
    }

    /// <summary>FNV-1a over the bytes: a short, stable fingerprint for golden tests.</summary>
    public static ulong Fingerprint(ReadOnlySpan<byte> x, ulong hash = 0xCBF29CE484222325UL)
    {
        foreach (byte p in x)
            hash = (hash ^ p) * 0x100000001B3UL;
        return hash;
    }
}
