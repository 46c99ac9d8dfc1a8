namespace TinyTrain.Nano;

using TinyTrain.Runtime.Kernels;
using TinyTrain.Runtime.Plans;

// Trained slices (OpFlags.WeightsSliced) on the nanoFramework build: the shared parts are src/Runtime/Kernels/
// SlicedWeights.cs (linked); only the forward loop is repeated here, because it calls the reference conv kernel where
// src/Runtime's Executor.Sliced.cs calls the dispatching one. Bit for bit the same (tests/Nano.Tests).
public sealed partial class NanoExecutor
{
    // InitParamsRows: the first sliceBytes of each row, packed.
    private void InitRows(OpInfo op) =>
        SlicedWeights.InitRows(_image, _constants + (int)op.Weights, _params, op.Arg(3), op.Arg(0), op.Arg(1), op.Arg(2));

    // Row c of the whole weight in the row buffer; returns its params offset.
    private int AssembleRow(int slice, int wholeConstant, int inC, int trainChannels, int c) =>
        SlicedWeights.AssembleRow(_params, slice, _image, _constants + wholeConstant, inC, trainChannels, c);

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
            Conv2D.RunReference(p, _arena, x.ArenaOffset, _params, row, bBuffer, bias < 0 ? -1 : bias + 4 * c, _image, mult + 4 * c, shift + 4 * c,
                _arena, y.ArenaOffset + c * plane, mask < 0 ? null : _arena, mask < 0 ? 0 : mask + c * plane / 8, mask < 0 ? 0 : op.Arg(6));
        }
    }

    private void SlicedBackwardInput(OpInfo op, TensorInfo dy, TensorInfo dx) =>
        SlicedWeights.BackwardInput(_arena, dy.ArenaOffset, dy.C, dx.ArenaOffset, dx.C, dx.H * dx.W, _params, (int)op.Weights, _image,
            _constants + op.Arg(5), op.Arg(4), Const(op.Multiplier));

    private void SlicedUpdate(in ConvParams whole, TensorInfo x, int dyOffset, int w, byte[] bBuffer, int bias, int scales, int trainChannels, in UpdateRule rule, int state) =>
        SlicedWeights.Update(whole, _arena, x.ArenaOffset, dyOffset, _params, w, bBuffer, bias, _image, scales, x.Scale, trainChannels, rule, _state, state, ref _rng);
}
