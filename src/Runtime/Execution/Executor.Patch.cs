namespace TinyTrain.Runtime.Execution;

using TinyTrain.Runtime.Kernels;
using TinyTrain.Runtime.Plans;

// Patch-by-patch execution of a stage of frozen early layers (OpKind.PatchStage): the tensors between
// them exist only as tiles in the stage's tile buffer. Each tile runs the ordinary kernels with no
// padding on an input tile whose out-of-image border holds the input's zero point, which is what the
// kernels' own padding means, so the result is bit for bit that of the whole ops.
public sealed partial class Executor
{
    // The ops a patch stage or a channel stage runs itself: the loops skip them.
    private static int InnerOps(OpInfo op) => op.Kind is OpKind.PatchStage or OpKind.PatchGraphStage or OpKind.ChannelStage ? op.Arg(0) : 0;

    private void RunPatchStage(OpInfo op, int index)
    {
        int n = op.Arg(0), rows = op.Arg(1), cols = op.Arg(2);
        TensorInfo y = _plan.Tensor(op.Output), tile = _plan.Tensor(op.Scratch);
        int padded = tile.ArenaOffset, output = tile.ArenaOffset + op.Arg(3);
        TensorInfo input = _plan.Tensor(op.Input0);
        int band = output + op.Arg(4), capacity = op.Arg(5), held0 = 0, held1 = 0;
        // Arg 6 > 0: the output is staged row-major over the input rows no later tile reads, its first arg-6 rows in a spill
        // buffer after the band, and moved to its place at the end (PatchTile.Stage / Unstage).
        int spill = op.Arg(6), spillAt = band + input.C * capacity * input.W;
        if (input.Streamed) RequireFrame();
        for (int r = 0; r < rows; r++)
        {
            int y0 = PatchTiling.PartStart(y.H, rows, r), y1 = PatchTiling.PartStart(y.H, rows, r + 1);
            if (input.Streamed)
            {
                int count = PatchTiling.InputBand(_plan, index, r, out int start);
                AdvanceBand(input, band, capacity, held0, held1, start, start + count);
                (held0, held1) = (start, start + count);
            }
            for (int c = 0; c < cols; c++)
            {
                int x0 = PatchTiling.PartStart(y.W, cols, c), x1 = PatchTiling.PartStart(y.W, cols, c + 1);
                int th = 0, tw = 0;
                for (int k = 0; k < n; k++)
                {
                    OpInfo inner = _plan.Op(index + 1 + k);
                    PatchTiling.Range(_plan, index, k, y0, y1, false, out int oy0, out int oy1, out int iy0, out int iy1);
                    PatchTiling.Range(_plan, index, k, x0, x1, true, out int ox0, out int ox1, out int ix0, out int ix1);
                    TensorInfo x = _plan.Tensor(inner.Input0);
                    // The source: the stage input whole, or the previous op's output tile, which covers exactly the
                    // part of [iy0, iy1) x [ix0, ix1) inside the image.
                    int sy = iy0 < 0 ? 0 : iy0, sx = ix0 < 0 ? 0 : ix0;
                    if (k == 0 && x.Streamed)
                        PatchTile.Pad(_arena, band, x.C, x.H, x.W, held0, 0, capacity, x.W, iy0, iy1, ix0, ix1, x.ZeroPoint, padded);
                    else if (k == 0)
                        PatchTile.Pad(_arena, x.ArenaOffset, x.C, x.H, x.W, 0, 0, x.H, x.W, iy0, iy1, ix0, ix1, x.ZeroPoint, padded);
                    else
                        PatchTile.Pad(_arena, output, x.C, x.H, x.W, sy, sx, th, tw, iy0, iy1, ix0, ix1, x.ZeroPoint, padded);
                    th = oy1 - oy0;
                    tw = ox1 - ox0;
                    RunTile(inner, x, _plan.Tensor(inner.Output), iy1 - iy0, ix1 - ix0, th, tw, padded, output);
                }
                if (spill > 0)
                    PatchTile.Stage(_arena, output, y.C, th, tw, input.ArenaOffset + op.Arg(7), spillAt, spill, y.W, y0, x0);
                else
                    PatchTile.Place(_arena, output, y.C, th, tw, y.ArenaOffset, y.H, y.W, y0, x0);
            }
        }
        if (spill > 0) PatchTile.Unstage(_arena, input.ArenaOffset + op.Arg(7), spillAt, spill, y.C, y.H, y.W, y.ArenaOffset);
    }

    // The geometry of the graph stage being run: filled from the plan at each run, allocated once.
    private readonly PatchGraph _graph = new();

    // A patch stage through residual blocks (OpKind.PatchGraphStage): each inner op's output tile lives in its slot of
    // the tile buffer (PatchGraph.Measure); a window op pads its source's tile, an Add adds its sources row by row.
    private void RunPatchGraphStage(OpInfo op, int index)
    {
        PatchGraph g = _graph;
        PatchGraphLoader.Load(g, _plan, index);
        int n = g.Count, rows = op.Arg(1), cols = op.Arg(2);
        g.Measure(rows, cols, out _, out _);
        TensorInfo y = _plan.Tensor(op.Output), x = _plan.Tensor(op.Input0);
        int padded = _plan.Tensor(op.Scratch).ArenaOffset, slots = padded + op.Arg(3);
        // A streamed input: its band (after the slots) stands in for the whole input, rows [held0, held1) at plane stride capacity.
        int band = slots + op.Arg(4), capacity = op.Arg(5), held0 = 0, held1 = 0;
        int inputAt = x.ArenaOffset, inputRows = x.H;
        if (x.Streamed) RequireFrame();
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
            {
                g.Ranges(PatchTiling.PartStart(y.H, rows, r), PatchTiling.PartStart(y.H, rows, r + 1),
                    PatchTiling.PartStart(y.W, cols, c), PatchTiling.PartStart(y.W, cols, c + 1));
                if (x.Streamed && c == 0)
                {
                    int count = g.StageInputRows(out int start);
                    AdvanceBand(x, band, capacity, held0, held1, start, start + count);
                    (held0, held1) = (start, start + count);
                    (inputAt, inputRows) = (band - held0 * x.W, capacity);
                }
                for (int k = 0; k < n; k++)
                {
                    OpInfo inner = _plan.Op(index + 1 + k);
                    TensorInfo to = _plan.Tensor(inner.Output);
                    int th = g.Y1[k] - g.Y0[k], tw = g.X1[k] - g.X0[k], at = slots + g.Offset[k];
                    if (g.IsAdd[k])
                    {
                        AddTile(inner, g, k, inputAt, inputRows, x.W, to, slots, at);
                        continue;
                    }
                    int h = g.InputRows(k, out int iy0), w = g.InputCols(k, out int ix0);
                    int s = g.Source0[k];
                    TensorInfo from = _plan.Tensor(inner.Input0);
                    if (s == PatchGraph.StageInput && x.Streamed)
                        PatchTile.Pad(_arena, band, x.C, x.H, x.W, held0, 0, capacity, x.W, iy0, iy0 + h, ix0, ix0 + w, x.ZeroPoint, padded);
                    else if (s == PatchGraph.StageInput)
                        PatchTile.Pad(_arena, x.ArenaOffset, x.C, x.H, x.W, 0, 0, x.H, x.W, iy0, iy0 + h, ix0, ix0 + w, x.ZeroPoint, padded);
                    else
                        PatchTile.Pad(_arena, slots + g.Offset[s], from.C, from.H, from.W, g.Y0[s], g.X0[s], g.Y1[s] - g.Y0[s], g.X1[s] - g.X0[s],
                            iy0, iy0 + h, ix0, ix0 + w, from.ZeroPoint, padded);
                    RunTile(inner, from, to, h, w, th, tw, padded, at);
                }
                PatchTile.Place(_arena, slots + g.Offset[n - 1], y.C, g.Y1[n - 1] - g.Y0[n - 1], g.X1[n - 1] - g.X0[n - 1], y.ArenaOffset, y.H, y.W,
                    g.Y0[n - 1], g.X0[n - 1]);
            }
    }

    // An inner Add on one tile, one row of one channel at a time: each input row from its source (a slot, or the stage
    // input whole) at the output's rows and columns, which lie inside what the source holds.
    private void AddTile(OpInfo op, PatchGraph g, int k, int inputAt, int inputRows, int inputW, TensorInfo y, int slots, int at)
    {
        TensorInfo x0 = _plan.Tensor(op.Input0), x1 = _plan.Tensor(op.Input1);
        int th = g.Y1[k] - g.Y0[k], tw = g.X1[k] - g.X0[k];
        var p = new AddParams
        {
            Count = tw,
            Input0ZeroPoint = x0.ZeroPoint, Input0Multiplier = op.Arg(0), Input0Shift = op.Arg(1),
            Input1ZeroPoint = x1.ZeroPoint, Input1Multiplier = op.Arg(2), Input1Shift = op.Arg(3),
            OutputZeroPoint = y.ZeroPoint, OutputMultiplier = op.Arg(4), OutputShift = op.Arg(5), LeftShift = op.Arg(6),
            ActMin = op.Arg(7), ActMax = op.Arg(8),
        };
        for (int ch = 0; ch < y.C; ch++)
            for (int row = 0; row < th; row++)
            {
                int yy = g.Y0[k] + row, xx = g.X0[k];
                Add.Run(p, _arena, g.Element(g.Source0[k], inputAt, inputRows, inputW, slots, ch, yy, xx), _arena, g.Element(g.Source1[k], inputAt, inputRows, inputW, slots, ch, yy, xx),
                    _arena, at + (ch * th + row) * tw);
            }
    }

    // Moves a streamed input's band from frame rows [held0, held1) to [y0, y1), reading only the new rows (PatchTile.Advance).
    private void AdvanceBand(TensorInfo x, int band, int capacity, int held0, int held1, int y0, int y1) =>
        PatchTile.Advance(_arena, band, capacity, x.C, x.H, x.W, held0, held1, y0, y1, _frameBytes, _frameFloats, _frameOffset, 1f / x.Scale, x.ZeroPoint);

    // One inner op on one tile: the padded input tile (h, w) to the output tile (oh, ow), no padding, no mask.
    private void RunTile(OpInfo op, TensorInfo x, TensorInfo y, int h, int w, int oh, int ow, int from, int to)
    {
        OpFlags flags = op.Flags;
        byte[] wBuffer = (flags & OpFlags.WeightsInParams) != 0 ? _params : _image;
        byte[] bBuffer = (flags & OpFlags.BiasInParams) != 0 ? _params : _image;
        int weights = Ref(op.Weights, flags, OpFlags.WeightsInParams), bias = Ref(op.Bias, flags, OpFlags.BiasInParams);
        int mult = Const(op.Multiplier), shift = Const(op.Shift);
        if (op.Kind == OpKind.Conv2D)
        {
            var p = new ConvParams
            {
                InC = x.C, H = h, W = w, OutC = y.C, OH = oh, OW = ow,
                Kernel = op.Arg(0), Stride = op.Arg(1), Pad = 0, Groups = op.Arg(3),
                InputZeroPoint = x.ZeroPoint, OutputZeroPoint = y.ZeroPoint, ActMin = op.Arg(4), ActMax = op.Arg(5),
            };
            Conv2D.Run(p, _arena, from, wBuffer, weights, bBuffer, bias, _image, mult, shift, _arena, to, null, -1, 0);
        }
        else
        {
            var p = new DepthwiseParams
            {
                C = x.C, H = h, W = w, OH = oh, OW = ow, Kernel = op.Arg(0), Stride = op.Arg(1), Pad = 0,
                InputZeroPoint = x.ZeroPoint, OutputZeroPoint = y.ZeroPoint, ActMin = op.Arg(3), ActMax = op.Arg(4),
            };
            DepthwiseConv2D.Run(p, _arena, from, wBuffer, weights, bBuffer, bias, _image, mult, shift, _arena, to, null, -1, 0);
        }
    }
}
