namespace TinyTrain.Runtime.Execution;

/// <summary>
/// The geometry and tile-buffer layout of a patch stage that runs through residual blocks (<see cref="Plans.OpKind.PatchGraphStage"/>):
/// its inner ops form a small DAG of window ops (Conv2D, DepthwiseConv2D) and Adds. For one tile of the stage output,
/// <see cref="Ranges"/> walks the ops backwards and gives each op's output the rows and columns its readers need (the
/// union over its readers, clamped to the image). Each op's output tile has a slot in the tile buffer, sized for the largest
/// tile over the grid and placed first-fit among the slots still live (<see cref="Measure"/>). The compiler fills it from its
/// program, the loader and the executors from the plan image, so all three size and run the same tiles. Arrays are
/// allocated once; nothing allocates afterwards. Plain arrays and loops: the file is linked into the nanoFramework build.
/// </summary>
public sealed class PatchGraph
{
    /// <summary>The most inner ops a graph stage may run.</summary>
    public const int MaxOps = 32;

    /// <summary>Source of an input that is the stage input (whole in the arena); other sources are inner op indexes.</summary>
    public const int StageInput = -1;

    /// <summary>Source of an absent second input.</summary>
    public const int None = -2;

    public int Count;
    public int InC, InH, InW;
    public readonly bool[] IsAdd = new bool[MaxOps];
    public readonly int[] Kernel = new int[MaxOps], Stride = new int[MaxOps], Pad = new int[MaxOps];
    public readonly int[] Source0 = new int[MaxOps], Source1 = new int[MaxOps];
    public readonly int[] C = new int[MaxOps], H = new int[MaxOps], W = new int[MaxOps];

    /// <summary>Per op, for the tile <see cref="Ranges"/> last computed: its output rows [Y0, Y1) and columns [X0, X1).</summary>
    public readonly int[] Y0 = new int[MaxOps], Y1 = new int[MaxOps], X0 = new int[MaxOps], X1 = new int[MaxOps];

    /// <summary>Per op, after <see cref="Measure"/>: its slot's offset and bytes after the padded input area, and its last reader.</summary>
    public readonly int[] Offset = new int[MaxOps], Size = new int[MaxOps], LastReader = new int[MaxOps];

    /// <summary>
    /// Where element (ch, yy, xx) of an inner op's source lies in the arena: in the stage input whole (a (C, H, W) tensor
    /// at <paramref name="inputOffset"/>), or in that source's tile, whose slots start at <paramref name="slots"/>.
    /// </summary>
    public int Element(int source, int inputOffset, int inputH, int inputW, int slots, int ch, int yy, int xx)
    {
        if (source == StageInput)
        {
            return inputOffset + (ch * inputH + yy) * inputW + xx;
        }
        int h = Y1[source] - Y0[source], w = X1[source] - X0[source];
        return slots + Offset[source] + (ch * h + yy - Y0[source]) * w + xx - X0[source];
    }

    private readonly bool[] _live = new bool[MaxOps];

    /// <summary>As PatchTiling.PartStart (this file is linked into the nanoFramework build, which has no PatchTiling).</summary>
    public static int PartStart(int size, int parts, int index) => (int)((long)size * index / parts);

    private static int InputStart(int outStart, int stride, int pad) => outStart * stride - pad;

    private static int InputEnd(int outEnd, int kernel, int stride, int pad) => (outEnd - 1) * stride - pad + kernel;

    /// <summary>Sets the output rows and columns each op computes for the stage output tile [y0, y1) x [x0, x1).</summary>
    public void Ranges(int y0, int y1, int x0, int x1)
    {
        int n = Count;
        for (int k = 0; k < n - 1; k++)
        {
            Y0[k] = X0[k] = int.MaxValue;
            Y1[k] = X1[k] = int.MinValue;
        }
        Y0[n - 1] = y0;
        Y1[n - 1] = y1;
        X0[n - 1] = x0;
        X1[n - 1] = x1;
        for (int k = n - 1; k >= 0; k--)
        {
            Need(k, Source0[k]);
            Need(k, Source1[k]);
        }
    }

    // Widens producer p's rows and columns by what op k reads of it.
    private void Need(int k, int p)
    {
        if (p < 0) return;
        int iy0 = Y0[k], iy1 = Y1[k], ix0 = X0[k], ix1 = X1[k];
        if (!IsAdd[k])
        {
            iy0 = InputStart(Y0[k], Stride[k], Pad[k]);
            iy1 = InputEnd(Y1[k], Kernel[k], Stride[k], Pad[k]);
            ix0 = InputStart(X0[k], Stride[k], Pad[k]);
            ix1 = InputEnd(X1[k], Kernel[k], Stride[k], Pad[k]);
        }
        if (iy0 < 0) iy0 = 0;
        if (ix0 < 0) ix0 = 0;
        if (iy1 > H[p]) iy1 = H[p];
        if (ix1 > W[p]) ix1 = W[p];
        if (iy0 < Y0[p]) Y0[p] = iy0;
        if (iy1 > Y1[p]) Y1[p] = iy1;
        if (ix0 < X0[p]) X0[p] = ix0;
        if (ix1 > X1[p]) X1[p] = ix1;
    }

    /// <summary>Rows of op k's padded input tile (window ops): the rows its output rows read, halo and padding included.</summary>
    public int InputRows(int k, out int start) => Window(Y0[k], Y1[k], k, out start);

    /// <summary>Columns of op k's padded input tile (window ops).</summary>
    public int InputCols(int k, out int start) => Window(X0[k], X1[k], k, out start);

    private int Window(int a, int b, int k, out int start)
    {
        start = InputStart(a, Stride[k], Pad[k]);
        return InputEnd(b, Kernel[k], Stride[k], Pad[k]) - start;
    }

    /// <summary>After <see cref="Ranges"/>: the rows [<paramref name="start"/>, start + count) of the stage input (clamped to it) the
    /// tile's ops read, window ops with their halos; the same for every tile of a row of tiles. Returns the count.</summary>
    public int StageInputRows(out int start)
    {
        int a = int.MaxValue, b = int.MinValue;
        for (int k = 0; k < Count; k++)
        {
            if (IsAdd[k] ? Source0[k] != StageInput && Source1[k] != StageInput : Source0[k] != StageInput) continue;
            int s = IsAdd[k] ? Y0[k] : InputStart(Y0[k], Stride[k], Pad[k]);
            int e = IsAdd[k] ? Y1[k] : InputEnd(Y1[k], Kernel[k], Stride[k], Pad[k]);
            if (s < a) a = s;
            if (e > b) b = e;
        }
        if (a < 0) a = 0;
        if (b > InH) b = InH;
        start = a;
        return b > a ? b - a : 0;
    }

    /// <summary>The most rows of the stage input any row of a rows x cols grid reads: the band a streamed input needs.</summary>
    public int BandRows(int rows, int cols)
    {
        int most = 0, n = Count;
        for (int r = 0; r < rows; r++)
        {
            Ranges(PartStart(H[n - 1], rows, r), PartStart(H[n - 1], rows, r + 1), 0, PartStart(W[n - 1], cols, 1));
            int count = StageInputRows(out _);
            if (count > most) most = count;
        }
        return most;
    }

    /// <summary>The channels of what op k's input <paramref name="source"/> names.</summary>
    public int SourceChannels(int source) => source == StageInput ? InC : C[source];

    /// <summary>
    /// Over the rows x cols grid of the stage output (the last op's), the largest padded input tile of any window op
    /// (<paramref name="paddedBytes"/>), and the slots of every op's output tile placed first-fit by lifetime
    /// (<paramref name="slotBytes"/>: their extent): a window op's input is copied to the padded area before its output
    /// slot is placed, so an input it reads last may give its slot to it; an Add reads its inputs from their slots.
    /// </summary>
    public void Measure(int rows, int cols, out long paddedBytes, out long slotBytes)
    {
        int n = Count;
        paddedBytes = 0;
        for (int k = 0; k < n; k++)
        {
            Size[k] = 0;
            LastReader[k] = n; // the last op's tile is read by the copy into the stage output
        }
        for (int k = 0; k < n; k++)
        {
            if (Source0[k] >= 0) LastReader[Source0[k]] = k;
            if (Source1[k] >= 0) LastReader[Source1[k]] = k;
        }
        int outH = H[n - 1], outW = W[n - 1];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
            {
                Ranges(PartStart(outH, rows, r), PartStart(outH, rows, r + 1),
                    PartStart(outW, cols, c), PartStart(outW, cols, c + 1));
                for (int k = 0; k < n; k++)
                {
                    long bytes = (long)C[k] * (Y1[k] - Y0[k]) * (X1[k] - X0[k]);
                    if (bytes > Size[k]) Size[k] = bytes > int.MaxValue ? int.MaxValue : (int)bytes;
                    if (IsAdd[k]) continue;
                    long padded = (long)SourceChannels(Source0[k]) * InputRows(k, out _) * InputCols(k, out _);
                    if (padded > paddedBytes) paddedBytes = padded;
                }
            }

        slotBytes = 0;
        for (int k = 0; k < n; k++) _live[k] = false;
        for (int k = 0; k < n; k++)
        {
            if (!IsAdd[k]) Free(k);
            Offset[k] = FirstFit(k);
            _live[k] = true;
            if ((long)Offset[k] + Size[k] > slotBytes) slotBytes = (long)Offset[k] + Size[k];
            if (IsAdd[k]) Free(k);
        }
    }

    // Frees the slots of op k's inputs that op k reads last.
    private void Free(int k)
    {
        if (Source0[k] >= 0 && LastReader[Source0[k]] == k) _live[Source0[k]] = false;
        if (Source1[k] >= 0 && LastReader[Source1[k]] == k) _live[Source1[k]] = false;
    }

    // The lowest offset (0 or the end of a live slot) where op k's slot overlaps no live slot.
    private int FirstFit(int k)
    {
        int best = int.MaxValue;
        for (int i = -1; i < k; i++)
        {
            if (i >= 0 && !_live[i]) continue;
            int at = i < 0 ? 0 : Offset[i] + Size[i];
            if (at >= best) continue;
            bool free = true;
            for (int j = 0; j < k && free; j++)
                if (_live[j] && at < Offset[j] + Size[j] && Offset[j] < at + Size[k]) free = false;
            if (free) best = at;
        }
        return best;
    }
}
