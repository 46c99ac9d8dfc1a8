namespace TinyTrain.Compiler.Planning;

using System.Buffers.Binary;
using System.Text;
using TinyTrain.Runtime.Plans;

/// <summary>
/// Writes a .ttplan image (layout in <see cref="PlanFormat"/>): tensors, ops, constants and
/// model fields go in through the Add methods and properties, <see cref="Build"/> lays out
/// header, section table, sections (each 4-byte aligned) and the CRC-32 trailer. The same
/// inputs always give the same bytes. The builder checks only what it must to write the
/// fields; <see cref="Plan.Load"/> is the judge of whether a plan is consistent.
/// </summary>
public sealed class PlanBuilder
{
    private const int SectionCount = 5;

    private readonly List<byte[]> _tensors = new();
    private readonly List<byte[]> _ops = new();
    private readonly List<byte> _constants = new();
    private readonly List<byte> _names = new();
    private int _constantsAlignment = 4;

    public string ModelName { get; set; } = "";
    /// <summary>The board id the plan was compiled for, or empty.</summary>
    public string Board { get; set; } = "";
    public int InputTensor { get; set; }
    public int OutputTensor { get; set; }
    public int NumClasses { get; set; }

    /// <summary>Ops [0, ForwardOpCount) are the inference pass; -1 (the default) counts the leading Forward ops.</summary>
    public int ForwardOpCount { get; set; } = -1;
    public long FlashBytes { get; set; }
    public long SramParamBytes { get; set; }
    public long StateBytes { get; set; }

    /// <summary>The memory planner's peak: the arena the runtime allocates.</summary>
    public int ArenaBytes { get; set; }

    public int TensorCount => _tensors.Count;
    public int OpCount => _ops.Count;

    /// <summary>Adds a tensor record; its byte length follows from the shape and type. Returns its index.</summary>
    /// <param name="firstOp">The first op that writes it, or <see cref="Plan.NoOp"/> for the model input.</param>
    /// <param name="lastOp">The last op that reads it, or <see cref="Plan.NoOp"/>.</param>
    public int AddTensor(string name, ElementType type, TensorRole role, int c, int h, int w, int arenaOffset,
        float scale = 0f, int zeroPoint = 0, ushort firstOp = Plan.NoOp, ushort lastOp = Plan.NoOp, ushort flags = 0)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (c < 1 || h < 1 || w < 1) throw new ArgumentOutOfRangeException(nameof(c), $"tensor '{name}': shape ({c},{h},{w}) has an empty dimension");
        ArgumentOutOfRangeException.ThrowIfNegative(arenaOffset);
        if (_tensors.Count >= PlanFormat.NoTensor - 1) throw new InvalidOperationException("a plan holds at most 65534 tensors");
        long n = (long)c * h * w;
        long bytes = type switch
        {
            ElementType.Int8 => n,
            ElementType.Int32 or ElementType.Float32 => 4 * n,
            ElementType.Bits => (n + 7) / 8,
            _ => throw new ArgumentOutOfRangeException(nameof(type), $"tensor '{name}': unknown element type {type}"),
        };
        if (bytes > uint.MaxValue) throw new ArgumentOutOfRangeException(nameof(c), $"tensor '{name}': {bytes} bytes is too large for a plan");

        byte[] nameBytes = Encoding.UTF8.GetBytes(name);
        var r = new byte[PlanFormat.TensorRecordSize];
        r[PlanFormat.TensorType] = (byte)type;
        r[PlanFormat.TensorRole] = (byte)role;
        BinaryPrimitives.WriteUInt16LittleEndian(r.AsSpan(PlanFormat.TensorFlags), flags);
        PutU32(r, PlanFormat.TensorC, (uint)c);
        PutU32(r, PlanFormat.TensorH, (uint)h);
        PutU32(r, PlanFormat.TensorW, (uint)w);
        PutU32(r, PlanFormat.TensorArenaOffset, (uint)arenaOffset);
        PutU32(r, PlanFormat.TensorByteLength, (uint)bytes);
        BinaryPrimitives.WriteSingleLittleEndian(r.AsSpan(PlanFormat.TensorScale), scale);
        BinaryPrimitives.WriteInt32LittleEndian(r.AsSpan(PlanFormat.TensorZeroPoint), zeroPoint);
        PutU32(r, PlanFormat.TensorNameOffset, (uint)_names.Count);
        PutU32(r, PlanFormat.TensorNameLength, (uint)nameBytes.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(r.AsSpan(PlanFormat.TensorFirstOp), firstOp);
        BinaryPrimitives.WriteUInt16LittleEndian(r.AsSpan(PlanFormat.TensorLastOp), lastOp);
        _names.AddRange(nameBytes);
        _tensors.Add(r);
        return _tensors.Count - 1;
    }

    /// <summary>Appends bytes to the Constants section at a multiple of <paramref name="alignment"/> (a power of two); returns their offset in it.</summary>
    public uint AddConstant(ReadOnlySpan<byte> data, int alignment = 4)
    {
        if (alignment < 1 || (alignment & (alignment - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(alignment), $"alignment {alignment} is not a power of two");
        while (_constants.Count % alignment != 0) _constants.Add(0);
        _constantsAlignment = Math.Max(_constantsAlignment, alignment);
        long offset = _constants.Count;
        if (offset + data.Length >= PlanFormat.NoConstant) throw new InvalidOperationException("the Constants section is full");
        _constants.AddRange(data);
        return (uint)offset;
    }

    /// <summary>Appends int32 values, little-endian and 4-byte aligned (bias, multipliers, shifts).</summary>
    public uint AddInt32s(ReadOnlySpan<int> values)
    {
        var bytes = new byte[4 * values.Length];
        for (int i = 0; i < values.Length; i++)
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(4 * i), values[i]);
        return AddConstant(bytes, 4);
    }

    /// <summary>Appends int8 values (weights).</summary>
    public uint AddInt8s(ReadOnlySpan<sbyte> values, int alignment = 4)
    {
        var bytes = new byte[values.Length];
        for (int i = 0; i < values.Length; i++) bytes[i] = (byte)values[i];
        return AddConstant(bytes, alignment);
    }

    /// <summary>
    /// Adds an op record; returns its index. Tensor indices are <see cref="PlanFormat.NoTensor"/> and
    /// constant offsets <see cref="PlanFormat.NoConstant"/> where absent; <paramref name="args"/>
    /// (at most nine, the rest are 0) mean what <see cref="OpKind"/> says for the kind.
    /// </summary>
    public int AddOp(OpKind kind, OpPhase phase, ushort in0, ushort in1, ushort output, ushort scratch,
        uint weights, uint bias, uint multiplier, uint shift, ReadOnlySpan<int> args, OpFlags flags = OpFlags.None)
    {
        if (args.Length > PlanFormat.OpArgCount)
            throw new ArgumentOutOfRangeException(nameof(args), $"an op has at most {PlanFormat.OpArgCount} args, not {args.Length}");
        if (_ops.Count >= Plan.NoOp - 1) throw new InvalidOperationException("a plan holds at most 65534 ops");
        var r = new byte[PlanFormat.OpRecordSize];
        BinaryPrimitives.WriteUInt16LittleEndian(r.AsSpan(PlanFormat.OpKindField), (ushort)kind);
        r[PlanFormat.OpPhase] = (byte)phase;
        r[PlanFormat.OpFlags] = (byte)flags;
        BinaryPrimitives.WriteUInt16LittleEndian(r.AsSpan(PlanFormat.OpInput0), in0);
        BinaryPrimitives.WriteUInt16LittleEndian(r.AsSpan(PlanFormat.OpInput1), in1);
        BinaryPrimitives.WriteUInt16LittleEndian(r.AsSpan(PlanFormat.OpOutput), output);
        BinaryPrimitives.WriteUInt16LittleEndian(r.AsSpan(PlanFormat.OpScratch), scratch);
        PutU32(r, PlanFormat.OpWeights, weights);
        PutU32(r, PlanFormat.OpBias, bias);
        PutU32(r, PlanFormat.OpMultiplier, multiplier);
        PutU32(r, PlanFormat.OpShift, shift);
        for (int k = 0; k < args.Length; k++)
            BinaryPrimitives.WriteInt32LittleEndian(r.AsSpan(PlanFormat.OpArgs + 4 * k), args[k]);
        _ops.Add(r);
        return _ops.Count - 1;
    }

    /// <summary>Lays out the file: header, section table, Model, Tensors, Ops, Constants, Names, CRC-32.</summary>
    public byte[] Build()
    {
        byte[] modelName = Encoding.UTF8.GetBytes(ModelName);
        byte[] board = Encoding.UTF8.GetBytes(Board);
        var names = new List<byte>(_names);
        int boardOffset = names.Count;
        names.AddRange(board);
        int forwardOps = ForwardOpCount >= 0 ? ForwardOpCount : LeadingForwardOps();
        CheckU16(InputTensor, nameof(InputTensor));
        CheckU16(OutputTensor, nameof(OutputTensor));
        CheckU16(NumClasses, nameof(NumClasses));
        CheckU16(forwardOps, nameof(ForwardOpCount));
        CheckU32(FlashBytes, nameof(FlashBytes));
        CheckU32(SramParamBytes, nameof(SramParamBytes));
        CheckU32(StateBytes, nameof(StateBytes));
        ArgumentOutOfRangeException.ThrowIfNegative(ArenaBytes, nameof(ArenaBytes));

        // Section order is fixed, so the layout depends only on the contents.
        int modelLength = PlanFormat.ModelRecordSize + modelName.Length;
        int tensorsLength = _tensors.Count * PlanFormat.TensorRecordSize;
        int opsLength = _ops.Count * PlanFormat.OpRecordSize;
        int modelAt = Align(PlanFormat.HeaderSize + SectionCount * PlanFormat.SectionEntrySize, 4);
        int tensorsAt = Align(modelAt + modelLength, 4);
        int opsAt = Align(tensorsAt + tensorsLength, 4);
        int constantsAt = Align(opsAt + opsLength, _constantsAlignment);
        int namesAt = Align(constantsAt + _constants.Count, 4);
        int trailerAt = Align(namesAt + names.Count, 4);
        int fileLength = trailerAt + PlanFormat.TrailerSize;

        var image = new byte[fileLength];
        PlanFormat.Magic.CopyTo(image.AsSpan(PlanFormat.HeaderMagic));
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(PlanFormat.HeaderVersionMajor), PlanFormat.VersionMajor);
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(PlanFormat.HeaderVersionMinor), PlanFormat.VersionMinor);
        PutU32(image, PlanFormat.HeaderFileLength, (uint)fileLength);
        PutU32(image, PlanFormat.HeaderSectionCount, SectionCount);
        PutU32(image, PlanFormat.HeaderArenaBytes, (uint)ArenaBytes);

        int entry = PlanFormat.HeaderSize;
        PutSection(image, ref entry, SectionKind.Model, modelAt, modelLength);
        PutSection(image, ref entry, SectionKind.Tensors, tensorsAt, tensorsLength);
        PutSection(image, ref entry, SectionKind.Ops, opsAt, opsLength);
        PutSection(image, ref entry, SectionKind.Constants, constantsAt, _constants.Count);
        PutSection(image, ref entry, SectionKind.Names, namesAt, names.Count);

        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(modelAt + PlanFormat.ModelInputTensor), (ushort)InputTensor);
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(modelAt + PlanFormat.ModelOutputTensor), (ushort)OutputTensor);
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(modelAt + PlanFormat.ModelNumClasses), (ushort)NumClasses);
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(modelAt + PlanFormat.ModelForwardOps), (ushort)forwardOps);
        PutU32(image, modelAt + PlanFormat.ModelFlashBytes, (uint)FlashBytes);
        PutU32(image, modelAt + PlanFormat.ModelSramParamBytes, (uint)SramParamBytes);
        PutU32(image, modelAt + PlanFormat.ModelStateBytes, (uint)StateBytes);
        PutU32(image, modelAt + PlanFormat.ModelNameLength, (uint)modelName.Length);
        PutU32(image, modelAt + PlanFormat.ModelBoardOffset, board.Length == 0 ? 0u : (uint)boardOffset);
        PutU32(image, modelAt + PlanFormat.ModelBoardLength, (uint)board.Length);
        modelName.CopyTo(image, modelAt + PlanFormat.ModelRecordSize);

        for (int i = 0; i < _tensors.Count; i++)
            _tensors[i].CopyTo(image, tensorsAt + i * PlanFormat.TensorRecordSize);
        for (int i = 0; i < _ops.Count; i++)
            _ops[i].CopyTo(image, opsAt + i * PlanFormat.OpRecordSize);
        _constants.CopyTo(image, constantsAt);
        names.CopyTo(image, namesAt);

        PutU32(image, trailerAt, Crc32.Compute(image, 0, trailerAt));
        return image;
    }

    private int LeadingForwardOps()
    {
        int n = 0;
        while (n < _ops.Count && _ops[n][PlanFormat.OpPhase] == (byte)OpPhase.Forward) n++;
        return n;
    }

    private static void PutSection(byte[] image, ref int entry, SectionKind kind, int offset, int length)
    {
        PutU32(image, entry, (uint)kind);
        PutU32(image, entry + 4, (uint)offset);
        PutU32(image, entry + 8, (uint)length);
        entry += PlanFormat.SectionEntrySize;
    }

    private static void PutU32(byte[] b, int offset, uint value) => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(offset), value);

    private static int Align(int offset, int alignment) => (offset + alignment - 1) / alignment * alignment;

    private static void CheckU16(int value, string field)
    {
        if (value < 0 || value > ushort.MaxValue)
            throw new InvalidOperationException($"plan field {field} = {value} does not fit 0..{ushort.MaxValue}");
    }

    private static void CheckU32(long value, string field)
    {
        if (value < 0 || value > uint.MaxValue)
            throw new InvalidOperationException($"plan field {field} = {value} does not fit 0..{uint.MaxValue}");
    }
}
