namespace TinyTrain.Runtime.Tests.Ood;

using TinyTrain.Runtime.Ood;

/// <summary>The seeded bipolar projection: equal to its definition, deterministic for a seed, angle-preserving, allocation-free.</summary>
public class HdProjectionTests
{
    private static readonly int[] B = new int[HdProjection.BucketCount];

    private static byte[] RandomFeatures(Random rng, int count, int zeroPoint, double density)
    {
        byte[] x = new byte[count];
        for (int j = 0; j < count; j++)
        {
            x[j] = (byte)(sbyte)(rng.NextDouble() < density ? rng.Next(zeroPoint, 128) : zeroPoint);
        }
        return x;
    }

    // The definition, one dimension and one feature at a time: h_d = sum_j s_dj (x_j - zp).
    private static long[] Naive(uint seed, int dims, byte[] x, int features, int zeroPoint)
    {
        long[] h = new long[dims];
        for (int d = 0; d < dims; d++)
        {
            for (int j = 0; j < features; j++)
            {
                int sign = ((HdProjection.Signs(seed, d / 32, j, features) >> (d % 32)) & 1) != 0 ? 1 : -1;
                h[d] += sign * ((sbyte)x[j] - zeroPoint);
            }
        }
        return h;
    }

    [Theory]
    [InlineData(1u, 32, 1, -128)]
    [InlineData(7u, 64, 100, -128)]
    [InlineData(0xDEADBEEFu, 256, 3136, -128)]
    [InlineData(3u, 96, 77, 10)]
    public void Project_EqualsTheDefinition(uint seed, int dims, int features, int zeroPoint)
    {
        var rng = new Random(dims + features);
        byte[] x = RandomFeatures(rng, features + 5, zeroPoint, 0.4);
        int[] h = new int[dims + 2];
        HdProjection.Project(seed, dims, x, 5, features, zeroPoint, B, h, 2);
        byte[] shifted = new byte[features];
        Array.Copy(x, 5, shifted, 0, features);
        long[] want = Naive(seed, dims, shifted, features, zeroPoint);
        for (int d = 0; d < dims; d++)
        {
            Assert.Equal(want[d], h[2 + d]);
        }
    }

    [Fact]
    public void Project_IsDeterministicForASeed()
    {
        byte[] x = RandomFeatures(new Random(1), 500, -128, 0.5);
        int[] a = new int[1024], b = new int[1024], c = new int[1024];
        HdProjection.Project(42, 1024, x, 0, 500, -128, B, a, 0);
        HdProjection.Project(42, 1024, (byte[])x.Clone(), 0, 500, -128, B, b, 0);
        HdProjection.Project(43, 1024, x, 0, 500, -128, B, c, 0);
        Assert.Equal(a, b);
        int same = 0;
        for (int d = 0; d < 1024; d++) if (a[d] == c[d]) same++;
        Assert.True(same < 50, $"seeds 42 and 43 agree on {same} of 1024 dimensions");
        // Golden values (from an independent Python version of SplitMix32): the projection is part of the
        // prototypes' format, so it must never change silently.
        Assert.Equal(0x92CA2F0Eu, HdProjection.Signs(0, 0, 0, 1));
        Assert.Equal(0x53F2A824u, HdProjection.Signs(0x2545F491, 1, 345, 12000));
        // The counter is word * F + feature: one stream, cut into words.
        Assert.Equal(HdProjection.Signs(5, 2, 3, 10), HdProjection.Signs(5, 0, 23, 10));
    }

    [Fact]
    public void ProjectWord_EqualsTheMatchingSliceOfProject()
    {
        byte[] x = RandomFeatures(new Random(2), 300, -5, 0.3);
        int[] all = new int[256], word = new int[32];
        HdProjection.Project(9, 256, x, 0, 300, -5, B, all, 0);
        for (int w = 0; w < 8; w++)
        {
            int active = HdProjection.ProjectWord(9, w, x, 0, 300, -5, B, word, 0);
            int nonZero = 0;
            for (int j = 0; j < 300; j++) if ((sbyte)x[j] != -5) nonZero++;
            Assert.Equal(nonZero, active);
            for (int b = 0; b < 32; b++) Assert.Equal(all[w * 32 + b], word[b]);
        }
    }

    [Fact]
    public void Signs_AreBalancedAndUncorrelated()
    {
        // Over 64 words x 4000 features: each bit is +1 half the time, and neighbouring dimensions agree half the time.
        long ones = 0, agree = 0, total = 0;
        for (int w = 0; w < 64; w++)
        {
            for (int j = 0; j < 4000; j++)
            {
                uint s = HdProjection.Signs(123, w, j, 4000);
                for (int b = 0; b < 32; b++) ones += (s >> b) & 1;
                uint next = HdProjection.Signs(123, w, j + 1 < 4000 ? j + 1 : 0, 4000);
                for (int b = 0; b < 32; b++) agree += ((s ^ next) >> b & 1) == 0 ? 1 : 0;
                total += 32;
            }
        }
        Assert.InRange((double)ones / total, 0.497, 0.503);
        Assert.InRange((double)agree / total, 0.497, 0.503);
    }

    [Fact]
    public void Project_PreservesAngles()
    {
        // Johnson-Lindenstrauss: at D = 4096 the cosine of two projected vectors is within a few hundredths of theirs.
        var rng = new Random(3);
        for (int t = 0; t < 5; t++)
        {
            byte[] a = RandomFeatures(rng, 2000, -128, 0.5), b = RandomFeatures(rng, 2000, -128, 0.5);
            for (int j = 0; j < 700; j++) b[j] = a[j];   // share part of the support, so the angle is not ~90 degrees
            int[] ha = new int[4096], hb = new int[4096];
            HdProjection.Project(77, 4096, a, 0, 2000, -128, B, ha, 0);
            HdProjection.Project(77, 4096, b, 0, 2000, -128, B, hb, 0);
            Assert.InRange(Cosine(ha, hb) - Cosine(a, b), -0.05, 0.05);
        }
    }

    [Fact]
    public void Project_AllocatesNothing()
    {
        byte[] x = RandomFeatures(new Random(4), 3136, -128, 0.4);
        int[] h = new int[512];
        HdProjection.Project(1, 512, x, 0, 3136, -128, B, h, 0);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 20; i++)
        {
            HdProjection.Project(1, 512, x, 0, 3136, -128, B, h, 0);
            HdProjection.ProjectWord(1, i, x, 0, 3136, -128, B, h, 32);
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void BadArguments_AreRefused()
    {
        byte[] x = new byte[100];
        int[] h = new int[64];
        OodScoresTests.Refused(() => HdProjection.Project(1, 48, x, 0, 100, 0, B, h, 0), "Project", "D is 48", "multiple of 32");
        OodScoresTests.Refused(() => HdProjection.Project(1, 0, x, 0, 100, 0, B, h, 0), "D is 0");
        OodScoresTests.Refused(() => HdProjection.Project(1, 96, x, 0, 100, 0, B, h, 0), "h needs 96 values");
        OodScoresTests.Refused(() => HdProjection.Project(1, 64, x, 1, 100, 0, B, h, 0), "x needs bytes [1, 101)");
        OodScoresTests.Refused(() => HdProjection.Project(1, 64, x, 0, 0, 0, B, h, 0), "features is 0");
        OodScoresTests.Refused(() => HdProjection.Project(1, 64, x, 0, 100, -129, B, h, 0), "zeroPoint is -129");
        OodScoresTests.Refused(() => HdProjection.ProjectWord(1, -1, x, 0, 100, 0, B, h, 0), "ProjectWord", "word is -1");
        OodScoresTests.Refused(() => HdProjection.ProjectWord(1, 0, x, 0, 100, 0, B, h, 40), "h needs 32 values from 40");
        OodScoresTests.Refused(() => HdProjection.ProjectWord(1, 0, x, 0, 100, 0, new int[127], h, 0), "buckets holds 127 ints", "needs 128");
        int[] both = new int[256];
        OodScoresTests.Refused(() => HdProjection.Project(1, 32, x, 0, 100, 0, both, both, 0), "same array");
    }

    private static double Cosine(int[] a, int[] b)
    {
        double d = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++) { d += (double)a[i] * b[i]; na += (double)a[i] * a[i]; nb += (double)b[i] * b[i]; }
        return d / Math.Sqrt(na * nb);
    }

    private static double Cosine(byte[] a, byte[] b)
    {
        double d = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double x = (sbyte)a[i] + 128, y = (sbyte)b[i] + 128;
            d += x * y; na += x * x; nb += y * y;
        }
        return d / Math.Sqrt(na * nb);
    }
}
