using System.Buffers.Binary;
using System.IO.Compression;

namespace TinyTrain.Compiler.Data;

/// <summary>
/// The IDX format of the original MNIST files: a big-endian magic (0x00000803 for u8 images of rank 3,
/// 0x00000801 for u8 labels of rank 1), one big-endian int32 per dimension, then the bytes. Stored gzip-compressed.
/// Decoding throws InvalidDataException with the reason; the catalog turns it into advice.
/// </summary>
internal static class Idx
{
    public const int ImagesMagic = 0x00000803;
    public const int LabelsMagic = 0x00000801;

    public static byte[] EncodeImages(byte[] pixels, int count, int rows, int cols)
    {
        if (pixels.Length != (long)count * rows * cols)
            throw new ArgumentException($"{count} images of {rows}x{cols} need {(long)count * rows * cols} bytes, got {pixels.Length}.");
        var idx = new byte[16 + pixels.Length];
        BinaryPrimitives.WriteInt32BigEndian(idx.AsSpan(0), ImagesMagic);
        BinaryPrimitives.WriteInt32BigEndian(idx.AsSpan(4), count);
        BinaryPrimitives.WriteInt32BigEndian(idx.AsSpan(8), rows);
        BinaryPrimitives.WriteInt32BigEndian(idx.AsSpan(12), cols);
        pixels.CopyTo(idx, 16);
        return idx;
    }

    public static byte[] EncodeLabels(byte[] labels)
    {
        var idx = new byte[8 + labels.Length];
        BinaryPrimitives.WriteInt32BigEndian(idx.AsSpan(0), LabelsMagic);
        BinaryPrimitives.WriteInt32BigEndian(idx.AsSpan(4), labels.Length);
        labels.CopyTo(idx, 8);
        return idx;
    }

    /// <summary>Returns (pixels, count, rows, cols); <paramref name="idx"/> must be exactly header + pixels.</summary>
    public static (byte[] Pixels, int Count, int Rows, int Cols) DecodeImages(byte[] idx)
    {
        if (idx.Length < 16)
            throw new InvalidDataException($"only {idx.Length} bytes, shorter than the 16-byte IDX image header");
        int magic = BinaryPrimitives.ReadInt32BigEndian(idx.AsSpan(0));
        if (magic != ImagesMagic)
            throw new InvalidDataException($"magic 0x{magic:x8} where IDX images have 0x{ImagesMagic:x8}");
        int count = BinaryPrimitives.ReadInt32BigEndian(idx.AsSpan(4));
        int rows = BinaryPrimitives.ReadInt32BigEndian(idx.AsSpan(8));
        int cols = BinaryPrimitives.ReadInt32BigEndian(idx.AsSpan(12));
        if (count < 0 || rows <= 0 || cols <= 0)
            throw new InvalidDataException($"impossible dimensions {count}x{rows}x{cols}");
        long expected = 16 + (long)count * rows * cols;
        if (idx.Length != expected)
            throw new InvalidDataException($"{idx.Length} bytes where {count}x{rows}x{cols} images need {expected} (truncated?)");
        return (idx.AsSpan(16).ToArray(), count, rows, cols);
    }

    public static byte[] DecodeLabels(byte[] idx)
    {
        if (idx.Length < 8)
            throw new InvalidDataException($"only {idx.Length} bytes, shorter than the 8-byte IDX label header");
        int magic = BinaryPrimitives.ReadInt32BigEndian(idx.AsSpan(0));
        if (magic != LabelsMagic)
            throw new InvalidDataException($"magic 0x{magic:x8} where IDX labels have 0x{LabelsMagic:x8}");
        int count = BinaryPrimitives.ReadInt32BigEndian(idx.AsSpan(4));
        if (count < 0)
            throw new InvalidDataException($"impossible label count {count}");
        if (idx.Length != 8 + (long)count)
            throw new InvalidDataException($"{idx.Length} bytes where {count} labels need {8L + count} (truncated?)");
        return idx.AsSpan(8).ToArray();
    }

    public static byte[] Gzip(byte[] data, CompressionLevel level)
    {
        using var buffer = new MemoryStream();
        using (var gzip = new GZipStream(buffer, level, leaveOpen: true))
            gzip.Write(data);
        return buffer.ToArray();
    }

    /// <summary>Decompresses a whole gzip file; throws InvalidDataException when it is damaged or cut short.</summary>
    public static byte[] Gunzip(byte[] gz)
    {
        if (gz.Length < 18 || gz[0] != 0x1f || gz[1] != 0x8b)
            throw new InvalidDataException("not a gzip file");
        // The gzip trailer holds the uncompressed size mod 2^32; a stream cut short ends before it matches.
        uint expected = BinaryPrimitives.ReadUInt32LittleEndian(gz.AsSpan(gz.Length - 4));
        using var input = new MemoryStream(gz, writable: false);
        using var gzip = new GZipStream(input, CompressionMode.Decompress);
        using var output = new MemoryStream((int)Math.Min(expected, 64u << 20));
        gzip.CopyTo(output);
        if ((uint)output.Length != expected)
            throw new InvalidDataException($"gzip stream ends after {output.Length} bytes; its trailer says {expected} (truncated?)");
        return output.ToArray();
    }
}
