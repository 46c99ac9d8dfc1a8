using TinyTrain.Emulator.Corruptions;

namespace TinyTrain.Emulator.Tests.Corruptions;

/// <summary>
/// What each corruption does to real digits (the first 20 of mnist-mini's test split, seed = index + 1): how much it
/// changes them, that the digit stays recognisable where the paper says so, and that severity orders the change.
/// The bands and their reasons are in emulator/Corruptions/README.md.
/// </summary>
public class EffectTests
{
    private const int Count = 20;

    /// <summary>Mean absolute difference at severity 1, averaged over the digits, must fall in [low, high].</summary>
    [Theory]
    [InlineData("shot-noise", 6, 18)]
    [InlineData("impulse-noise", 15, 30)]
    [InlineData("glass-blur", 12, 30)]
    [InlineData("motion-blur", 15, 38)]
    [InlineData("shear", 18, 40)]
    [InlineData("scale", 15, 40)]
    [InlineData("rotate", 18, 40)]
    [InlineData("brightness", 100, 128)]
    [InlineData("translate", 30, 65)]
    [InlineData("stripe", 115, 128)]
    [InlineData("fog", 55, 115)]
    [InlineData("spatter", 3, 20)]
    [InlineData("dotted-line", 3.5, 9)]
    [InlineData("zigzag", 7, 17)]
    [InlineData("canny-edges", 25, 55)]
    public void ChangesARealDigit_ByAPlausibleAmount(string name, double low, double high)
    {
        double mean = MeanChange(name, 1.0, out double smallest);
        Assert.InRange(mean, low, high);
        Assert.True(smallest > 0.5, $"{name} left a digit almost unchanged (mean absolute difference {smallest:F2})");
    }

    /// <summary>The pixel correlation with the clean digit stays high: noise, blur and overlays leave it readable.</summary>
    [Theory]
    [InlineData("shot-noise", 0.75)]
    [InlineData("impulse-noise", 0.5)]
    [InlineData("glass-blur", 0.7)]
    [InlineData("motion-blur", 0.55)]
    [InlineData("brightness", 0.9)]
    [InlineData("fog", 0.7)]
    [InlineData("spatter", 0.8)]
    [InlineData("dotted-line", 0.8)]
    [InlineData("zigzag", 0.7)]
    public void KeepsTheDigitRecognisable(string name, double minCorrelation)
    {
        ICorruption c = CorruptionCatalog.Get(name);
        var y = new byte[Digits.Pixels];
        double sum = 0;
        for (int k = 0; k < Count; k++)
        {
            byte[] x = Digits.Image(k);
            c.Apply(x, y, 28, 28, 1.0, (ulong)k + 1);
            sum += Digits.Correlation(x, y);
        }
        Assert.True(sum / Count >= minCorrelation, $"{name}: mean correlation {sum / Count:F3} < {minCorrelation}");
    }

    /// <summary>
    /// Geometric corruptions move ink without losing it: rotate and translate keep the total (the digit sits 4 pixels
    /// inside the frame), shear's inverse map has determinant cos 0.4 so ink grows by about 1/0.92, scale 0.7 keeps
    /// about 0.7^2 of it.
    /// </summary>
    [Theory]
    [InlineData("rotate", 0.95, 1.05)]
    [InlineData("translate", 0.97, 1.01)]
    [InlineData("shear", 1.0, 1.2)]
    [InlineData("scale", 0.42, 0.56)]
    public void GeometricCorruptions_KeepTheInk(string name, double low, double high)
    {
        ICorruption c = CorruptionCatalog.Get(name);
        var y = new byte[Digits.Pixels];
        for (int k = 0; k < Count; k++)
        {
            byte[] x = Digits.Image(k);
            c.Apply(x, y, 28, 28, 1.0, (ulong)k + 1);
            Assert.InRange((double)Digits.Ink(y) / Digits.Ink(x), low, high);
        }
    }

    [Theory]
    [InlineData("rotate")]
    [InlineData("shear")]
    public void RotationAndShear_UndoneByTheirInverse_GiveTheDigitBack(string name)
    {
        var once = new byte[Digits.Pixels];
        var back = new byte[Digits.Pixels];
        for (int k = 0; k < Count; k++)
        {
            byte[] x = Digits.Image(k);
            double angle = (k % 2 == 0 ? 1 : -1) * 0.4;
            if (name == "rotate")
            {
                Rotate.RotateBy(x, once, 28, 28, angle);
                Rotate.RotateBy(once, back, 28, 28, -angle);
            }
            else
            {
                // Shear's inverse map is [[1, -sin s], [0, cos s]]; warping with its inverse undoes it.
                Shear.ShearBy(x, once, 28, 28, angle);
                double sin = Math.Sin(angle), cos = Math.Cos(angle);
                AffineWarp.WarpAboutCentre(once, back, 28, 28, 1.0, sin / cos, 0.0, 1.0 / cos, 0.0, 0.0);
            }
            Assert.True(Digits.Correlation(x, back) > 0.9, $"{name} there and back: correlation {Digits.Correlation(x, back):F3}");
        }
    }

    [Fact]
    public void CannyEdges_LieOnTheDigitsOutline()
    {
        var y = new byte[Digits.Pixels];
        for (int k = 0; k < Count; k++)
        {
            byte[] x = Digits.Image(k);
            CorruptionCatalog.Get("canny-edges").Apply(x, y, 28, 28, 1.0, 0);
            int edges = 0, nearInk = 0;
            for (int r = 0; r < 28; r++)
            {
                for (int c = 0; c < 28; c++)
                {
                    if (y[r * 28 + c] == 0) continue;
                    Assert.Equal(255, y[r * 28 + c]);
                    edges++;
                    bool ink = false;
                    for (int rr = Math.Max(0, r - 1); rr <= Math.Min(27, r + 1); rr++)
                        for (int cc = Math.Max(0, c - 1); cc <= Math.Min(27, c + 1); cc++)
                            ink |= x[rr * 28 + cc] > 0;
                    nearInk += ink ? 1 : 0;
                }
            }
            Assert.InRange(edges, 20, 300);
            Assert.True(nearInk >= 0.9 * edges, $"digit {k}: {nearInk} of {edges} edge pixels touch ink");
        }
    }

    /// <summary>Stronger severity, larger change: mean absolute difference at 0.5 &lt; 1 &lt; 2 (same seeds).</summary>
    [Theory]
    [InlineData("shot-noise")]
    [InlineData("impulse-noise")]
    [InlineData("glass-blur")]
    [InlineData("motion-blur")]
    [InlineData("shear")]
    [InlineData("scale")]
    [InlineData("rotate")]
    [InlineData("brightness")]
    [InlineData("translate")]
    [InlineData("stripe")]
    [InlineData("fog")]
    [InlineData("spatter")]
    [InlineData("dotted-line")]
    [InlineData("zigzag")]
    [InlineData("canny-edges")]
    public void Severity_OrdersTheChange(string name)
    {
        double half = MeanChange(name, 0.5, out _);
        double one = MeanChange(name, 1.0, out _);
        double two = MeanChange(name, 2.0, out _);
        Assert.True(half < one, $"{name}: change at 0.5 ({half:F2}) is not below the change at 1 ({one:F2})");
        if (name == "canny-edges")
            Assert.Equal(one, two); // the edge map is the whole corruption from severity 1 on
        else
            Assert.True(one < two, $"{name}: change at 1 ({one:F2}) is not below the change at 2 ({two:F2})");
    }

    [Fact]
    public void ImpulseNoise_AtHigherSeverity_FlipsASupersetOfPixels()
    {
        byte[] x = Digits.Image(2);
        var weak = new byte[x.Length];
        var strong = new byte[x.Length];
        ICorruption c = CorruptionCatalog.Get("impulse-noise");
        c.Apply(x, weak, 28, 28, 0.5, 42);
        c.Apply(x, strong, 28, 28, 1.5, 42);
        for (int i = 0; i < x.Length; i++)
            if (weak[i] != x[i])
                Assert.Equal(weak[i], strong[i]);
    }

    private static double MeanChange(string name, double severity, out double smallest)
    {
        ICorruption c = CorruptionCatalog.Get(name);
        var y = new byte[Digits.Pixels];
        double sum = 0;
        smallest = double.MaxValue;
        for (int k = 0; k < Count; k++)
        {
            byte[] x = Digits.Image(k);
            c.Apply(x, y, 28, 28, severity, (ulong)k + 1);
            double change = Digits.MeanAbsoluteDifference(x, y);
            sum += change;
            smallest = Math.Min(smallest, change);
        }
        return sum / Count;
    }
}
