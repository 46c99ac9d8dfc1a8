namespace TinyTrain.Compiler.Data;

/// <summary>Which part of a data set: the samples to learn from, or the held-out ones to measure on.</summary>
public enum Split
{
    Train,
    Test,
}

/// <summary>
/// Labelled grayscale images in memory: pixels as bytes (0..255), one image after another, each row-major
/// (Rows x Cols); one label byte per image, 0 .. NumClasses-1.
/// </summary>
public sealed class Dataset
{
    public Dataset(string name, Split split, byte[] images, byte[] labels, string[] classNames, int rows = 28, int cols = 28)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(classNames);
        ArgumentOutOfRangeException.ThrowIfLessThan(rows, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(cols, 1);
        if (classNames.Length is < 1 or > 256)
            throw new ArgumentException($"A data set needs 1..256 class names, got {classNames.Length}.", nameof(classNames));
        if (images.Length != (long)labels.Length * rows * cols)
            throw new ArgumentException(
                $"{labels.Length} labels need {(long)labels.Length * rows * cols} pixel bytes of {rows}x{cols} images, got {images.Length}.",
                nameof(images));
        for (int i = 0; i < labels.Length; i++)
        {
            if (labels[i] >= classNames.Length)
                throw new ArgumentException($"Label {labels[i]} of sample {i} is outside 0..{classNames.Length - 1}.", nameof(labels));
        }

        Name = name;
        Split = split;
        Images = images;
        Labels = labels;
        ClassNames = classNames;
        Rows = rows;
        Cols = cols;
    }

    public string Name { get; }
    public Split Split { get; }
    public int Count => Labels.Length;
    public int Rows { get; }
    public int Cols { get; }
    public int PixelsPerImage => Rows * Cols;

    /// <summary>Count * Rows * Cols pixels, image after image, row-major.</summary>
    public byte[] Images { get; }

    public byte[] Labels { get; }
    public int NumClasses => ClassNames.Length;
    public string[] ClassNames { get; }

    /// <summary>The pixels of one image as bytes (a view, no copy).</summary>
    public ReadOnlySpan<byte> Image(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
        return Images.AsSpan(index * PixelsPerImage, PixelsPerImage);
    }

    /// <summary>Writes image <paramref name="index"/> scaled to [0, 1] (pixel / 255) into the first Rows*Cols floats.</summary>
    public void CopyImage(int index, Span<float> destination)
    {
        ReadOnlySpan<byte> pixels = Image(index);
        if (destination.Length < pixels.Length)
            throw new ArgumentException($"Destination holds {destination.Length} floats; an image needs {pixels.Length}.", nameof(destination));
        for (int i = 0; i < pixels.Length; i++)
            destination[i] = pixels[i] / 255f;
    }

    /// <summary>The samples at <paramref name="indices"/>, in that order (copied; repeats allowed).</summary>
    public Dataset Subset(int[] indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
        int size = PixelsPerImage;
        var images = new byte[indices.Length * size];
        var labels = new byte[indices.Length];
        for (int i = 0; i < indices.Length; i++)
        {
            int index = indices[i];
            if ((uint)index >= (uint)Count)
                throw new ArgumentOutOfRangeException(nameof(indices), $"Index {index} at position {i} is outside 0..{Count - 1}.");
            Images.AsSpan(index * size, size).CopyTo(images.AsSpan(i * size, size));
            labels[i] = Labels[index];
        }
        return new Dataset(Name, Split, images, labels, (string[])ClassNames.Clone(), Rows, Cols);
    }

    /// <summary>The first <paramref name="n"/> samples (all of them when n >= Count, as LINQ's Take).</summary>
    public Dataset Take(int n)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        n = Math.Min(n, Count);
        return new Dataset(Name, Split, Images.AsSpan(0, n * PixelsPerImage).ToArray(), Labels.AsSpan(0, n).ToArray(),
            (string[])ClassNames.Clone(), Rows, Cols);
    }

    /// <summary>How many samples each class has, indexed by label.</summary>
    public int[] CountPerClass()
    {
        var counts = new int[NumClasses];
        foreach (byte label in Labels)
            counts[label]++;
        return counts;
    }

    public override string ToString() => $"{Name} ({Split.ToString().ToLowerInvariant()}, {Count} samples, {Rows}x{Cols}, {NumClasses} classes)";
}
