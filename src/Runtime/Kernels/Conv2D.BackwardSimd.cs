using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace TinyTrain.Runtime.Kernels;

/// <summary>
/// Conv2D.BackwardInput's fast path, bit for bit the reference: vectors run across dx columns of one row, each
/// lane accumulating its own element with exactly the reference's products, in its (oc, ky, kx) order. For
/// stride s the columns are split by phase r = (ix + Pad) mod s, so every lane of a vector has the same valid
/// taps kx = r + m*s, reading dy columns ox = q - m that are contiguous across lanes (q = (ix + Pad) / s).
/// Lanes whose tap falls outside dy add a zero product instead of skipping it; that is exact because the
/// reference's sums start at +0 and so are never -0, and x + (±0) = x for every x but -0.
/// </summary>
public static partial class Conv2D
{
    // BackwardInput dispatches to the fast path or to the reference (in Conv2D.Backward.cs); it lives here, beside
    // the fast path, so that the portable files alone compile for nanoFramework (which calls BackwardInputReference).
    /// <summary>
    /// dx = the transposed convolution of dy with the dequantized weights (the exact adjoint of the forward's
    /// linear part): dx[ic, iy, ix] = Σ over oc in ic's group, taps with iy = oy*Stride - Pad + ky (likewise x),
    /// of dy[oc, oy, ox] * w_q[oc, ic % (InC/Groups), ky, kx] * s_w[oc]. Padded taps contribute nothing.
    ///   dy (OutC, OH, OW) float32, w (OutC, InC/Groups, K, K) int8, scales (OutC) float32, dx (InC, H, W) float32.
    /// accumulate: dx += the result instead of dx = it. Reads only the shape fields of <paramref name="p"/>.
    /// </summary>
    public static void BackwardInput(in ConvParams p, byte[] dy, int dyOff, byte[] w, int wOff, byte[] scales, int scaleOff, byte[] dx, int dxOff, bool accumulate)
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
    public static void BackwardInputSimd(in ConvParams p, byte[] dy, int dyOff, byte[] w, int wOff, byte[] scales, int scaleOff, byte[] dx, int dxOff, bool accumulate)
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

    // Bounds the stackalloc'd per-tap tables; larger kernels run the reference.
    internal const int BackwardMaxKernel = 32;

    private static bool BackwardInputHasFastPath(in ConvParams p) =>
        Vector128.IsHardwareAccelerated && BitConverter.IsLittleEndian && p.Kernel <= BackwardMaxKernel;

    private static void BackwardInputSimdCore(in ConvParams p, byte[] dy, int dyOff, byte[] w, int wOff, byte[] scales, int scaleOff, byte[] dx, int dxOff, bool accumulate)
    {
        if (SimdWidth.Wide)
        {
            BackwardInputLanes<Vector256<float>, GradientLanes256>(p, dy, dyOff, w, wOff, scales, scaleOff, dx, dxOff, accumulate, depthwise: false);
        }
        else
        {
            BackwardInputLanes<Vector128<float>, GradientLanes128>(p, dy, dyOff, w, wOff, scales, scaleOff, dx, dxOff, accumulate, depthwise: false);
        }
    }

    // dy (OutC, OH, OW) float32, w (OutC, InC/Groups, K, K) int8, scales (OutC) float32, dx (InC, H, W) float32; all validated.
    // depthwise: DepthwiseConv2D's reference, whose one term per element is acc * s_w itself, not +0 + acc * s_w
    // (they differ when that product is -0).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void BackwardInputLanes<TV, TL>(in ConvParams p, byte[] dy, int dyOff, byte[] w, int wOff, byte[] scales, int scaleOff, byte[] dx, int dxOff, bool accumulate, bool depthwise)
        where TV : unmanaged
        where TL : struct, IGradientLanes<TV>
    {
        int k = p.Kernel, s = p.Stride, pad = p.Pad, ow = p.OW;
        int lanes = TL.Count;
        int icPerGroup = p.InC / p.Groups;
        int ocPerGroup = p.OutC / p.Groups;
        int planeBytes = 4 * p.OH * ow;
        ref byte dyRef = ref MemoryMarshal.GetArrayDataReference(dy);
        ref byte wRef = ref MemoryMarshal.GetArrayDataReference(w);
        ref byte scaleRef = ref MemoryMarshal.GetArrayDataReference(scales);
        ref byte dxRef = ref MemoryMarshal.GetArrayDataReference(dx);

        // Per row: the valid ky in ascending order and the byte offset of their dy row. Per chunk and tap m:
        // whether every used lane reads inside its dy row (0) or some need masking (1), and the two vectors' lane masks.
        // A load that would leave the dy array is gathered lane by lane instead.
        Span<int> kys = stackalloc int[BackwardMaxKernel];
        Span<int> rowBytes = stackalloc int[BackwardMaxKernel];
        Span<int> modes = stackalloc int[BackwardMaxKernel];
        Span<TV> masks = stackalloc TV[2 * BackwardMaxKernel];
        Span<float> laneBuf = stackalloc float[2 * 16];
        ref byte laneRef = ref Unsafe.As<float, byte>(ref MemoryMarshal.GetReference(laneBuf));

        for (int ic = 0; ic < p.InC; ic++)
        {
            int group = ic / icPerGroup;
            int icInGroup = ic - group * icPerGroup;
            int ocBase = group * ocPerGroup;
            for (int iy = 0; iy < p.H; iy++)
            {
                int taps = 0;
                for (int ky = 0; ky < k; ky++)
                {
                    int ty = iy + pad - ky;
                    if (ty < 0)
                    {
                        break;
                    }
                    int oy = ty / s;
                    if (oy * s != ty || oy >= p.OH)
                    {
                        continue;
                    }
                    kys[taps] = ky;
                    rowBytes[taps] = 4 * oy * ow;
                    taps++;
                }
                int dxRow = dxOff + 4 * (ic * p.H + iy) * p.W;

                for (int r = 0; r < s; r++)
                {
                    // Columns ix = q*s + r - Pad for q in [qLo, qHi]; taps kx = r + m*s for m < mCount.
                    int last = p.W - 1 + pad - r;
                    if (last < 0)
                    {
                        continue;
                    }
                    int qLo = pad - r > 0 ? (pad - r + s - 1) / s : 0;
                    int qHi = last / s;
                    int mCount = r < k ? (k - 1 - r) / s + 1 : 0;
                    for (int q0 = qLo; q0 <= qHi; q0 += 2 * lanes)
                    {
                        int n = Math.Min(2 * lanes, qHi - q0 + 1);
                        bool two = n > lanes;
                        int width = two ? 2 * lanes : lanes;
                        for (int m = 0; m < mCount; m++)
                        {
                            int start = q0 - m;
                            modes[m] = start >= 0 && start + n <= ow ? 0 : 1;
                            masks[2 * m] = TL.InRange(start, ow);
                            masks[2 * m + 1] = TL.InRange(start + lanes, ow);
                        }

                        // A load of width floats at byte offset at stays inside dy when 0 <= at <= lastLoad.
                        int lastLoad = dy.Length - 4 * width;
                        TV sumA = default, sumB = default;
                        for (int o = 0; o < ocPerGroup; o++)
                        {
                            int oc = ocBase + o;
                            int plane = dyOff + oc * planeBytes;
                            int wTap = wOff + (oc * icPerGroup + icInGroup) * k * k + r;
                            TV accA = default, accB = default;
                            for (int t = 0; t < taps; t++)
                            {
                                int row = plane + rowBytes[t] + 4 * q0;
                                int wRow = wTap + kys[t] * k;
                                for (int m = 0; m < mCount; m++)
                                {
                                    TV wq = TL.Splat((sbyte)Unsafe.Add(ref wRef, wRow + m * s));
                                    int at = row - 4 * m;
                                    TV a, b = default;
                                    if (modes[m] == 0 && at <= lastLoad)
                                    {
                                        a = TL.Load(ref dyRef, at);
                                        if (two)
                                        {
                                            b = TL.Load(ref dyRef, at + 4 * lanes);
                                        }
                                    }
                                    else if (at >= 0 && at <= lastLoad)
                                    {
                                        a = TL.And(TL.Load(ref dyRef, at), masks[2 * m]);
                                        if (two)
                                        {
                                            b = TL.And(TL.Load(ref dyRef, at + 4 * lanes), masks[2 * m + 1]);
                                        }
                                    }
                                    else
                                    {
                                        int start = q0 - m;
                                        for (int j = 0; j < width; j++)
                                        {
                                            int ox = start + j;
                                            laneBuf[j] = ox >= 0 && ox < ow ? Unsafe.ReadUnaligned<float>(ref Unsafe.Add(ref dyRef, at + 4 * j)) : 0f;
                                        }
                                        a = TL.Load(ref laneRef, 0);
                                        if (two)
                                        {
                                            b = TL.Load(ref laneRef, 4 * lanes);
                                        }
                                    }
                                    accA = TL.Add(accA, TL.Multiply(a, wq));
                                    if (two)
                                    {
                                        accB = TL.Add(accB, TL.Multiply(b, wq));
                                    }
                                }
                            }
                            TV sw = TL.Splat(Unsafe.ReadUnaligned<float>(ref Unsafe.Add(ref scaleRef, scaleOff + 4 * oc)));
                            if (depthwise)
                            {
                                sumA = TL.Multiply(accA, sw);
                                sumB = TL.Multiply(accB, sw);
                                continue;
                            }
                            sumA = TL.Add(sumA, TL.Multiply(accA, sw));
                            if (two)
                            {
                                sumB = TL.Add(sumB, TL.Multiply(accB, sw));
                            }
                        }

                        int first = dxRow + 4 * (q0 * s + r - pad);
                        if (s == 1 && n == width)
                        {
                            StoreGradient<TV, TL>(ref dxRef, first, sumA, accumulate);
                            if (two)
                            {
                                StoreGradient<TV, TL>(ref dxRef, first + 4 * lanes, sumB, accumulate);
                            }
                            continue;
                        }
                        TL.Store(sumA, ref laneRef, 0);
                        if (two)
                        {
                            TL.Store(sumB, ref laneRef, 4 * lanes);
                        }
                        for (int j = 0; j < n; j++)
                        {
                            ref byte target = ref Unsafe.Add(ref dxRef, first + 4 * s * j);
                            float sum = laneBuf[j];
                            Unsafe.WriteUnaligned(ref target, accumulate ? Unsafe.ReadUnaligned<float>(ref target) + sum : sum);
                        }
                    }
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreGradient<TV, TL>(ref byte dx, int at, TV sum, bool accumulate)
        where TV : unmanaged
        where TL : struct, IGradientLanes<TV>
    {
        TL.Store(accumulate ? TL.Add(TL.Load(ref dx, at), sum) : sum, ref dx, at);
    }
}

/// <summary>
/// The float32 lane operations of the backward fast paths, one struct per width so that each kernel is written once
/// (as <see cref="ILanes{TV}"/> does for the int8 kernels). Loads and stores take a byte ref and a byte offset and check nothing.
/// Add and Multiply are the plain IEEE operations, never fused, so each lane rounds exactly as the scalar reference does.
/// </summary>
internal interface IGradientLanes<TV> where TV : unmanaged
{
    static abstract int Count { get; }

    static abstract TV Splat(float value);

    static abstract TV Load(ref byte src, int byteOffset);

    static abstract void Store(TV value, ref byte dst, int byteOffset);

    static abstract TV Add(TV a, TV b);

    static abstract TV Multiply(TV a, TV b);

    static abstract TV And(TV a, TV mask);

    /// <summary>All ones in lane j where 0 &lt;= first + j &lt; limit, else zero.</summary>
    static abstract TV InRange(int first, int limit);
}

internal struct GradientLanes256 : IGradientLanes<Vector256<float>>
{
    public static int Count => Vector256<float>.Count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Splat(float value) => Vector256.Create(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load(ref byte src, int byteOffset) => Vector256.LoadUnsafe(ref Unsafe.Add(ref src, byteOffset)).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector256<float> value, ref byte dst, int byteOffset) => value.AsByte().StoreUnsafe(ref Unsafe.Add(ref dst, byteOffset));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Multiply(Vector256<float> a, Vector256<float> b) => a * b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> And(Vector256<float> a, Vector256<float> mask) => a & mask;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> InRange(int first, int limit)
    {
        Vector256<int> index = Vector256.Create(first) + Vector256<int>.Indices;
        return (Vector256.GreaterThanOrEqual(index, Vector256<int>.Zero) & Vector256.LessThan(index, Vector256.Create(limit))).AsSingle();
    }
}

internal struct GradientLanes128 : IGradientLanes<Vector128<float>>
{
    public static int Count => Vector128<float>.Count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Splat(float value) => Vector128.Create(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Load(ref byte src, int byteOffset) => Vector128.LoadUnsafe(ref Unsafe.Add(ref src, byteOffset)).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector128<float> value, ref byte dst, int byteOffset) => value.AsByte().StoreUnsafe(ref Unsafe.Add(ref dst, byteOffset));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Add(Vector128<float> a, Vector128<float> b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Multiply(Vector128<float> a, Vector128<float> b) => a * b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> And(Vector128<float> a, Vector128<float> mask) => a & mask;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> InRange(int first, int limit)
    {
        Vector128<int> index = Vector128.Create(first) + Vector128<int>.Indices;
        return (Vector128.GreaterThanOrEqual(index, Vector128<int>.Zero) & Vector128.LessThan(index, Vector128.Create(limit))).AsSingle();
    }
}
