namespace TinyTrain.Compiler.Tests.Planning;

using System.Buffers.Binary;
using TinyTrain.Runtime.Plans;

/// <summary>Byte surgery on plan images for the refusal and fuzz tests: find a record, change a field, re-seal the checksum.</summary>
internal static class PlanImage
{
    public static int Section(byte[] image, SectionKind kind, out int length)
    {
        int count = (int)U32(image, PlanFormat.HeaderSectionCount);
        for (int i = 0; i < count; i++)
        {
            int entry = PlanFormat.HeaderSize + i * PlanFormat.SectionEntrySize;
            if (U32(image, entry) == (uint)kind)
            {
                length = (int)U32(image, entry + 8);
                return (int)U32(image, entry + 4);
            }
        }
        throw new InvalidOperationException($"no {kind} section");
    }

    public static int Tensor(byte[] image, int index, int field) =>
        Section(image, SectionKind.Tensors, out _) + index * PlanFormat.TensorRecordSize + field;

    public static int Op(byte[] image, int index, int field) =>
        Section(image, SectionKind.Ops, out _) + index * PlanFormat.OpRecordSize + field;

    public static int OpArg(byte[] image, int index, int arg) => Op(image, index, PlanFormat.OpArgs + 4 * arg);

    public static int Model(byte[] image, int field) => Section(image, SectionKind.Model, out _) + field;

    public static uint U32(byte[] image, int offset) => BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(offset));

    public static void Put32(byte[] image, int offset, uint value) => BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(offset), value);

    public static void Put32(byte[] image, int offset, int value) => BinaryPrimitives.WriteInt32LittleEndian(image.AsSpan(offset), value);

    public static void Put16(byte[] image, int offset, int value) => BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(offset), (ushort)value);

    /// <summary>Makes the header's file length and the trailer agree with the bytes as they are now (a forged, "intact" file).</summary>
    public static void Seal(byte[] image)
    {
        if (image.Length >= PlanFormat.HeaderFileLength + 4)
            Put32(image, PlanFormat.HeaderFileLength, (uint)image.Length);
        if (image.Length >= PlanFormat.HeaderSize + PlanFormat.TrailerSize)
        {
            int body = image.Length - PlanFormat.TrailerSize;
            Put32(image, body, Crc32.Compute(image, 0, body));
        }
    }
}
