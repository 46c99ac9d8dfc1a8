namespace TinyTrain.Runtime.Execution;

using TinyTrain.Runtime.Kernels;
using TinyTrain.Runtime.Plans;

// Trained slices (OpFlags.WeightsSliced): a 1x1 conv that trains only its first trainChannels input channels keeps
// only those columns writable in the params region (OutC rows of trainChannels bytes); the frozen columns are read
// from the plan's constants. Reads run one output channel at a time on the row assembled in the row buffer (the
// params region's last InC bytes); each output channel's int8 result, each float sum and each random draw is
// exactly the whole kernel's, in the whole kernel's order, so the results are bit for bit those of the whole weight.
public sealed partial class Executor
{
    // InitParamsRows: the first sliceBytes of each row, packed.
    private void InitRows(OpInfo op)
    {
        int rows = op.Arg(0), rowBytes = op.Arg(1), sliceBytes = op.Arg(2), to = op.Arg(3);
        int from = _constants + (int)op.Weights;
        for (int r = 0; r < rows; r++)
            Array.Copy(_image, from + r * rowBytes, _params, to + r * sliceBytes, sliceBytes);
    }

    // Row c of the whole weight (inC bytes) in the row buffer: the trained columns from params, the rest from Flash.
    // Returns the row buffer's params offset.
    private int AssembleRow(int slice, int wholeConstant, int inC, int trainChannels, int c)
    {
        int buffer = _params.Length - inC;
        Array.Copy(_params, slice + c * trainChannels, _params, buffer, trainChannels);
        Array.Copy(_image, _constants + wholeConstant + c * inC + trainChannels, _params, buffer + trainChannels, inC - trainChannels);
        return buffer;
    }

    // Conv2D, one output channel at a time (its mask plane starts on a byte: the loader checks OH * OW % 8 == 0).
    private void SlicedForward(OpInfo op, TensorInfo x, TensorInfo y)
    {
        OpFlags flags = op.Flags;
        byte[] bBuffer = (flags & OpFlags.BiasInParams) != 0 ? _params : _image;
        int w = (int)op.Weights, bias = Ref(op.Bias, flags, OpFlags.BiasInParams);
        int mult = Const(op.Multiplier), shift = Const(op.Shift), mask = MaskOffset(op), plane = y.H * y.W;
        var p = new ConvParams
        {
            InC = x.C, H = x.H, W = x.W, OutC = 1, OH = y.H, OW = y.W,
            Kernel = 1, Stride = 1, Pad = 0, Groups = 1,
            InputZeroPoint = x.ZeroPoint, OutputZeroPoint = y.ZeroPoint, ActMin = op.Arg(4), ActMax = op.Arg(5),
        };
        for (int c = 0; c < y.C; c++)
        {
            int row = AssembleRow(w, op.Arg(8), x.C, op.Arg(7), c);
            Conv2D.Run(p, _arena, x.ArenaOffset, _params, row, bBuffer, bias < 0 ? -1 : bias + 4 * c, _image, mult + 4 * c, shift + 4 * c,
                _arena, y.ArenaOffset + c * plane, mask < 0 ? null : _arena, mask < 0 ? 0 : mask + c * plane / 8, mask < 0 ? 0 : op.Arg(6));
        }
    }

    // Conv2DBackwardInput (1x1, no Accumulate): row c's term of every dx sum, over c ascending as the whole kernel sums.
    private void SlicedBackwardInput(OpInfo op, TensorInfo dy, TensorInfo dx)
    {
        int w = (int)op.Weights, scales = Const(op.Multiplier), plane = dx.H * dx.W;
        for (int c = 0; c < dy.C; c++)
        {
            int row = AssembleRow(w, op.Arg(5), dx.C, op.Arg(4), c);
            ChannelGradient.Row(_arena, dy.ArenaOffset + 4 * c * plane, plane, _params, row - c * dx.C, dx.C, c, _image, scales, _arena, dx.ArenaOffset, c == 0);
        }
    }

    // Conv2DUpdate: for a 1x1 conv (one group, stride 1, unpadded) the update reads only input channels below
    // trainChannels, the first planes of x, so it is the kernel on x's first trainChannels channels with the slice
    // as the whole weight: the same gradients, draws and momentum entries, in the same order.
    private void SlicedUpdate(in ConvParams whole, TensorInfo x, int dyOffset, int w, byte[] bBuffer, int bias, int scales, int trainChannels, in UpdateRule rule, int state)
    {
        ConvParams p = whole;
        p.InC = trainChannels;
        Conv2D.Update(p, _arena, x.ArenaOffset, _arena, dyOffset, _params, w, bBuffer, bias, _image, scales, x.Scale, trainChannels, rule, _state, state, ref _rng);
    }
}
