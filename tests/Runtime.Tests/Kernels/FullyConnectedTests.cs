using TinyTrain.Runtime.Kernels;

namespace TinyTrain.Runtime.Tests.Kernels;

[Collection(KernelModeCollection.Name)]
public class FullyConnectedTests
{
    private sealed class Case
    {
        public FullyConnectedParams P;
        public byte[] Arena = [];
        public int XOff, YOff;
        public byte[] Image = [];
        public int WOff;
        public byte[] Consts = [];
        public int BiasOff, MultOff, ShiftOff;

        public void Exec(KernelPath path, byte[] arena)
        {
            switch (path)
            {
                case KernelPath.Reference:
                    FullyConnected.RunReference(P, arena, XOff, Image, WOff, Consts, BiasOff, Consts, MultOff, ShiftOff, arena, YOff);
                    break;
                case KernelPath.Simd256:
                case KernelPath.Simd128:
                    FullyConnected.RunSimd(P, arena, XOff, Image, WOff, Consts, BiasOff, Consts, MultOff, ShiftOff, arena, YOff);
                    break;
                default:
                    FullyConnected.Run(P, arena, XOff, Image, WOff, Consts, BiasOff, Consts, MultOff, ShiftOff, arena, YOff);
                    break;
            }
        }

        public override string ToString() => $"FullyConnected {P.In} -> {P.Out} zp {P.InputZeroPoint}/{P.OutputZeroPoint} act [{P.ActMin},{P.ActMax}]";
    }

    private static Case Random(Random rng, int inputs, int outputs, bool extremeConstants)
    {
        var p = new FullyConnectedParams { In = inputs, Out = outputs, InputZeroPoint = KernelTest.ZeroPoint(rng), OutputZeroPoint = KernelTest.ZeroPoint(rng) };
        (p.ActMin, p.ActMax) = KernelTest.Activation(rng, p.OutputZeroPoint);
        var c = new Case { P = p, XOff = rng.Next(0, 7) };
        c.YOff = c.XOff + inputs + rng.Next(0, 7);
        c.Arena = KernelTest.RandomBytes(rng, c.YOff + outputs + rng.Next(1, 9));
        c.WOff = rng.Next(0, 5);
        c.Image = KernelTest.RandomBytes(rng, c.WOff + inputs * outputs + rng.Next(0, 4));
        KernelTest.FillWeights(rng, c.Image, c.WOff, inputs * outputs);
        c.Consts = KernelTest.Constants(rng, outputs, withBias: rng.Next(5) != 0, wideBias: extremeConstants, anyMultiplier: extremeConstants,
            out c.BiasOff, out c.MultOff, out c.ShiftOff);
        return c;
    }

    [Fact]
    public void RandomShapes_FastEqualsReference()
    {
        var rng = new Random(31337);
        for (int trial = 0; trial < 400; trial++)
        {
            int inputs = rng.Next(3) == 0 ? rng.Next(1, 600) : rng.Next(1, 40);
            Case c = Random(rng, inputs, rng.Next(1, 14), extremeConstants: trial % 5 == 0);
            KernelTest.AssertPathsAgree(c.Arena, c.Exec, $"trial {trial}: {c}");
        }
    }

    [Theory]
    [InlineData(1280, 10)]
    [InlineData(1280, 1000)]
    [InlineData(1, 1)]
    [InlineData(7, 3)]
    [InlineData(4096, 5)]
    public void ChosenShapes_FastEqualsReference(int inputs, int outputs)
    {
        var rng = new Random(inputs * 31 + outputs);
        Case c = Random(rng, inputs, outputs, extremeConstants: false);
        KernelTest.AssertPathsAgree(c.Arena, c.Exec, c.ToString());
    }

    [Fact]
    public void HandWorked()
    {
        // x = [10 -20 30], zp_x = 10 -> [0 -30 20]; M = 2^30, shift -1 (x0.25), zp_y = -5.
        // Row 0: w [1 2 3], bias 7:   0 - 60 + 60 + 7 = 7;   SRDHM 3.5 -> 4, /2 -> 2 (round(1.75) = 2)  -> -3
        // Row 1: w [-1 -1 1], bias -8: 0 + 30 + 20 - 8 = 42; SRDHM 21, /2 = 10.5 -> 11 (away from zero) -> 6
        var p = new FullyConnectedParams { In = 3, Out = 2, InputZeroPoint = 10, OutputZeroPoint = -5, ActMin = -128, ActMax = 127 };
        var c = new Case { P = p, Image = KernelTest.Int8(1, 2, 3, -1, -1, 1), YOff = 3, Arena = new byte[5] };
        c.Consts = KernelTest.Constants([7, -8], [1 << 30, 1 << 30], [-1, -1], out c.BiasOff, out c.MultOff, out c.ShiftOff);
        KernelTest.Int8(10, -20, 30).CopyTo(c.Arena, 0);
        byte[] arena = KernelTest.AssertPathsAgree(c.Arena, c.Exec, c.ToString());
        Assert.Equal(new[] { -3, 6 }, KernelTest.ReadInt8(arena, 3, 2));
    }
}
