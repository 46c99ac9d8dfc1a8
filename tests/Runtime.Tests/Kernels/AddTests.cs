using TinyTrain.Runtime.Kernels;

namespace TinyTrain.Runtime.Tests.Kernels;

[Collection(KernelModeCollection.Name)]
public class AddTests
{
    /// <summary>Where y sits: apart from both inputs, or on top of one of them (in place).</summary>
    public enum Placement
    {
        Apart,
        OnInput0,
        OnInput1,
    }

    private sealed class Case
    {
        public AddParams P;
        public byte[] Arena = [];
        public int X0Off, X1Off, YOff;

        public void Exec(KernelPath path, byte[] arena)
        {
            switch (path)
            {
                case KernelPath.Reference:
                    Add.RunReference(P, arena, X0Off, arena, X1Off, arena, YOff);
                    break;
                case KernelPath.Simd256:
                case KernelPath.Simd128:
                    Add.RunSimd(P, arena, X0Off, arena, X1Off, arena, YOff);
                    break;
                default:
                    Add.Run(P, arena, X0Off, arena, X1Off, arena, YOff);
                    break;
            }
        }

        public override string ToString() =>
            $"Add n={P.Count} zp {P.Input0ZeroPoint}/{P.Input1ZeroPoint}/{P.OutputZeroPoint} m {P.Input0Multiplier}>>{P.Input0Shift}, {P.Input1Multiplier}>>{P.Input1Shift}, {P.OutputMultiplier}>>{P.OutputShift} at {X0Off}/{X1Off}/{YOff}";
    }

    /// <summary>TFLite's Prepare for int8 Add: inputs rescaled to twice the larger input scale, left shift 20.</summary>
    private static AddParams FromScales(double s0, int zp0, double s1, int zp1, double sy, int zpy)
    {
        const int leftShift = 20;
        double twiceMax = 2 * Math.Max(s0, s1);
        var (m0, sh0) = KernelTest.QuantizeMultiplier(s0 / twiceMax);
        var (m1, sh1) = KernelTest.QuantizeMultiplier(s1 / twiceMax);
        var (my, shy) = KernelTest.QuantizeMultiplier(twiceMax / ((1 << leftShift) * sy));
        return new AddParams
        {
            Input0ZeroPoint = zp0,
            Input0Multiplier = m0,
            Input0Shift = sh0,
            Input1ZeroPoint = zp1,
            Input1Multiplier = m1,
            Input1Shift = sh1,
            OutputZeroPoint = zpy,
            OutputMultiplier = my,
            OutputShift = shy,
            LeftShift = leftShift,
            ActMin = -128,
            ActMax = 127,
        };
    }

    private static Case Random(Random rng, int count, Placement placement)
    {
        AddParams p;
        if (rng.Next(2) == 0)
        {
            p = FromScales(0.01 + rng.NextDouble(), KernelTest.ZeroPoint(rng), 0.01 + rng.NextDouble(), KernelTest.ZeroPoint(rng),
                0.01 + 2 * rng.NextDouble(), KernelTest.ZeroPoint(rng));
        }
        else
        {
            // Arbitrary constants: overflow wraps the same way on every path.
            p = new AddParams
            {
                Input0ZeroPoint = KernelTest.ZeroPoint(rng),
                Input0Multiplier = KernelTest.Multiplier(rng, anyInt: true),
                Input0Shift = rng.Next(-31, 4),
                Input1ZeroPoint = KernelTest.ZeroPoint(rng),
                Input1Multiplier = KernelTest.Multiplier(rng, anyInt: true),
                Input1Shift = rng.Next(-31, 4),
                OutputZeroPoint = KernelTest.ZeroPoint(rng),
                OutputMultiplier = KernelTest.Multiplier(rng, anyInt: true),
                OutputShift = rng.Next(-31, 4),
                LeftShift = rng.Next(0, 31),
            };
        }
        p.Count = count;
        (p.ActMin, p.ActMax) = KernelTest.Activation(rng, p.OutputZeroPoint);
        var c = new Case { P = p, X0Off = rng.Next(0, 5) };
        c.X1Off = c.X0Off + count + rng.Next(0, 5);
        c.YOff = placement switch
        {
            Placement.OnInput0 => c.X0Off,
            Placement.OnInput1 => c.X1Off,
            _ => c.X1Off + count + rng.Next(0, 5),
        };
        c.Arena = KernelTest.RandomBytes(rng, Math.Max(c.X1Off, c.YOff) + count + rng.Next(1, 6));
        return c;
    }

    [Theory]
    [InlineData(Placement.Apart)]
    [InlineData(Placement.OnInput0)]
    [InlineData(Placement.OnInput1)]
    public void RandomShapes_FastEqualsReference(Placement placement)
    {
        var rng = new Random(99 + (int)placement);
        for (int trial = 0; trial < 400; trial++)
        {
            int count = trial switch { 0 => 4099, 1 => 64 * 64 * 8, _ => rng.Next(1, 80) };
            Case c = Random(rng, count, placement);
            KernelTest.AssertPathsAgree(c.Arena, c.Exec, $"trial {trial}: {c}");
        }
    }

    [Theory]
    [InlineData(Placement.Apart)]
    [InlineData(Placement.OnInput0)]
    public void HandWorked_AverageOfTwo(Placement placement)
    {
        // Input scales 1, output scale 2, zero points 0: y = (x0 + x1) / 2. TFLite's Prepare gives input multipliers
        // 0.5 (2^30, shift 0) and output multiplier 2 / (2^20 * 2) = 2^-20 (2^30, shift -19).
        //   3 + 4 = 7    -> 3.5  -> 4      -3 + -4 = -7 -> -3.5 -> -4 (the final rounding is away from zero)
        //   100 + 100    -> 100            -128 + -128  -> -128
        //   5 + -6 = -1  -> -0.5 -> -1     127 + 127    -> 127
        AddParams p = FromScales(1, 0, 1, 0, 2, 0);
        Assert.Equal((1 << 30, 0, 1 << 30, -19), (p.Input0Multiplier, p.Input0Shift, p.OutputMultiplier, p.OutputShift));
        p.Count = 6;
        var c = new Case { P = p, X0Off = 0, X1Off = 6, YOff = placement == Placement.OnInput0 ? 0 : 12, Arena = new byte[18] };
        KernelTest.Int8(3, -3, 100, -128, 5, 127).CopyTo(c.Arena, 0);
        KernelTest.Int8(4, -4, 100, -128, -6, 127).CopyTo(c.Arena, 6);
        byte[] arena = KernelTest.AssertPathsAgree(c.Arena, c.Exec, c.ToString());
        Assert.Equal(new[] { 4, -4, 100, -128, -1, 127 }, KernelTest.ReadInt8(arena, c.YOff, 6));
    }

    [Fact]
    public void PartialOverlap_IsRefused()
    {
        AddParams p = FromScales(1, 0, 1, 0, 2, 0);
        p.Count = 8;
        var arena = new byte[32];
        var e = Assert.Throws<TinyTrainException>(() => Add.Run(p, arena, 0, arena, 8, arena, 3));
        Assert.Contains("overlaps x0", e.Message);
    }
}
