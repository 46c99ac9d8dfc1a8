namespace TinyTrain.Runtime.Tests.Ood;

using TinyTrain.Runtime.Ood;

/// <summary>The hyperdimensional score on features given directly (no plan): configs, budgets, scores, refusals, allocation.</summary>
public class HdScorerTests
{
    private const int Features = 400, ZeroPoint = -128;

    // Three classes with disjoint supports: class k lights features [100 k, 100 k + 100).
    private static byte[] ClassFeatures(int k, Random? noise = null)
    {
        byte[] x = new byte[Features];
        Array.Fill(x, unchecked((byte)(sbyte)ZeroPoint));
        for (int j = 100 * k; j < 100 * k + 100; j++)
        {
            x[j] = (byte)(sbyte)(noise is null ? 20 + j % 50 : 20 + j % 50 + noise.Next(-10, 11));
        }
        return x;
    }

    // Prototypes straight from the definition: the projection of each class's features, scaled to int8 or reduced to signs.
    private static HdPrototypes Prototypes(HdConfig config)
    {
        int dims = config.Dimensions;
        byte[] data = new byte[config.StateBytes(3)];
        int[] h = new int[dims];
        for (int k = 0; k < 3; k++)
        {
            HdProjection.Project(config.Seed, dims, ClassFeatures(k), 0, Features, ZeroPoint, new int[HdProjection.BucketCount], h, 0);
            int max = 1;
            foreach (int v in h) max = Math.Max(max, Math.Abs(v));
            for (int d = 0; d < dims; d++)
            {
                if (config.Storage == HdStorage.Int8) data[k * dims + d] = (byte)(sbyte)Math.Round(127.0 * h[d] / max);
                else if (h[d] > 0) data[k * dims / 8 + d / 8] |= (byte)(1 << (d % 8));
            }
        }
        return new HdPrototypes(config, 3, Features, data);
    }

    [Theory]
    [InlineData(HdStorage.Int8)]
    [InlineData(HdStorage.Bits)]
    public void AClassSample_ScoresNearOne_AndAForeignOneNearZero(HdStorage storage)
    {
        var scorer = new HdScorer(Prototypes(new HdConfig(2048, storage)), ZeroPoint);
        Assert.Equal(storage == HdStorage.Int8 ? "hd-int8" : "hd-bits", scorer.Name);
        for (int k = 0; k < 3; k++)
        {
            float own = scorer.ScoreFeatures(ClassFeatures(k), 0);
            if (storage == HdStorage.Bits) Assert.Equal(1f, own);   // the very signs of the prototype
            else Assert.InRange(own, 0.999f, 1f);
            float noisy = scorer.ScoreFeatures(ClassFeatures(k, new Random(k)), 0);
            Assert.InRange(noisy, 0.8f, 1f);
        }
        // Features the prototypes never saw (outside every class's support): no better than chance.
        byte[] foreign = new byte[Features + 50];
        Array.Fill(foreign, unchecked((byte)(sbyte)ZeroPoint));
        for (int j = 350; j < Features; j++) foreign[50 + j] = 90;
        for (int j = 0; j < 20; j++) foreign[50 + 3 * j] = 60;
        float score = scorer.ScoreFeatures(foreign, 50);
        Assert.InRange(score, -0.15f, 0.55f);
        Assert.True(score < scorer.ScoreFeatures(ClassFeatures(1, new Random(9)), 0) - 0.3f);
    }

    [Theory]
    [InlineData(HdStorage.Int8)]
    [InlineData(HdStorage.Bits)]
    public void FeaturesAllAtZero_ScoreMinusOne(HdStorage storage)
    {
        var scorer = new HdScorer(Prototypes(new HdConfig(64, storage)), ZeroPoint);
        byte[] blank = new byte[Features];
        Array.Fill(blank, unchecked((byte)(sbyte)ZeroPoint));
        Assert.Equal(-1f, scorer.ScoreFeatures(blank, 0));
    }

    [Fact]
    public void Score_IsTheSameForTheSameSeed_AndDiffersForAnother()
    {
        byte[] x = ClassFeatures(2, new Random(5));
        float a = new HdScorer(Prototypes(new HdConfig(512, HdStorage.Int8, seed: 11)), ZeroPoint).ScoreFeatures(x, 0);
        float b = new HdScorer(Prototypes(new HdConfig(512, HdStorage.Int8, seed: 11)), ZeroPoint).ScoreFeatures(x, 0);
        float c = new HdScorer(Prototypes(new HdConfig(512, HdStorage.Int8, seed: 12)), ZeroPoint).ScoreFeatures(x, 0);
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
    }

    [Theory]
    [InlineData(HdStorage.Int8)]
    [InlineData(HdStorage.Bits)]
    public void ScoreFeatures_AllocatesNothing(HdStorage storage)
    {
        var scorer = new HdScorer(Prototypes(new HdConfig(1024, storage)), ZeroPoint);
        byte[] x = ClassFeatures(1, new Random(3));
        float sink = scorer.ScoreFeatures(x, 0);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 50; i++) sink += scorer.ScoreFeatures(x, 0);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.True(sink > 0);
    }

    [Fact]
    public void Config_Bytes()
    {
        var int8 = new HdConfig(1024, HdStorage.Int8);
        var bits = new HdConfig(1024, HdStorage.Bits);
        Assert.Equal(32, int8.Words);
        Assert.Equal(1024, int8.PrototypeBytes);
        Assert.Equal(128, bits.PrototypeBytes);
        Assert.Equal(10 * 1024 + 640 + 10 * 12, int8.SramBytes(10));
        Assert.Equal(10 * 128 + 640 + 10 * 4, bits.SramBytes(10));
        Assert.Equal(HdConfig.DefaultSeed, int8.Seed);
    }

    [Theory]
    [InlineData(HdStorage.Int8, 1, 4096, 320)]     // scratch 640 + 10 x 12, then 320 B a word: (4096 - 760) / 320 = 10 words
    [InlineData(HdStorage.Bits, 1, 4096, 2720)]    // scratch 640 + 10 x 4, then 40 B a word: (4096 - 680) / 40 = 85 words
    [InlineData(HdStorage.Bits, 4, 8192, 1472)]    // scratch 640 + 40 x 4, then 160 B a word: (8192 - 800) / 160 = 46 words
    [InlineData(HdStorage.Bits, 1, 1_000_000, HdConfig.DefaultMaxDimensions)]
    [InlineData(HdStorage.Int8, 1, 1080, 32)]      // exactly the smallest
    public void ForBudget_PicksTheLargestDThatFits(HdStorage storage, int perClass, long budget, int expected)
    {
        HdConfig config = HdConfig.ForBudget(budget, 10, storage, prototypesPerClass: perClass);
        Assert.Equal(expected, config.Dimensions);
        Assert.Equal(perClass, config.PrototypesPerClass);
        Assert.True(config.SramBytes(10) <= budget);
        if (expected < HdConfig.DefaultMaxDimensions)
            Assert.True(new HdConfig(expected + 32, storage, prototypesPerClass: perClass).SramBytes(10) > budget);
    }

    [Fact]
    public void BadConfigs_AreRefused()
    {
        OodScoresTests.Refused(() => new HdConfig(48, HdStorage.Int8), "D is 48", "positive multiple of 32");
        OodScoresTests.Refused(() => new HdConfig(0, HdStorage.Bits), "D is 0", "positive multiple of 32");
        OodScoresTests.Refused(() => new HdConfig(-64, HdStorage.Bits), "D is -64");
        OodScoresTests.Refused(() => new HdConfig(64, (HdStorage)7), "storage 7 is unknown");
        OodScoresTests.Refused(() => HdConfig.ForBudget(1079, 10, HdStorage.Int8), "budget of 1079 B is too small", "need 1080 B", "store bits");
        OodScoresTests.Refused(() => HdConfig.ForBudget(100, 10, HdStorage.Bits), "budget of 100 B is too small", "need 720 B");
        OodScoresTests.Refused(() => HdConfig.ForBudget(959, 10, HdStorage.Bits, prototypesPerClass: 4), "need 960 B", "40 bit prototypes", "fewer prototypes per class");
        OodScoresTests.Refused(() => new HdConfig(64, HdStorage.Bits, prototypesPerClass: 0), "0 prototypes per class");
        OodScoresTests.Refused(() => new HdConfig(64, HdStorage.Bits, prototypesPerClass: 65), "65 prototypes per class");
        OodScoresTests.Refused(() => HdConfig.ForBudget(4096, 0, HdStorage.Bits), "0 classes");
        var config = new HdConfig(64, HdStorage.Int8);
        OodScoresTests.Refused(() => new HdPrototypes(config, 3, Features, new byte[100]), "100 bytes", "need 192");
        OodScoresTests.Refused(() => new HdPrototypes(config, 0, Features, new byte[0]), "0 classes");
        OodScoresTests.Refused(() => new HdPrototypes(config, 3, 0, new byte[192]), "0 features");
        var scorer = new HdScorer(new HdPrototypes(config, 3, Features, new byte[192]), ZeroPoint);
        OodScoresTests.Refused(() => scorer.ScoreFeatures(new byte[Features], 1), "ScoreFeatures", "x needs bytes [1, 401)");
        OodScoresTests.Refused(() => new HdScorer(new HdPrototypes(config, 3, Features, new byte[192]), 300), "zero point 300");
    }

    [Fact]
    public void Threshold_SaysOutBelowItsValue()
    {
        var t = new OodThreshold(0.5f, 0.95f);
        Assert.False(t.IsOutOfDistribution(0.5f));
        Assert.False(t.IsOutOfDistribution(0.9f));
        Assert.True(t.IsOutOfDistribution(0.49f));
        Assert.True(t.IsOutOfDistribution(float.NaN));
        OodScoresTests.Refused(() => new OodThreshold(float.NaN, 0.95f), "NaN");
        OodScoresTests.Refused(() => new OodThreshold(0.5f, 0f), "rate 0");
        OodScoresTests.Refused(() => new OodThreshold(0.5f, 1.5f), "rate 1.5");
    }
}
