using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

// The lane-wise requantization is tested directly against Quant over edge values.
[assembly: InternalsVisibleTo("TinyTrain.Runtime.Tests")]

namespace TinyTrain.Runtime.Kernels;

/// <summary>
/// Switches for the kernels' dispatch, so tests and benchmarks can run the reference or a given vector
/// width on the same machine. Not for production tuning: both settings give identical results.
/// </summary>
public static class KernelMode
{
    /// <summary>When false, every <c>Run</c> takes the scalar reference path.</summary>
    public static bool UseFast { get; set; } = true;

    /// <summary>When false, the fast paths use Vector128 even where Vector256 is accelerated.</summary>
    public static bool UseVector256 { get; set; } = true;
}

internal static class SimdWidth
{
    /// <summary>Whether a fast path runs its Vector256 instantiation (else Vector128).</summary>
    public static bool Wide => Vector256.IsHardwareAccelerated && KernelMode.UseVector256;

    /// <summary>Whether <c>Run</c> takes the fast path.</summary>
    public static bool Fast => KernelMode.UseFast && Vector128.IsHardwareAccelerated;
}
