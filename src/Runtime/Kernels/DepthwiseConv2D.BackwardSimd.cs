using System.Runtime.Intrinsics;

namespace TinyTrain.Runtime.Kernels;

/// <summary>
/// DepthwiseConv2D.BackwardInput's fast path: Conv2D's (see Conv2D.BackwardSimd.cs) with one channel per group,
/// bit for bit the depthwise reference, whose single term per element is acc * s_w without a leading +0.
/// </summary>
public static partial class DepthwiseConv2D
{
    // BackwardInput dispatches to the fast path or to the reference (in DepthwiseConv2D.Backward.cs); it lives here, beside
    // the fast path, so that the portable files alone compile for nanoFramework (which calls BackwardInputReference).
    /// <summary>
    /// dx = the transposed depthwise convolution of dy with the dequantized weights:
    /// dx[c, iy, ix] = s_w[c] Σ over taps with iy = oy*Stride - Pad + ky (likewise x) of dy[c, oy, ox] * w_q[c, ky, kx].
    ///   dy (C, OH, OW) float32, w (C, 1, K, K) int8, scales (C) float32, dx (C, H, W) float32.
    /// accumulate: dx += the result instead of dx = it. Reads only the shape fields of <paramref name="p"/>.
    /// </summary>
    public static void BackwardInput(in DepthwiseParams p, byte[] dy, int dyOff, byte[] w, int wOff, byte[] scales, int scaleOff, byte[] dx, int dxOff, bool accumulate)
    {
        CheckBackwardInput(p, dy, dyOff, w, wOff, scales, scaleOff, dx, dxOff);
        if (SimdWidth.Fast && BackwardInputHasFastPath(p))
        {
            BackwardInputSimdCore(p, dy, dyOff, w, wOff, scales, scaleOff, dx, dxOff, accumulate);
        }
        else
        {
            BackwardInputReferenceCore(p, dy, dyOff, w, wOff, scales, scaleOff, dx, dxOff, accumulate);
        }
    }

    /// <summary>
    /// The fast path of <see cref="BackwardInput"/> (vector width per <see cref="KernelMode.UseVector256"/>), whatever
    /// <see cref="KernelMode.UseFast"/> says; the reference where there is none (no vector hardware, a big-endian host, Kernel over 32).
    /// </summary>
    public static void BackwardInputSimd(in DepthwiseParams p, byte[] dy, int dyOff, byte[] w, int wOff, byte[] scales, int scaleOff, byte[] dx, int dxOff, bool accumulate)
    {
        CheckBackwardInput(p, dy, dyOff, w, wOff, scales, scaleOff, dx, dxOff);
        if (BackwardInputHasFastPath(p))
        {
            BackwardInputSimdCore(p, dy, dyOff, w, wOff, scales, scaleOff, dx, dxOff, accumulate);
        }
        else
        {
            BackwardInputReferenceCore(p, dy, dyOff, w, wOff, scales, scaleOff, dx, dxOff, accumulate);
        }
    }

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
