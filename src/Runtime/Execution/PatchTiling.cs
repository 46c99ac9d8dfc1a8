namespace TinyTrain.Runtime.Execution;

using TinyTrain.Runtime.Plans;

/// <summary>
/// The geometry of a patch stage (<see cref="OpKind.PatchStage"/>), one dimension at a time: which rows
/// (or columns) of each inner op a tile of the stage's output needs. The compiler sizes the tile buffer
/// with the same functions, the loader checks it and the executor runs by them; nothing is allocated.
/// </summary>
public static class PatchTiling
{
    /// <summary>Start of part <paramref name="index"/> of <paramref name="parts"/> near-equal parts of <paramref name="size"/> (index == parts gives size).</summary>
    public static int PartStart(int size, int parts, int index) => (int)((long)size * index / parts);

    /// <summary>First input row (may be negative: padding) a window op reads for output rows starting at <paramref name="outStart"/>.</summary>
    public static int InputStart(int outStart, int stride, int pad) => outStart * stride - pad;

    /// <summary>One past the last input row (may pass the image: padding) a window op reads for output rows ending before <paramref name="outEnd"/>.</summary>
    public static int InputEnd(int outEnd, int kernel, int stride, int pad) => (outEnd - 1) * stride - pad + kernel;

    /// <summary>
    /// For the stage output rows [<paramref name="start"/>, <paramref name="end"/>) (columns when <paramref name="columns"/>),
    /// the output rows [outStart, outEnd) inner op <paramref name="k"/> computes (inside its output) and the input rows
    /// [inStart, inEnd) it reads (with the halo; outside [0, input size) is padding). The stage op is at <paramref name="stage"/>,
    /// its inner ops follow it; an inner op's args 0..2 are kernel, stride, padding (Conv2D and DepthwiseConv2D alike).
    /// </summary>
    public static void Range(Plan plan, int stage, int k, int start, int end, bool columns,
        out int outStart, out int outEnd, out int inStart, out int inEnd)
    {
        int n = plan.Op(stage).Arg(0);
        outStart = start;
        outEnd = end;
        inStart = inEnd = 0;
        for (int i = n - 1; i >= k; i--)
        {
            OpInfo op = plan.Op(stage + 1 + i);
            if (i < n - 1)
            {
                // This op's output is the next op's input: the rows it needs, clamped to the image.
                int size = columns ? plan.Tensor(op.Output).W : plan.Tensor(op.Output).H;
                outStart = inStart < 0 ? 0 : inStart;
                outEnd = inEnd > size ? size : inEnd;
            }
            inStart = InputStart(outStart, op.Arg(1), op.Arg(2));
            inEnd = InputEnd(outEnd, op.Arg(0), op.Arg(1), op.Arg(2));
        }
    }

    /// <summary>The rows [<paramref name="start"/>, start + count) of the stage input (clamped to it) that row <paramref name="r"/>
    /// of the tiles reads: what a streamed input's band holds then (see <see cref="PlanFormat.TensorFlagStreamed"/>). Returns the count.</summary>
    public static int InputBand(Plan plan, int stage, int r, out int start)
    {
        OpInfo op = plan.Op(stage);
        int rows = op.Arg(1), h = plan.Tensor(op.Output).H, inH = plan.Tensor(op.Input0).H;
        Range(plan, stage, 0, PartStart(h, rows, r), PartStart(h, rows, r + 1), false, out _, out _, out int iy0, out int iy1);
        start = iy0 < 0 ? 0 : iy0;
        return (iy1 > inH ? inH : iy1) - start;
    }

    /// <summary>The most rows of the stage input any row of tiles reads: the band a streamed input needs.</summary>
    public static int BandRows(Plan plan, int stage)
    {
        int most = 0;
        for (int r = 0; r < plan.Op(stage).Arg(1); r++)
            most = Math.Max(most, InputBand(plan, stage, r, out _));
        return most;
    }

    /// <summary>
    /// For a stage that stages its output over its dying input (PatchStage arg 6; see <see cref="Kernels.PatchTile.Stage"/>):
    /// the fewest output rows that must go to the spill buffer so that every later output row y can be kept row-major at
    /// input bytes [stageBase + (y - spill) x rowBytes, +rowBytes) that no later tile reads any more (input rows below
    /// <paramref name="firstInputRow"/>[r] of every plane when row of tiles r writes it). <paramref name="firstOutRow"/>[r] is
    /// the first output row of row of tiles r. Returns <paramref name="outH"/> when no row can be staged.
    /// </summary>
    public static int SpillRows(int inC, int inH, int inW, int outRowBytes, int outH, int tileRows, int[] firstOutRow, int[] firstInputRow, long stageBase = 0)
    {
        long plane = (long)inH * inW;
        for (int spill = 0; spill < outH; spill++)
        {
            bool ok = true;
            for (int r = 0; r < tileRows && ok; r++)
            {
                int end = r + 1 < tileRows ? firstOutRow[r + 1] : outH;
                for (int y = Math.Max(firstOutRow[r], spill); y < end && ok; y++)
                {
                    long a = stageBase + (long)(y - spill) * outRowBytes, b = a + outRowBytes;
                    if (b > plane * inC) ok = false;
                    // Rows rise with the offset inside a plane: the last byte of each plane the row touches decides.
                    for (long p = a / plane; ok && p * plane < b; p++)
                        ok = (Math.Min(b, (p + 1) * plane) - 1 - p * plane) / inW < firstInputRow[r];
                }
            }
            if (ok) return spill;
        }
        return outH;
    }

    /// <summary>The first input row (clamped at 0) and first output row of each row of tiles of stage <paramref name="stage"/>.</summary>
    public static void RowStarts(Plan plan, int stage, int[] firstOutRow, int[] firstInputRow)
    {
        OpInfo op = plan.Op(stage);
        int rows = op.Arg(1), h = plan.Tensor(op.Output).H;
        for (int r = 0; r < rows; r++)
        {
            firstOutRow[r] = PartStart(h, rows, r);
            InputBand(plan, stage, r, out firstInputRow[r]);
        }
    }

    /// <summary>
    /// The tile buffer a stage needs: the largest padded input tile and the largest output tile of any inner
    /// op over every tile (bytes, int8).
    /// </summary>
    public static void BufferBytes(Plan plan, int stage, out long paddedBytes, out long outputBytes)
    {
        OpInfo op = plan.Op(stage);
        int n = op.Arg(0), rows = op.Arg(1), cols = op.Arg(2);
        TensorInfo y = plan.Tensor(op.Output);
        paddedBytes = outputBytes = 0;
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
                for (int k = 0; k < n; k++)
                {
                    OpInfo inner = plan.Op(stage + 1 + k);
                    Range(plan, stage, k, PartStart(y.H, rows, r), PartStart(y.H, rows, r + 1), false, out int oy0, out int oy1, out int iy0, out int iy1);
                    Range(plan, stage, k, PartStart(y.W, cols, c), PartStart(y.W, cols, c + 1), true, out int ox0, out int ox1, out int ix0, out int ix1);
                    long padded = (long)plan.Tensor(inner.Input0).C * (iy1 - iy0) * (ix1 - ix0);
                    long output = (long)plan.Tensor(inner.Output).C * (oy1 - oy0) * (ox1 - ox0);
                    if (padded > paddedBytes) paddedBytes = padded;
                    if (output > outputBytes) outputBytes = output;
                }
    }
}
