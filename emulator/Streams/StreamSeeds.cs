namespace TinyTrain.Emulator.Streams;

/// <summary>
/// Every seed a stream uses, derived from (stream seed, segment, index) with SplitMix64's mixing function, so that
/// a spec and a seed give the same samples on every machine and every .NET version. Never use HashCode or an
/// unseeded System.Random here: both differ between processes.
/// </summary>
public static class StreamSeeds
{
    // Domains keep the shuffle order and the per-sample corruption seeds independent of each other.
    private const ulong SampleDomain = 0x53414D504C45UL; // "SAMPLE"
    private const ulong OrderDomain = 0x4F52444552UL; // "ORDER"

    /// <summary>SplitMix64's output for state <paramref name="x"/>: the state is advanced by the golden gamma, then
    /// mixed (Steele, Lea and Flood 2014; the constants of Vigna's splitmix64.c).</summary>
    public static ulong Mix(ulong x)
    {
        ulong z = x + 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>The seed a corruption gets for sample <paramref name="index"/> of segment <paramref name="segment"/>.</summary>
    public static ulong Sample(ulong streamSeed, int segment, long index) => Derive(streamSeed, SampleDomain, segment, index);

    /// <summary>The seed of the shuffle that orders pass <paramref name="pass"/> over a segment's samples.</summary>
    public static ulong Order(ulong streamSeed, int segment, long pass) => Derive(streamSeed, OrderDomain, segment, pass);

    private static ulong Derive(ulong seed, ulong domain, int a, long b) =>
        Mix(Mix(Mix(seed ^ domain) + (ulong)(uint)a) + (ulong)b);
}
