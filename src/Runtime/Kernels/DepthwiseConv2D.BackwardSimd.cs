using System.Runtime.Intrinsics;

namespace TinyTrain.Runtime.Kernels;

/// <summary>
/// DepthwiseConv2D.BackwardInput's fast path: Conv2D's (see Conv2D.BackwardSimd.cs) with one channel per group,
/// bit for bit the depthwise reference, whose single term per element is acc * s_w without a leading +0.
/// </summary>
public static partial class DepthwiseConv2D
{
    private static bool BackwardInputHasFastPath(in DepthwiseParams p) =>
        Vector128.IsHardwareAccelerated && BitConverter.IsLittleEndian && p.Kernel <= Conv2D.BackwardMaxKernel;

    private static void BackwardInputSimdCore(in DepthwiseParams p, byte[] dy, int dyOff, byte[] w, int wOff, byte[] scales, int scaleOff, byte[] dx, int dxOff, bool accumulate)
    {
        // w (C, 1, K, K) is the grouped conv's (OutC, InC/Groups, K, K) with Groups = InC = OutC = C.
        var conv = new ConvParams { InC = p.C, H = p.H, W = p.W, OutC = p.C, OH = p.OH, OW = p.OW, Kernel = p.Kernel, Stride = p.Stride, Pad = p.Pad, Groups = p.C };
        if (SimdWidth.Wide)
        {
            Conv2D.BackwardInputLanes<Vector256<float>, GradientLanes256>(conv, dy, dyOff, w, wOff, scales, scaleOff, dx, dxOff, accumulate, depthwise: true);
        }
        else
        {
            Conv2D.BackwardInputLanes<Vector128<float>, GradientLanes128>(conv, dy, dyOff, w, wOff, scales, scaleOff, dx, dxOff, accumulate, depthwise: true);
        }
    }
}
