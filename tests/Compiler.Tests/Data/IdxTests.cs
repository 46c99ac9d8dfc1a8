using System.Buffers.Binary;
using System.IO.Compression;
using TinyTrain.Compiler.Data;

namespace TinyTrain.Compiler.Tests.Data;

public class IdxTests
{
    [Fact]
    public void Images_RoundTripThroughGzip()
    {
        Dataset set = DataTestHelpers.Synthetic("t", Split.Train, 7);

        byte[] gz = Idx.Gzip(Idx.EncodeImages(set.Images, set.Count, 28, 28), CompressionLevel.Optimal);
        (byte[] pixels, int count, int rows, int cols) = Idx.DecodeImages(Idx.Gunzip(gz));

        Assert.Equal((7, 28, 28), (count, rows, cols));
        Assert.Equal(set.Images, pixels);
    }

    [Fact]
    public void Labels_RoundTripWithTheStandardHeader()
    {
        byte[] idx = Idx.EncodeLabels([3, 1, 4, 1, 5]);

        Assert.Equal(new byte[] { 0, 0, 8, 1, 0, 0, 0, 5 }, idx[..8]);
        Assert.Equal(new byte[] { 3, 1, 4, 1, 5 }, Idx.DecodeLabels(Idx.Gunzip(Idx.Gzip(idx, CompressionLevel.Fastest))));
    }

    [Fact]
    public void ImageHeader_IsBigEndianMagicAndDims()
    {
        byte[] idx = Idx.EncodeImages(new byte[2 * 784], 2, 28, 28);

        Assert.Equal(0x00000803, BinaryPrimitives.ReadInt32BigEndian(idx));
        Assert.Equal(new byte[] { 0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28 }, idx[..16]);
    }

    [Fact]
    public void Decode_RefusesWrongMagicAndTruncation()
    {
        byte[] labels = Idx.EncodeLabels([1, 2, 3, 4, 5, 6, 7, 8, 9, 0]);
        byte[] images = Idx.EncodeImages(new byte[784], 1, 28, 28);

        Assert.Contains("magic 0x00000801", Assert.Throws<InvalidDataException>(() => Idx.DecodeImages(labels)).Message);
        Assert.Contains("truncated", Assert.Throws<InvalidDataException>(() => Idx.DecodeImages(images[..^1])).Message);
        Assert.Contains("truncated", Assert.Throws<InvalidDataException>(() => Idx.DecodeLabels(labels[..^1])).Message);
    }

    [Fact]
    public void Gunzip_RefusesATruncatedStream()
    {
        byte[] gz = Idx.Gzip(Idx.EncodeImages(DataTestHelpers.Synthetic("t", Split.Train, 20).Images, 20, 28, 28), CompressionLevel.Optimal);

        Assert.Throws<InvalidDataException>(() => Idx.Gunzip(gz[..(gz.Length / 2)]));
        Assert.Throws<InvalidDataException>(() => Idx.Gunzip([1, 2, 3]));
    }
}
