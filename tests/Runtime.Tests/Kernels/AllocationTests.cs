using TinyTrain.Runtime.Kernels;

namespace TinyTrain.Runtime.Tests.Kernels;

/// <summary>The Step phase allocates nothing: every kernel, on every path, 100 calls, zero bytes.</summary>
[Collection(KernelModeCollection.Name)]
public class AllocationTests
{
    [Theory]
    [InlineData(KernelPath.RunFast)]
    [InlineData(KernelPath.Simd128)]
    [InlineData(KernelPath.RunReference)]
    public void Kernels_AllocateNothing(KernelPath path)
    {
        var rng = new Random(1);
        byte[] arena = KernelTest.RandomBytes(rng, 64 * 1024);
        byte[] image = new byte[64 * 1024];
        KernelTest.FillWeights(rng, image, 0, image.Length);
        byte[] consts = KernelTest.Constants(rng, 64, withBias: true, wideBias: false, anyMultiplier: false, out int b, out int m, out int s);

        var pointwise = new ConvParams { InC = 16, H = 16, W = 16, OutC = 24, OH = 16, OW = 16, Kernel = 1, Stride = 1, Groups = 1, ActMin = -128, ActMax = 127 };
        var dense = new ConvParams { InC = 3, H = 32, W = 32, OutC = 16, OH = 16, OW = 16, Kernel = 3, Stride = 2, Pad = 1, Groups = 1, InputZeroPoint = 5, ActMin = -128, ActMax = 127 };
        var depthwise = new DepthwiseParams { C = 16, H = 32, W = 32, OH = 32, OW = 32, Kernel = 3, Stride = 1, Pad = 1, InputZeroPoint = -3, ActMin = 0, ActMax = 127 };
        var fc = new FullyConnectedParams { In = 1280, Out = 10, InputZeroPoint = 7, ActMin = -128, ActMax = 127 };
        var add = new AddParams
        {
            Count = 4000,
            Input0Multiplier = 1 << 30,
            Input1Multiplier = 1 << 30,
            OutputMultiplier = 1 << 30,
            OutputShift = -19,
            LeftShift = 20,
            ActMin = -128,
            ActMax = 127,
        };
        var pool = new PoolParams { C = 8, H = 16, W = 16, OH = 8, OW = 8, Kernel = 2, Stride = 2, ActMin = -128, ActMax = 127 };
        var global = new PoolParams { C = 64, H = 8, W = 8, OH = 1, OW = 1, ActMin = -128, ActMax = 127 };

        void Step()
        {
            bool simd = path == KernelPath.Simd128;
            if (simd)
            {
                Conv2D.RunSimd(pointwise, arena, 0, image, 0, consts, b, consts, m, s, arena, 32768);
                Conv2D.RunSimd(dense, arena, 0, image, 0, consts, b, consts, m, s, arena, 32768);
                DepthwiseConv2D.RunSimd(depthwise, arena, 0, image, 0, consts, b, consts, m, s, arena, 32768);
                FullyConnected.RunSimd(fc, arena, 0, image, 0, consts, b, consts, m, s, arena, 32768);
                Add.RunSimd(add, arena, 0, arena, 8000, arena, 0);
                AvgPool.RunSimd(pool, arena, 0, arena, 32768);
                GlobalAvgPool.RunSimd(global, arena, 0, arena, 32768);
            }
            else
            {
                Conv2D.Run(pointwise, arena, 0, image, 0, consts, b, consts, m, s, arena, 32768);
                Conv2D.Run(dense, arena, 0, image, 0, consts, b, consts, m, s, arena, 32768);
                DepthwiseConv2D.Run(depthwise, arena, 0, image, 0, consts, b, consts, m, s, arena, 32768);
                FullyConnected.Run(fc, arena, 0, image, 0, consts, b, consts, m, s, arena, 32768);
                Add.Run(add, arena, 0, arena, 8000, arena, 0);
                AvgPool.Run(pool, arena, 0, arena, 32768);
                GlobalAvgPool.Run(global, arena, 0, arena, 32768);
            }
        }

        using (KernelTest.Mode(path))
        {
            Step(); // JIT and type loading happen here, not in the measured calls
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 100; i++)
            {
                Step();
            }
            long after = GC.GetAllocatedBytesForCurrentThread();
            Assert.Equal(before, after);
        }
    }
}
