namespace TinyTrain.Runtime.Execution;

using TinyTrain.Runtime.Kernels;
using TinyTrain.Runtime.Plans;

// In-place depthwise convolutions: a depthwise output channel depends on its input channel only, so
// with the output placed one channel plane below the input (checked at load), running the kernel one
// channel at a time writes each output plane over the input plane read just before: the output costs
// one plane more than the input instead of a second tensor. Each call is the ordinary kernel on one
// channel, so the results are bit for bit those of the whole call.
public sealed partial class Executor
{
    private void DepthwiseInPlace(DepthwiseParams p, int x, byte[] wBuffer, int w, byte[] bBuffer, int bias, int mult, int shift, int y)
    {
        int channels = p.C, plane = p.H * p.W, outPlane = p.OH * p.OW, taps = p.Kernel * p.Kernel;
        p.C = 1;
        for (int c = 0; c < channels; c++)
            DepthwiseConv2D.Run(p, _arena, x + c * plane, wBuffer, w + c * taps, bBuffer, bias < 0 ? -1 : bias + 4 * c, _image,
                mult + 4 * c, shift + 4 * c, _arena, y + c * outPlane, null, -1, 0);
    }

    private void DepthwiseBackwardInPlace(DepthwiseParams p, int dy, byte[] wBuffer, int w, int scales, int dx)
    {
        int channels = p.C, plane = p.H * p.W, outPlane = p.OH * p.OW, taps = p.Kernel * p.Kernel;
        p.C = 1;
        for (int c = 0; c < channels; c++)
            DepthwiseConv2D.BackwardInput(p, _arena, dy + 4 * c * outPlane, wBuffer, w + c * taps, _image, scales + 4 * c, _arena, dx + 4 * c * plane, false);
    }

    // A 1x1 conv over its dying input, pixel by pixel (OpKind.PointwiseInPlace): output byte (o, i) lies over input byte
    // (o, i) of the same pixel, which was gathered into the scratch before the kernel ran on that pixel.
    private void PointwiseInPlace(OpInfo op)
    {
        TensorInfo x = _plan.Tensor(op.Input0), y = _plan.Tensor(op.Output);
        OpFlags flags = op.Flags;
        byte[] wBuffer = (flags & OpFlags.WeightsInParams) != 0 ? _params : _image;
        byte[] bBuffer = (flags & OpFlags.BiasInParams) != 0 ? _params : _image;
        int w = Ref(op.Weights, flags, OpFlags.WeightsInParams), bias = Ref(op.Bias, flags, OpFlags.BiasInParams);
        int mult = Const(op.Multiplier), shift = Const(op.Shift);
        var p = new ConvParams
        {
            InC = x.C, H = 1, W = 1, OutC = y.C, OH = 1, OW = 1, Kernel = 1, Stride = 1, Pad = 0, Groups = 1,
            InputZeroPoint = x.ZeroPoint, OutputZeroPoint = y.ZeroPoint, ActMin = op.Arg(4), ActMax = op.Arg(5),
        };
        int plane = x.H * x.W, pixel = _plan.Tensor(op.Scratch).ArenaOffset, result = pixel + x.C;
        for (int i = 0; i < plane; i++)
        {
            for (int c = 0; c < x.C; c++) _arena[pixel + c] = _arena[x.ArenaOffset + c * plane + i];
            Conv2D.Run(p, _arena, pixel, wBuffer, w, bBuffer, bias, _image, mult, shift, _arena, result, null, -1, 0);
            for (int o = 0; o < y.C; o++) _arena[y.ArenaOffset + o * plane + i] = _arena[result + o];
        }
    }
}
