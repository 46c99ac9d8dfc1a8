using TinyTrain.Emulator.Corruptions;

namespace TinyTrain.Emulator.Tests.Corruptions;

/// <summary>Small images whose corrupted bytes can be worked out by hand.</summary>
public class HandCheckedTests
{
    private static byte[] Dot(int width, int height, int row, int col, byte value = 255)
    {
        var x = new byte[width * height];
        x[row * width + col] = value;
        return x;
    }

    private static byte[] Apply(string name, byte[] x, int width, int height, double severity = 1.0, ulong seed = 1)
    {
        var y = new byte[x.Length];
        CorruptionCatalog.Get(name).Apply(x, y, width, height, severity, seed);
        return y;
    }

    [Fact]
    public void Translate_ByWholePixels_MovesAPixelExactly()
    {
        byte[] x = Dot(28, 28, 5, 7, 200);
        var y = new byte[x.Length];
        Translate.ShiftBy(x, y, 28, 28, dx: 3, dy: -2);
        Assert.Equal(Dot(28, 28, 3, 10, 200), y);

        // The corruption moves 3 pixels along each axis, each way at random: the dot lands on one of four places.
        byte[] centre = Dot(28, 28, 14, 14, 123);
        var landed = new HashSet<(int, int)>();
        for (ulong seed = 0; seed < 16; seed++)
        {
            byte[] moved = Apply("translate", centre, 28, 28, 1.0, seed);
            int at = Array.FindIndex(moved, p => p != 0);
            Assert.Equal(123, moved[at]);
            Assert.Equal(123, Digits.Ink(moved));
            (int r, int c) = (at / 28, at % 28);
            Assert.Equal(3, Math.Abs(r - 14));
            Assert.Equal(3, Math.Abs(c - 14));
            landed.Add((r, c));
        }
        Assert.Equal(4, landed.Count);
    }

    [Fact]
    public void Rotate_ByZero_IsTheIdentity_AndAQuarterTurnIsCounterClockwise()
    {
        byte[] digit = Digits.Image(0);
        var y = new byte[digit.Length];
        Rotate.RotateBy(digit, y, 28, 28, 0.0);
        Assert.Equal(digit, y);

        // 29x29 has its centre on pixel (14, 14); a dot 5 to its right goes 5 above it.
        byte[] x = Dot(29, 29, 14, 19);
        var turned = new byte[x.Length];
        Rotate.RotateBy(x, turned, 29, 29, Math.PI / 2);
        Assert.Equal(Dot(29, 29, 9, 14), turned);
    }

    [Fact]
    public void Brightness_AddsHalfTheRange_RoundedHalfUp_Clipped()
    {
        byte[] x = [0, 1, 100, 127, 128, 200, 255];
        Assert.Equal(new byte[] { 128, 129, 228, 255, 255, 255, 255 }, Apply("brightness", x, 7, 1));
        // Severity scales the shift: 0.5 adds 63.75.
        Assert.Equal(new byte[] { 64, 65, 164, 191, 192, 255, 255 }, Apply("brightness", x, 7, 1, 0.5));
    }

    [Fact]
    public void Stripe_InvertsTheOuterSevenColumnsOnEachSide()
    {
        var x = new byte[28 * 28];
        byte[] y = Apply("stripe", x, 28, 28);
        for (int r = 0; r < 28; r++)
            for (int c = 0; c < 28; c++)
                Assert.Equal(c < 7 || c >= 21 ? 255 : 0, y[r * 28 + c]);
        byte[] digit = Digits.Image(4);
        Assert.Equal(digit, Apply("stripe", Apply("stripe", digit, 28, 28), 28, 28));
        Assert.All(Apply("stripe", x, 28, 28, 2.0), p => Assert.Equal(255, p));
    }

    [Fact]
    public void Scale_ByOneIsTheIdentity_AndByAHalfLeavesAQuarterOfTheInk()
    {
        byte[] digit = Digits.Image(5);
        var y = new byte[digit.Length];
        Scale.ScaleBy(digit, y, 28, 28, 1.0);
        Assert.Equal(digit, y);

        var white = new byte[28 * 28];
        Array.Fill(white, (byte)255);
        Scale.ScaleBy(white, y, 28, 28, 0.5);
        Assert.InRange((double)Digits.Ink(y) / Digits.Ink(white), 0.23, 0.27);
        Assert.Equal(255, y[14 * 28 + 14]);
        Assert.Equal(0, y[2 * 28 + 2]);
    }

    [Fact]
    public void ShotNoise_KeepsBlackAndQuantizesWhiteToThirds()
    {
        var x = new byte[40 * 40];
        for (int i = 0; i < x.Length; i += 2) x[i] = 255;
        byte[] y = Apply("shot-noise", x, 40, 40);
        for (int i = 0; i < x.Length; i++)
        {
            if (x[i] == 0) Assert.Equal(0, y[i]);
            else Assert.Contains(y[i], new byte[] { 0, 85, 170, 255 }); // Poisson(3) / 3, clipped
        }
        // P(Poisson(3) >= 3) = 0.577: a bit over half the white pixels stay white.
        int white = 0;
        for (int i = 0; i < x.Length; i += 2) white += y[i] == 255 ? 1 : 0;
        Assert.InRange(white / 800.0, 0.50, 0.66);
    }

    [Fact]
    public void ImpulseNoise_FlipsSeventeenPercentToBlackOrWhite()
    {
        var x = new byte[100 * 100];
        Array.Fill(x, (byte)128);
        byte[] y = Apply("impulse-noise", x, 100, 100);
        int salt = 0, pepper = 0;
        foreach (byte p in y)
        {
            Assert.Contains(p, new byte[] { 0, 128, 255 });
            salt += p == 255 ? 1 : 0;
            pepper += p == 0 ? 1 : 0;
        }
        Assert.InRange((salt + pepper) / 10000.0, 0.155, 0.185);
        Assert.InRange(salt / (double)(salt + pepper), 0.45, 0.55);
    }

    [Fact]
    public void GlassBlur_OfAFlatImage_IsFlat_LessTheTruncationToBytes()
    {
        var x = new byte[28 * 28];
        Array.Fill(x, (byte)100);
        // Blurring and shuffling a flat image changes nothing, except that the paper's uint8 cast after the first
        // blur truncates 99.99999... to 99.
        Assert.All(Apply("glass-blur", x, 28, 28), p => Assert.InRange(p, 99, 100));
    }

    [Fact]
    public void MotionBlur_SmearsADotIntoAMostlyHorizontalTrailThatKeepsItsInk()
    {
        byte[] x = Dot(28, 28, 14, 14);
        for (ulong seed = 0; seed < 6; seed++)
        {
            byte[] y = Apply("motion-blur", x, 28, 28, 1.0, seed);
            Assert.InRange(Digits.Ink(y), 245, 265); // weights sum to 1; each tap rounds
            int minR = 28, maxR = -1, minC = 28, maxC = -1;
            for (int i = 0; i < y.Length; i++)
            {
                if (y[i] == 0) continue;
                minR = Math.Min(minR, i / 28); maxR = Math.Max(maxR, i / 28);
                minC = Math.Min(minC, i % 28); maxC = Math.Max(maxC, i % 28);
            }
            // The angle is within 45 degrees of the horizontal, and the kernel is one-sided: the trail starts at the dot.
            Assert.True(maxC - minC >= maxR - minR);
            Assert.True(maxC - minC >= 5);
            Assert.True(minC == 14 || maxC == 14);
        }
    }

    [Fact]
    public void Fog_RaisesTheBackground_AndLeavesABlackImageBlack()
    {
        var white = new byte[28 * 28];
        Array.Fill(white, (byte)255);
        // (1 + 3 f) / (1 + 3) with f in [0, 1]: at least a quarter of white.
        Assert.All(Apply("fog", white, 28, 28), p => Assert.InRange(p, 64, 255));
        // The paper rescales by the image's maximum, which is 0 here.
        Assert.All(Apply("fog", new byte[28 * 28], 28, 28), p => Assert.Equal(0, p));
        byte[] digit = Digits.Image(6);
        byte[] fogged = Apply("fog", digit, 28, 28);
        int raised = 0;
        for (int i = 0; i < digit.Length; i++) raised += digit[i] == 0 && fogged[i] > 0 ? 1 : 0;
        Assert.True(raised > 300, $"only {raised} background pixels got fog");
    }

    [Fact]
    public void Spatter_OnBlack_IsMudOfGray50To63()
    {
        int mud = 0;
        for (ulong seed = 0; seed < 4; seed++)
        {
            foreach (byte p in Apply("spatter", new byte[28 * 28], 28, 28, 1.0, seed))
            {
                if (p == 0) continue;
                Assert.InRange(p, 50, 63); // 63 * m with m in [0.8, 1]
                mud++;
            }
        }
        Assert.True(mud > 0);
    }

    [Fact]
    public void DottedLine_OnBlack_IsDashesTwoColumnsWide()
    {
        for (ulong seed = 0; seed < 4; seed++)
        {
            byte[] y = Apply("dotted-line", new byte[28 * 28], 28, 28, 1.0, seed);
            for (int c = 0; c < 28; c++)
            {
                int lit = 0, brightest = 0;
                for (int r = 0; r < 28; r++)
                {
                    lit += y[r * 28 + c] > 0 ? 1 : 0;
                    brightest = Math.Max(brightest, y[r * 28 + c]);
                }
                bool on = (c / 2) % 2 == 1 && c < 27; // columns 2-3, 6-7, ..., 26 (27 is past the line's end)
                if (on)
                {
                    Assert.InRange(lit, 2, 3); // within 1.45 rows of the line's centre
                    // The centre is within half a row of a pixel: log(1 - 0.5 / 2.3) + 1 = 0.755 of white.
                    Assert.True(brightest >= 192, $"column {c}: brightest {brightest}");
                }
                else
                {
                    Assert.Equal(0, lit);
                }
            }
        }
    }

    [Fact]
    public void Zigzag_OnBlack_RunsFromColumnTwoToTheRightSide()
    {
        for (ulong seed = 0; seed < 4; seed++)
        {
            byte[] y = Apply("zigzag", new byte[28 * 28], 28, 28, 1.0, seed);
            int minC = 28, maxC = -1, minR = 28, maxR = -1;
            for (int i = 0; i < y.Length; i++)
            {
                if (y[i] == 0) continue;
                minC = Math.Min(minC, i % 28); maxC = Math.Max(maxC, i % 28);
                minR = Math.Min(minR, i / 28); maxR = Math.Max(maxR, i / 28);
            }
            Assert.Equal(2, minC);
            Assert.InRange(maxC, 22, 25);
            Assert.InRange(maxR - minR, 2, 14); // teeth 4 high, plus the tilt (at most 5 rows) and the stroke
        }
    }

    [Fact]
    public void CannyEdges_OfASquare_AreItsOutline_AndOfAFlatImageNothing()
    {
        var x = new byte[28 * 28];
        for (int r = 9; r < 19; r++)
            for (int c = 9; c < 19; c++)
                x[r * 28 + c] = 255;
        byte[] y = Apply("canny-edges", x, 28, 28);
        int edges = 0;
        for (int r = 0; r < 28; r++)
        {
            for (int c = 0; c < 28; c++)
            {
                if (y[r * 28 + c] == 0) continue;
                edges++;
                // On the square's boundary: one pixel inside or outside its edge.
                bool nearBoundary = r >= 8 && r <= 19 && c >= 8 && c <= 19 && !(r >= 10 && r <= 17 && c >= 10 && c <= 17);
                Assert.True(nearBoundary, $"edge at ({r}, {c})");
            }
        }
        Assert.InRange(edges, 30, 48);
        Assert.All(Apply("canny-edges", new byte[28 * 28], 28, 28), p => Assert.Equal(0, p));
        // Below severity 1 the edge map is blended with the image.
        byte[] half = Apply("canny-edges", x, 28, 28, 0.5);
        Assert.Equal(128, half[14 * 28 + 14]); // inside the square, no edge: 255 / 2 rounded half up
    }
}
