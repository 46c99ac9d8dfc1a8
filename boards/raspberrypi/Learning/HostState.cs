namespace TinyTrain.Boards.RaspberryPi.Learning;

using System.Buffers.Binary;
using TinyTrain.Runtime.Plans;

/// <summary>
/// What the host has learned, on disk: the runtime's writable parameters and optimizer state, the running gravity
/// mean, the OOD threshold and counters, tied to one plan by its CRC-32, with a CRC-32 of its own.
/// </summary>
/// <remarks>
/// Layout (little-endian): "TTHS", u16 version, u32 plan CRC, u64 windows, u32 updates, f32 OOD threshold,
/// 3 x f32 gravity mean, u32 n + n bytes params, u32 m + m bytes state, u32 CRC-32 of everything before it.
/// Saving writes path.tmp, flushes it to the disk, moves the current file to path.bak (the last good state) and
/// the new one into place: each step is an atomic rename, so a crash leaves a good file at path or at path.bak.
/// </remarks>
public sealed class HostState
{
    private const uint Magic = 0x53485454; // "TTHS"
    private const ushort Version = 1;

    public uint PlanCrc { get; set; }
    public long Windows { get; set; }
    public int Updates { get; set; }
    public float OodThreshold { get; set; }
    public float[] GravityMean { get; set; } = new float[3];
    public byte[] Params { get; set; } = [];
    public byte[] State { get; set; } = [];

    public static uint CrcOf(Plan plan) => Crc32.Compute(plan.Image, 0, plan.Image.Length);

    public byte[] ToBytes()
    {
        int length = 4 + 2 + 4 + 8 + 4 + 4 + 12 + 4 + Params.Length + 4 + State.Length + 4;
        var b = new byte[length];
        int o = 0;
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(o), Magic); o += 4;
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(o), Version); o += 2;
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(o), PlanCrc); o += 4;
        BinaryPrimitives.WriteInt64LittleEndian(b.AsSpan(o), Windows); o += 8;
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(o), Updates); o += 4;
        BinaryPrimitives.WriteSingleLittleEndian(b.AsSpan(o), OodThreshold); o += 4;
        for (int i = 0; i < 3; i++, o += 4) BinaryPrimitives.WriteSingleLittleEndian(b.AsSpan(o), GravityMean[i]);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(o), Params.Length); o += 4;
        Params.CopyTo(b, o); o += Params.Length;
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(o), State.Length); o += 4;
        State.CopyTo(b, o); o += State.Length;
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(o), Crc32.Compute(b, 0, o));
        return b;
    }

    /// <summary>Reads a state written by <see cref="ToBytes"/>; InvalidDataException says what is wrong.</summary>
    public static HostState FromBytes(byte[] b)
    {
        if (b.Length < 50) throw new InvalidDataException($"{b.Length} bytes is too short for a state file");
        if (BinaryPrimitives.ReadUInt32LittleEndian(b) != Magic) throw new InvalidDataException("not a TinyTrain host state file (bad magic)");
        uint stored = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(b.Length - 4));
        if (stored != Crc32.Compute(b, 0, b.Length - 4)) throw new InvalidDataException("checksum mismatch (the file is damaged or was cut short)");
        int o = 4;
        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(o)); o += 2;
        if (version != Version) throw new InvalidDataException($"version {version}; this host reads version {Version}");
        var s = new HostState();
        s.PlanCrc = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(o)); o += 4;
        s.Windows = BinaryPrimitives.ReadInt64LittleEndian(b.AsSpan(o)); o += 8;
        s.Updates = BinaryPrimitives.ReadInt32LittleEndian(b.AsSpan(o)); o += 4;
        s.OodThreshold = BinaryPrimitives.ReadSingleLittleEndian(b.AsSpan(o)); o += 4;
        for (int i = 0; i < 3; i++, o += 4) s.GravityMean[i] = BinaryPrimitives.ReadSingleLittleEndian(b.AsSpan(o));
        s.Params = ReadBlock(b, ref o);
        s.State = ReadBlock(b, ref o);
        if (o != b.Length - 4) throw new InvalidDataException("trailing bytes after the state");
        return s;
    }

    /// <summary>Writes atomically (see the remarks).</summary>
    public void Save(string path)
    {
        string tmp = path + ".tmp", bak = path + ".bak";
        string? directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null) Directory.CreateDirectory(directory);
        using (var f = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            f.Write(ToBytes());
            f.Flush(flushToDisk: true);
        }
        if (File.Exists(path)) File.Move(path, bak, overwrite: true);
        File.Move(tmp, path, overwrite: false);
    }

    /// <summary>Reads one file; null with the reason when it is missing or damaged.</summary>
    public static HostState? TryLoad(string path, uint planCrc, out string? problem)
    {
        problem = null;
        if (!File.Exists(path))
        {
            problem = "missing";
            return null;
        }
        try
        {
            HostState s = FromBytes(File.ReadAllBytes(path));
            if (s.PlanCrc != planCrc)
            {
                problem = $"it belongs to another plan (CRC {s.PlanCrc:X8}, this plan {planCrc:X8})";
                return null;
            }
            return s;
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
        {
            problem = e.Message;
            return null;
        }
    }

    private static byte[] ReadBlock(byte[] b, ref int o)
    {
        if (o + 4 > b.Length - 4) throw new InvalidDataException("cut short");
        int n = BinaryPrimitives.ReadInt32LittleEndian(b.AsSpan(o));
        o += 4;
        if (n < 0 || o + n > b.Length - 4) throw new InvalidDataException($"a block of {n} bytes runs past the end");
        byte[] block = b.AsSpan(o, n).ToArray();
        o += n;
        return block;
    }
}
