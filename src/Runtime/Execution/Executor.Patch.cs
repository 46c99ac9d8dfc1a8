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
                        Pad(x.ArenaOffset, x.C, x.H, x.W, 0, 0, x.H, x.W, iy0, iy1, ix0, ix1, x.ZeroPoint, padded);
                    else
                        Pad(output, x.C, x.H, x.W, sy, sx, th, tw, iy0, iy1, ix0, ix1, x.ZeroPoint, padded);
                    th = oy1 - oy0;
                    tw = ox1 - ox0;
                    RunTile(inner, x, _plan.Tensor(inner.Output), iy1 - iy0, ix1 - ix0, th, tw, padded, output);
                }
                for (int ch = 0; ch < y.C; ch++)
                    for (int row = 0; row < th; row++)
                        Array.Copy(_arena, output + (ch * th + row) * tw, _arena, y.ArenaOffset + (ch * y.H + y0 + row) * y.W + x0, tw);
            }
        }
    }

    // Copies rows [iy0, iy1) x columns [ix0, ix1) of a (C, H, W) tensor, of which the source holds the
    // (C, sh, sw) block at (sy, sx), into a (C, iy1 - iy0, ix1 - ix0) tile at dst; outside [0, H) x [0, W)
    // the tile holds the zero point.
    private void Pad(int src, int channels, int h, int w, int sy, int sx, int sh, int sw, int iy0, int iy1, int ix0, int ix1, int zeroPoint, int dst)
    {
        byte zero = (byte)(sbyte)zeroPoint;
        int width = ix1 - ix0;
        int left = ix0 < 0 ? -ix0 : 0, right = ix1 > w ? ix1 - w : 0, inside = width - left - right;
        for (int ch = 0; ch < channels; ch++)
            for (int yy = iy0; yy < iy1; yy++)
            {
                int to = dst + (ch * (iy1 - iy0) + (yy - iy0)) * width;
                if (yy < 0 || yy >= h)
                {
                    Array.Fill(_arena, zero, to, width);
                    continue;
                }
                if (left > 0) Array.Fill(_arena, zero, to, left);
                Array.Copy(_arena, src + (ch * sh + (yy - sy)) * sw + (ix0 + left - sx), _arena, to + left, inside);
                if (right > 0) Array.Fill(_arena, zero, to + left + inside, right);
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
