using System.Runtime.Intrinsics;
using TinyTrain.Runtime.Kernels;

namespace TinyTrain.Runtime.Tests.Kernels;

public class QuantTests
{
    private const int Half = 1 << 30; // 0.5 in Q31

    [Fact]
    public void ReadInt32_IsLittleEndian()
    {
        byte[] b = [0xFF, 0x78, 0x56, 0x34, 0x12, 0x80];
        Assert.Equal(0x12345678, Quant.ReadInt32(b, 1));
        Assert.Equal(0x345678FF, Quant.ReadInt32(b, 0));
        Assert.Equal(unchecked((int)0x80123456), Quant.ReadInt32(b, 2));
    }

    [Fact]
    public void SaturatingRoundingDoublingHighMul_EdgeCases()
    {
        // The one product that does not fit saturates.
        Assert.Equal(int.MaxValue, Quant.SaturatingRoundingDoublingHighMul(int.MinValue, int.MinValue));
        // (2^31 - 1)^2 / 2^31 = 2^31 - 2 + 2^-31.
        Assert.Equal(int.MaxValue - 1, Quant.SaturatingRoundingDoublingHighMul(int.MaxValue, int.MaxValue));
        // -2^31 (2^31 - 1) / 2^31 = -(2^31 - 1).
        Assert.Equal(-int.MaxValue, Quant.SaturatingRoundingDoublingHighMul(int.MinValue, int.MaxValue));
        Assert.Equal(0, Quant.SaturatingRoundingDoublingHighMul(0, int.MinValue));
        // int.MinValue by -1/2^31 ... by 0.5: exactly -2^30.
        Assert.Equal(-Half, Quant.SaturatingRoundingDoublingHighMul(int.MinValue, Half));
    }

    [Theory]
    // x * 0.5: ties go toward +infinity (gemmlowp's nudge 1 - 2^30 for negative products).
    [InlineData(4, 2)]
    [InlineData(5, 3)]      // 2.5 -> 3
    [InlineData(-5, -2)]    // -2.5 -> -2
    [InlineData(-6, -3)]
    [InlineData(-7, -3)]    // -3.5 -> -3
    [InlineData(1, 1)]      // 0.5 -> 1
    [InlineData(-1, 0)]     // -0.5 -> 0
    public void SaturatingRoundingDoublingHighMul_ByHalf(int x, int expected)
    {
        Assert.Equal(expected, Quant.SaturatingRoundingDoublingHighMul(x, Half));
    }

    [Theory]
    // x / 2^e rounded half away from zero.
    [InlineData(5, 1, 3)]       // 2.5
    [InlineData(-5, 1, -3)]     // -2.5
    [InlineData(6, 2, 2)]       // 1.5
    [InlineData(-6, 2, -2)]     // -1.5
    [InlineData(-7, 2, -2)]     // -1.75
    [InlineData(-9, 2, -2)]     // -2.25
    [InlineData(-10, 2, -3)]    // -2.5
    [InlineData(123, 0, 123)]
    [InlineData(int.MinValue, 31, -1)]
    [InlineData(int.MaxValue, 31, 1)]
    [InlineData(-1073741824, 31, -1)] // -0.5 -> -1
    [InlineData(1073741824, 31, 1)]   // 0.5 -> 1
    public void RoundingDivideByPOT_RoundsHalfAwayFromZero(int x, int exponent, int expected)
    {
        Assert.Equal(expected, Quant.RoundingDivideByPOT(x, exponent));
    }

    [Fact]
    public void QuantizeMultiplier_MatchesTfLiteExamples()
    {
        // tensorflow/lite/kernels/internal/quantization_util_test.cc
        Assert.Equal((1073741824, -1), KernelTest.QuantizeMultiplier(0.25));
        Assert.Equal((1073741824, 0), KernelTest.QuantizeMultiplier(0.5));
        Assert.Equal((1610612736, 0), KernelTest.QuantizeMultiplier(0.75));
        Assert.Equal((2147483646, 0), KernelTest.QuantizeMultiplier(1 - 1e-9));
        Assert.Equal((1342177280, 1), KernelTest.QuantizeMultiplier(1.25));
        Assert.Equal((1879048192, 1), KernelTest.QuantizeMultiplier(1.75));
        Assert.Equal((1073741824, 2), KernelTest.QuantizeMultiplier(2 - 1e-11));
        Assert.Equal((1073741824, -30), KernelTest.QuantizeMultiplier(Math.ScaleB(1.0, -31)));
        Assert.Equal((0, 0), KernelTest.QuantizeMultiplier(Math.ScaleB(1.0, -33)));
    }

    [Theory]
    // tensorflow/lite/kernels/internal/quantization_util_test.cc, MultiplyByQuantizedMultiplierInt32 (double rounding).
    [InlineData(0, 0.1, 0)]
    [InlineData(1, 0.0, 0)]
    [InlineData(10000, 0.00097656, 10)]
    [InlineData(-10000, 0.00097656, -10)]
    [InlineData(int.MinValue, 0.00001, -21475)]
    [InlineData(int.MaxValue, 0.00001, 21475)]
    [InlineData(10000, -0.00097656, -10)]
    [InlineData(-10000, -0.00097656, 10)]
    [InlineData(int.MinValue, -0.00001, 21475)]
    [InlineData(int.MaxValue, -0.00001, -21475)]
    public void MultiplyByQuantizedMultiplier_MatchesTfLiteExamples(int x, double real, int expected)
    {
        var (m, shift) = KernelTest.QuantizeMultiplier(real);
        Assert.Equal(expected, Quant.MultiplyByQuantizedMultiplier(x, m, shift));
    }

    [Fact]
    public void MultiplyByQuantizedMultiplier_MaximumInputs()
    {
        // TFLite: round(x * M / 2^(31 - shift)) for x = M = int.MaxValue, shift = -3, and its negation.
        int expected = (int)Math.Round((double)int.MaxValue * int.MaxValue / Math.ScaleB(1.0, 34), MidpointRounding.AwayFromZero);
        Assert.Equal(expected, Quant.MultiplyByQuantizedMultiplier(int.MaxValue, int.MaxValue, -3));
        Assert.Equal(-expected, Quant.MultiplyByQuantizedMultiplier(-int.MaxValue, int.MaxValue, -3));
    }

    [Theory]
    // Worked by hand: M = 2^30 is 0.5, so (M, 1) is x1.0 and (M, -3) is x1/16 (0.5 then /8).
    [InlineData(1000, 1, 1000)]
    [InlineData(1000, 0, 500)]
    [InlineData(1000, -3, 63)]     // 500 / 8 = 62.5 -> 63
    [InlineData(-1000, -3, -63)]   // -500 / 8 = -62.5 -> -63
    [InlineData(-999, -3, -62)]    // SRDHM: -499.5 -> -499; -499 / 8 = -62.375 -> -62
    [InlineData(3, 2, 6)]          // left shift 2 then x0.5
    public void MultiplyByQuantizedMultiplier_HandWorked(int x, int shift, int expected)
    {
        Assert.Equal(expected, Quant.MultiplyByQuantizedMultiplier(x, Half, shift));
    }

    [Fact]
    public void LaneRequantization_MatchesScalar_BitForBit()
    {
        var rng = new Random(1234);
        int[] edges = [int.MinValue, int.MinValue + 1, -Half - 1, -Half, -Half + 1, -65536, -257, -1, 0, 1, 255, 65535, Half - 1, Half, Half + 1, int.MaxValue - 1, int.MaxValue];
        var xs = new int[8];
        for (int trial = 0; trial < 60000; trial++)
        {
            int multiplier = trial % 7 == 0 ? edges[rng.Next(edges.Length)] : KernelTest.Multiplier(rng, anyInt: true);
            int shift = trial % 11 == 0 ? rng.Next(-40, 40) : rng.Next(-31, 8);
            for (int i = 0; i < xs.Length; i++)
            {
                xs[i] = rng.Next(3) switch
                {
                    0 => edges[rng.Next(edges.Length)],
                    1 => rng.Next(-100000, 100000),
                    _ => rng.Next(int.MinValue, int.MaxValue),
                };
            }
            Vector256<int> v256 = Lanes256.MultiplyByQuantizedMultiplier(Vector256.Create(xs), multiplier, shift);
            Vector128<int> v128a = Lanes128.MultiplyByQuantizedMultiplier(Vector128.Create(xs, 0), multiplier, shift);
            Vector128<int> v128b = Lanes128.MultiplyByQuantizedMultiplier(Vector128.Create(xs, 4), multiplier, shift);
            for (int i = 0; i < xs.Length; i++)
            {
                int expected = Quant.MultiplyByQuantizedMultiplier(xs[i], multiplier, shift);
                int got128 = i < 4 ? v128a.GetElement(i) : v128b.GetElement(i - 4);
                if (v256.GetElement(i) != expected || got128 != expected)
                {
                    Assert.Fail($"x={xs[i]} M={multiplier} shift={shift}: scalar {expected}, Vector256 {v256.GetElement(i)}, Vector128 {got128}");
                }
            }
        }
    }

    [Fact]
    public void LaneInt8LoadsAndStores_RoundTrip()
    {
        byte[] src = KernelTest.Int8(-128, -1, 0, 1, 127, 5, -7, 100, 9, -9, 11, -11, 13, -13, 15, -15);
        Vector256<int> v = Lanes256.LoadInt8(ref src[0], 0);
        Assert.Equal(new[] { -128, -1, 0, 1, 127, 5, -7, 100 }, KernelTest.ReadInt8(src, 0, 8));
        for (int i = 0; i < 8; i++)
        {
            Assert.Equal((sbyte)src[i], v.GetElement(i));
        }
        Lanes256.LoadInt8Pairs(ref src[0], 0, out Vector256<int> even, out Vector256<int> odd);
        Lanes128.LoadInt8Pairs(ref src[0], 0, out Vector128<int> even4, out Vector128<int> odd4);
        for (int i = 0; i < 8; i++)
        {
            Assert.Equal((sbyte)src[2 * i], even.GetElement(i));
            Assert.Equal((sbyte)src[2 * i + 1], odd.GetElement(i));
        }
        for (int i = 0; i < 4; i++)
        {
            Assert.Equal((sbyte)src[2 * i], even4.GetElement(i));
            Assert.Equal((sbyte)src[2 * i + 1], odd4.GetElement(i));
        }
        var dst = new byte[12];
        Lanes256.StoreInt8(v, ref dst[0], 2);
        Lanes128.StoreInt8Partial(Lanes128.LoadInt8(ref src[0], 8), ref dst[0], 10, 2);
        Assert.Equal(new[] { 0, 0, -128, -1, 0, 1, 127, 5, -7, 100, 9, -9 }, KernelTest.ReadInt8(dst, 0, 12));
    }
}
