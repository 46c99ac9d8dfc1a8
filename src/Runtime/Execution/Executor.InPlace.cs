namespace TinyTrain.Runtime.Execution;

using TinyTrain.Runtime.Kernels;

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
}
