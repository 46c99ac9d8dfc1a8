namespace TinyTrain.Runtime.Plans;

// Reads the plan's little-endian fields byte by byte: independent of the host's byte order and
// alignment, and free of Span so that it builds for a board. Callers have checked the range.
internal static class LittleEndian
{
    public static int U8(byte[] b, int o) => b[o];

    public static int U16(byte[] b, int o) => b[o] | (b[o + 1] << 8);

    public static uint U32(byte[] b, int o) => (uint)(b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24));

    public static int I32(byte[] b, int o) => b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24);

    public static float F32(byte[] b, int o) => Kernels.FloatBits.Read(b, o);
}
