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
    private static int InnerOps(OpInfo op) => op.Kind is OpKind.PatchStage or OpKind.ChannelStage ? op.Arg(0) : 0;

    private void RunPatchStage(OpInfo op, int index)
    {
        int n = op.Arg(0), rows = op.Arg(1), cols = op.Arg(2);
        TensorInfo y = _plan.Tensor(op.Output), tile = _plan.Tensor(op.Scratch);
        int padded = tile.ArenaOffset, output = tile.ArenaOffset + op.Arg(3);
        for (int r = 0; r < rows; r++)
        {
            int y0 = PatchTiling.PartStart(y.H, rows, r), y1 = PatchTiling.PartStart(y.H, rows, r + 1);
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
                    if (k == 0)
                        PatchTile.Pad(_arena, x.ArenaOffset, x.C, x.H, x.W, 0, 0, x.H, x.W, iy0, iy1, ix0, ix1, x.ZeroPoint, padded);
                    else
                        PatchTile.Pad(_arena, output, x.C, x.H, x.W, sy, sx, th, tw, iy0, iy1, ix0, ix1, x.ZeroPoint, padded);
                    th = oy1 - oy0;
                    tw = ox1 - ox0;
                    RunTile(inner, x, _plan.Tensor(inner.Output), iy1 - iy0, ix1 - ix0, th, tw, padded, output);
                }
                PatchTile.Place(_arena, output, y.C, th, tw, y.ArenaOffset, y.H, y.W, y0, x0);
            }
        }
    }

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
