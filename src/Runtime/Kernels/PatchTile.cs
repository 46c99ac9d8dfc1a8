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

    private static void Fill(byte[] arena, int at, int count, byte value)
    {
        for (int i = 0; i < count; i++)
        {
            arena[at + i] = value;
        }
    }
}
