using TinyTrain.Compiler.Data;

namespace TinyTrain.Compiler.Tests.Data;

public class DatasetTests
{
    [Fact]
    public void CopyImage_ScalesPixelsToUnitRange()
    {
        var images = new byte[2 * 784];
        images[784] = 255;
        images[785] = 51;
        var set = new Dataset("t", Split.Train, images, [0, 1], CatalogEntry.DigitNames);
        var x = new float[784];

        set.CopyImage(1, x);

        Assert.Equal(1f, x[0]);
        Assert.Equal(0.2f, x[1], 6);
        Assert.Equal(0f, x[2]);
    }

    [Fact]
    public void CopyImage_RefusesShortDestinationAndBadIndex()
    {
        Dataset set = DataTestHelpers.Synthetic("t", Split.Train, 3);
        Assert.Throws<ArgumentException>(() => set.CopyImage(0, new float[783]));
        Assert.Throws<ArgumentOutOfRangeException>(() => set.CopyImage(3, new float[784]));
    }

    [Fact]
    public void Subset_CopiesTheChosenSamplesInOrder()
    {
        Dataset set = DataTestHelpers.Synthetic("t", Split.Test, 5);

        Dataset subset = set.Subset([4, 1, 4]);

        Assert.Equal(3, subset.Count);
        Assert.Equal(Split.Test, subset.Split);
        Assert.Equal(new[] { set.Labels[4], set.Labels[1], set.Labels[4] }, subset.Labels);
        Assert.True(subset.Image(0).SequenceEqual(set.Image(4)));
        Assert.True(subset.Image(1).SequenceEqual(set.Image(1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => set.Subset([5]));
    }

    [Fact]
    public void Take_IsAPrefixAndClampsToCount()
    {
        Dataset set = DataTestHelpers.Synthetic("t", Split.Train, 5);

        Dataset first = set.Take(2);

        Assert.Equal(2, first.Count);
        Assert.Equal(set.Labels[..2], first.Labels);
        Assert.Equal(set.Images[..(2 * 784)], first.Images);
        Assert.Equal(5, set.Take(100).Count);
    }

    [Fact]
    public void Constructor_RefusesMismatchedLengthsAndLabels()
    {
        Assert.Throws<ArgumentException>(() => new Dataset("t", Split.Train, new byte[783], [0], CatalogEntry.DigitNames));
        Assert.Throws<ArgumentException>(() => new Dataset("t", Split.Train, new byte[784], [10], CatalogEntry.DigitNames));
    }
}
