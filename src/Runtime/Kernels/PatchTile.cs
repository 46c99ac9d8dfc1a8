namespace TinyTrain.Runtime.Kernels;

/// <summary>
/// The byte moves of a patch stage (plan op PatchStage): building a layer's padded input tile from the tensor (or the
/// previous layer's output tile) that holds it, and copying the last layer's output tile into the stage output. Plain
/// loops over one byte array (the arena), no System.Array helpers beyond Copy, portable to nanoFramework; shared by
/// src/Runtime's executor and the nanoFramework build.
/// </summary>
public static class PatchTile
{
    /// <summary>
    /// Copies rows [iy0, iy1) x columns [ix0, ix1) of a (C, H, W) tensor, of which the source at <paramref name="src"/>
    /// holds the (C, sh, sw) block at (sy, sx), into a (C, iy1 - iy0, ix1 - ix0) tile at <paramref name="dst"/>; outside
    /// [0, H) x [0, W) the tile holds the zero point, which is what the kernels' own padding means.
    /// </summary>
    public static void Pad(byte[] arena, int src, int channels, int h, int w, int sy, int sx, int sh, int sw,
        int iy0, int iy1, int ix0, int ix1, int zeroPoint, int dst)
    {
        byte zero = (byte)(sbyte)zeroPoint;
        int width = ix1 - ix0;
        int left = ix0 < 0 ? -ix0 : 0, right = ix1 > w ? ix1 - w : 0, inside = width - left - right;
        for (int ch = 0; ch < channels; ch++)
        {
            for (int yy = iy0; yy < iy1; yy++)
            {
                int to = dst + (ch * (iy1 - iy0) + (yy - iy0)) * width;
                if (yy < 0 || yy >= h)
                {
                    Fill(arena, to, width, zero);
                    continue;
                }
                Fill(arena, to, left, zero);
                Array.Copy(arena, src + (ch * sh + (yy - sy)) * sw + (ix0 + left - sx), arena, to + left, inside);
                Fill(arena, to + left + inside, right, zero);
            }
        }
    }

    /// <summary>Copies a (C, th, tw) output tile at <paramref name="tile"/> into the (C, H, W) stage output at rows y0.., columns x0...</summary>
    public static void Place(byte[] arena, int tile, int channels, int th, int tw, int output, int h, int w, int y0, int x0)
    {
        for (int ch = 0; ch < channels; ch++)
        {
            for (int row = 0; row < th; row++)
            {
                Array.Copy(arena, tile + (ch * th + row) * tw, arena, output + (ch * h + y0 + row) * w + x0, tw);
            }
        }
    }

    /// <summary>
    /// Copies a (C, th, tw) output tile into a stage output kept row-major over the stage's dying input (PatchStage arg 6):
    /// output row y (all channels, C x W bytes) lies at <paramref name="input"/> + (y - spill) x C x W, or for y &lt; spill at
    /// <paramref name="spillAt"/> + y x C x W; element (ch, y, x) at that row's start + ch x W + x.
    /// </summary>
    public static void Stage(byte[] arena, int tile, int channels, int th, int tw, int input, int spillAt, int spill, int w, int y0, int x0)
    {
        int rowBytes = channels * w;
        for (int row = 0; row < th; row++)
        {
            int y = y0 + row, at = y < spill ? spillAt + y * rowBytes : input + (y - spill) * rowBytes;
            for (int ch = 0; ch < channels; ch++)
                Array.Copy(arena, tile + (ch * th + row) * tw, arena, at + ch * w + x0, tw);
        }
    }

    /// <summary>Moves a staged stage output (see <see cref="Stage"/>) to its (C, H, W) place at <paramref name="output"/>, which
    /// overlaps neither the staged rows nor the spill rows (the plan loader checks it).</summary>
    public static void Unstage(byte[] arena, int input, int spillAt, int spill, int channels, int h, int w, int output)
    {
        int rowBytes = channels * w;
        for (int y = 0; y < h; y++)
        {
            int at = y < spill ? spillAt + y * rowBytes : input + (y - spill) * rowBytes;
            for (int ch = 0; ch < channels; ch++)
                Array.Copy(arena, at + ch * w, arena, output + (ch * h + y) * w, w);
        }
    }

    /// <summary>
    /// Makes the band of a streamed model input (plan tensor flag Streamed) hold rows [<paramref name="y0"/>, <paramref name="y1"/>)
    /// of the (C, H, W) frame, where it held [<paramref name="held0"/>, <paramref name="held1"/>) (nothing when they are equal;
    /// y0 &gt;= held0 and y1 &gt;= held1, as tile rows go down the image): rows it already holds move to the top of each channel's
    /// <paramref name="capacity"/>-row plane, and only the rows after them are read from the frame, so that each frame row is read
    /// once and in order (a camera FIFO or a line stream can feed it). The frame is int8 bytes (<paramref name="bytes"/>) or
    /// floats quantized here exactly as Executor.TrySetInput quantizes (<paramref name="floats"/>); one of them is null.
    /// </summary>
    public static void Advance(byte[] arena, int band, int capacity, int channels, int h, int w, int held0, int held1, int y0, int y1,
        byte[]? bytes, float[]? floats, int frameOffset, float inverse, int zeroPoint)
    {
        int kept = 0;
        if (held1 > held0 && y0 < held1)
        {
            kept = (y1 < held1 ? y1 : held1) - y0;
            if (y0 > held0)
                for (int ch = 0; ch < channels; ch++)
                    Array.Copy(arena, band + (ch * capacity + y0 - held0) * w, arena, band + ch * capacity * w, kept * w);
        }
        int count = (y1 - y0 - kept) * w;
        for (int ch = 0; ch < channels; ch++)
        {
            int from = frameOffset + (ch * h + y0 + kept) * w, to = band + (ch * capacity + kept) * w;
            if (bytes != null)
            {
                Array.Copy(bytes, from, arena, to, count);
                continue;
            }
            for (int i = 0; i < count; i++)
                arena[to + i] = Quantize(floats![from + i], inverse, zeroPoint);
        }
    }

    /// <summary>A real input value to int8 (round half away from zero, saturate): the model input's quantization, shared by
    /// TrySetInput and the streamed band so that both give the same bytes.</summary>
    public static byte Quantize(float value, float inverse, int zeroPoint)
    {
        float scaled = value * inverse;
        int q = (int)(scaled >= 0 ? scaled + 0.5f : scaled - 0.5f) + zeroPoint;
        return (byte)(sbyte)(q < -128 ? -128 : q > 127 ? 127 : q);
    }

    private static void Fill(byte[] arena, int at, int count, byte value)
    {
        for (int i = 0; i < count; i++)
        {
            arena[at + i] = value;
        }
    }
}
