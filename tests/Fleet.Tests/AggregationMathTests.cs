namespace TinyTrain.Fleet.Tests;

using TinyTrain.Fleet.Aggregation;

/// <summary>Each combining rule on small cases worked by hand.</summary>
public sealed class AggregationMathTests
{
    private static readonly float[][] Three = [[1f, 10f], [2f, 20f], [6f, -30f]];

    [Fact]
    public void WeightedMeanWeighsBySampleCount()
    {
        // (1*1 + 2*1 + 6*2) / 4 = 3.75; (10 + 20 - 60) / 4 = -7.5
        float[] mean = AggregationMath.WeightedMean(Three, [1, 1, 2]);
        Assert.Equal([3.75f, -7.5f], mean);
    }

    [Fact]
    public void TrimmedMeanDropsTheExtremesOfEachCoordinate()
    {
        float[][] five = [[1f, 0f], [2f, 0f], [3f, 0f], [4f, 0f], [100f, -50f]];
        // trim 0.2 of 5 = 1 from each end: column 0 -> (2+3+4)/3 = 3; column 1 -> (0+0+0)/3 = 0
        Assert.Equal([3f, 0f], AggregationMath.TrimmedMean(five, 0.2));
        // trim 0: the plain mean
        Assert.Equal([22f, -10f], AggregationMath.TrimmedMean(five, 0));
    }

    [Fact]
    public void MedianPerCoordinateAveragesTheMiddlePairWhenEven()
    {
        Assert.Equal([2f, 10f], AggregationMath.Median(Three));
        float[][] four = [[1f], [2f], [10f], [3f]];
        Assert.Equal([2.5f], AggregationMath.Median(four));
    }

    [Fact]
    public void ClippingScalesLongUpdatesDownToTheNormAndLeavesShortOnes()
    {
        // |(3, 4)| = 5 -> clipped to 1: (0.6, 0.8)
        float[] clipped = AggregationMath.ClipToNorm([3f, 4f], 1.0);
        Assert.Equal(0.6f, clipped[0], 6);
        Assert.Equal(0.8f, clipped[1], 6);
        Assert.Equal([3f, 4f], AggregationMath.ClipToNorm([3f, 4f], 10.0));
        // norms 5, 1, 13 -> median 5
        Assert.Equal(5.0, AggregationMath.MedianNorm([[3f, 4f], [1f, 0f], [5f, 12f]]));
    }

    [Fact]
    public void StaleUpdatesWeighLess()
    {
        Assert.Equal(1.0, AggregationMath.StalenessWeight(0, 0.5));
        Assert.Equal(1.0 / 2.0, AggregationMath.StalenessWeight(3, 0.5), 12);  // 1/sqrt(4)
    }

    [Fact]
    public void BadInputIsRefusedWithAReason()
    {
        Assert.Contains("weights sum to zero", Assert.Throws<ArgumentException>(() => AggregationMath.WeightedMean(Three, [0, 0, 0])).Message);
        Assert.Contains("differ in length", Assert.Throws<ArgumentException>(() => AggregationMath.Median([[1f], [1f, 2f]])).Message);
        Assert.Contains("[0, 0.5)", Assert.Throws<ArgumentException>(() => AggregationMath.TrimmedMean(Three, 0.5)).Message);
    }

    [Fact]
    public void AggregationFlagParses()
    {
        AggregatorOptions d = new();
        Assert.Equal(AggregationMode.TrimmedMean, AggregatorOptions.Parse("trimmed:0.1+clip", d).Mode);
        Assert.Equal(-1, AggregatorOptions.Parse("median+clip", d).ClipNorm);
        Assert.Equal(2.5, AggregatorOptions.Parse("mean+clip:2.5", d).ClipNorm);
        Assert.Contains("unknown part 'avg'", Assert.Throws<TinyTrainException>(() => AggregatorOptions.Parse("avg", d)).Message);
        Assert.Contains("trim fraction", Assert.Throws<TinyTrainException>(() => AggregatorOptions.Parse("trimmed:0.7", d)).Message);
    }
}
