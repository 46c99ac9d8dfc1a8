namespace TinyTrain.Adapters.Packs;

using System.Buffers;
using MessagePack;
using TinyTrain.Runtime.Plans;

/// <summary>
/// The adapter pack file (.ttpack): one MessagePack array
///   [ "ttpack", format, identity, kind, version, task, samples, created (Unix ms), tensors, crc32 ]
/// where tensors is an array of [ name, element type, shape (array of ints), data (bin: int8 as bytes,
/// int32 and float32 little-endian) ] and crc32 is the CRC-32 of every byte before it, so that a
/// damaged payload is caught even where MessagePack would still parse it.
/// </summary>
public static class PackCodec
{
    public const string Magic = "ttpack";
    public const int Format = 1;
    private const int Fields = 10;

    /// <summary>Packs larger than this are refused before anything is allocated for them.</summary>
    public const int MaxBytes = 16 * 1024 * 1024;

    public static byte[] Serialize(AdapterPack pack)
    {
        var buffer = new ArrayBufferWriter<byte>();
        var writer = new MessagePackWriter(buffer);
        writer.WriteArrayHeader(Fields);
        writer.Write(Magic);
        writer.Write(Format);
        writer.Write(pack.Identity);
        writer.Write(pack.Kind);
        writer.Write(pack.Version);
        writer.Write(pack.Task);
        writer.Write(pack.Samples);
        writer.Write(new DateTimeOffset(DateTime.SpecifyKind(pack.CreatedUtc, DateTimeKind.Utc)).ToUnixTimeMilliseconds());
        writer.WriteArrayHeader(pack.Tensors.Count);
        foreach (PackTensor t in pack.Tensors)
        {
            writer.WriteArrayHeader(4);
            writer.Write(t.Name);
            writer.Write((byte)t.Type);
            writer.WriteArrayHeader(t.Shape.Length);
            foreach (int d in t.Shape) writer.Write(d);
            writer.Write(t.Data);
        }
        writer.Flush();
        byte[] body = buffer.WrittenSpan.ToArray();
        uint crc = Crc32.Compute(body, 0, body.Length);
        var tail = new ArrayBufferWriter<byte>();
        var tailWriter = new MessagePackWriter(tail);
        tailWriter.Write(crc);
        tailWriter.Flush();
        return [.. body, .. tail.WrittenSpan];
    }

    public static AdapterPack Deserialize(byte[] bytes, string source = "pack")
    {
        if (bytes.Length > MaxBytes)
            throw new TinyTrainException($"{source}: {bytes.Length} bytes is larger than any adapter pack ({MaxBytes} bytes); it was refused");
        try
        {
            var reader = new MessagePackReader(new ReadOnlyMemory<byte>(bytes));
            if (reader.NextMessagePackType != MessagePackType.Array || reader.ReadArrayHeader() != Fields || reader.NextMessagePackType != MessagePackType.String
                || reader.ReadString() != Magic)
                throw Refuse(source, "not a TinyTrain adapter pack (no ttpack header); pass a file written by 'tinytrain adapters export'");
            int format = reader.ReadInt32();
            if (format != Format)
                throw Refuse(source, $"pack format {format} is not the format {Format} this TinyTrain reads; update TinyTrain or export the pack again");
            string identity = reader.ReadString() ?? "";
            string kind = reader.ReadString() ?? "";
            int version = reader.ReadInt32();
            string task = reader.ReadString() ?? "";
            long samples = reader.ReadInt64();
            long created = reader.ReadInt64();
            int count = reader.ReadArrayHeader();
            var tensors = new List<PackTensor>(Math.Min(count, 1024));
            for (int i = 0; i < count; i++)
            {
                if (reader.ReadArrayHeader() != 4) throw Refuse(source, $"tensor {i} is malformed");
                string name = reader.ReadString() ?? "";
                var type = (PackElement)reader.ReadByte();
                int rank = reader.ReadArrayHeader();
                if (rank > 8) throw Refuse(source, $"tensor '{name}' has {rank} dimensions");
                int[] shape = new int[rank];
                for (int d = 0; d < rank; d++) shape[d] = reader.ReadInt32();
                ReadOnlySequence<byte>? data = reader.ReadBytes();
                tensors.Add(new PackTensor(name, type, shape, data?.ToArray() ?? []));
            }
            long bodyLength = reader.Consumed;
            uint crc = reader.ReadUInt32();
            if (!reader.End) throw Refuse(source, $"{bytes.Length - reader.Consumed} bytes follow the pack's end; the file is damaged");
            if (Crc32.Compute(bytes, 0, (int)bodyLength) != crc)
                throw Refuse(source, "checksum mismatch: the pack is damaged; export or fetch it again");
            var pack = new AdapterPack
            {
                Identity = identity, Kind = kind, Version = version, Task = task, Samples = samples,
                CreatedUtc = DateTimeOffset.FromUnixTimeMilliseconds(created).UtcDateTime, Tensors = tensors,
            };
            Check(pack, source);
            return pack;
        }
        catch (Exception e) when (e is MessagePackSerializationException or EndOfStreamException or InvalidOperationException or OverflowException
            or ArgumentOutOfRangeException)
        {
            throw Refuse(source, $"damaged or truncated: not a readable adapter pack ({e.Message}); export or fetch it again");
        }
    }

    /// <summary>Checks what a pack says about itself: names, types, shapes against byte counts, finite floats.</summary>
    public static void Check(AdapterPack pack, string source = "pack")
    {
        if (string.IsNullOrEmpty(pack.Identity)) throw Refuse(source, "it names no base model (empty identity)");
        if (string.IsNullOrEmpty(pack.Kind)) throw Refuse(source, "it names no adapter kind");
        if (!TaskNames.IsValid(pack.Task)) throw Refuse(source, $"task name '{pack.Task}' is not valid ({TaskNames.Rule})");
        if (pack.Version < 1) throw Refuse(source, $"version {pack.Version} is below 1");
        if (pack.Samples < 0) throw Refuse(source, $"sample count {pack.Samples} is negative");
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (PackTensor t in pack.Tensors)
        {
            if (string.IsNullOrEmpty(t.Name) || !names.Add(t.Name)) throw Refuse(source, $"tensor name '{t.Name}' is empty or repeated");
            if (t.Type is not (PackElement.Int8 or PackElement.Int32 or PackElement.Float32))
                throw Refuse(source, $"tensor '{t.Name}' has unknown element type {(int)t.Type}");
            long elements = 1;
            foreach (int d in t.Shape)
            {
                if (d <= 0) throw Refuse(source, $"tensor '{t.Name}' has a dimension {d}");
                elements *= d;
                if (elements > MaxBytes) throw Refuse(source, $"tensor '{t.Name}' is larger than any pack");
            }
            if (elements * PackTensor.ElementSize(t.Type) != t.Data.Length)
                throw Refuse(source, $"tensor '{t.Name}' has shape {t.ShapeText} of {t.Type} but {t.Data.Length} bytes of data");
            if (t.Type == PackElement.Float32)
                for (int i = 0; i < t.Data.Length; i += 4)
                    if (!float.IsFinite(BitConverter.ToSingle(t.Data, i)))
                        throw Refuse(source, $"tensor '{t.Name}' holds NaN or infinity at element {i / 4}");
        }
    }

    internal static TinyTrainException Refuse(string source, string why) => new($"{source}: refused: {why}; the adapter in use was kept");
}
