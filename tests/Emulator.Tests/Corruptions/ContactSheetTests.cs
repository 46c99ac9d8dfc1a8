using System.Text;
using TinyTrain.Emulator.Corruptions;
using Xunit.Abstractions;

namespace TinyTrain.Emulator.Tests.Corruptions;

/// <summary>
/// Not a visual assertion: writes, for a person to look at, one PGM per corruption with a 4x4 grid of corrupted test
/// digits (severity 1, seed = position), plus all.pgm with every grid, to $TMPDIR/tinytrain-mnist-c/.
/// </summary>
public class ContactSheetTests(ITestOutputHelper output)
{
    private const int Grid = 4, Gap = 2, Side = Digits.Side;
    private const int SheetSide = Grid * Side + (Grid + 1) * Gap;

    [Fact]
    public void WritesA4x4GridPerCorruption()
    {
        string directory = Path.Combine(Path.GetTempPath(), "tinytrain-mnist-c");
        Directory.CreateDirectory(directory);
        string[] names = ["clean", .. CorruptionCatalog.Names];
        var overview = new byte[Grid * SheetSide * Grid * SheetSide];
        for (int n = 0; n < names.Length; n++)
        {
            byte[] sheet = Sheet(CorruptionCatalog.Get(names[n]));
            string path = Path.Combine(directory, names[n] + ".pgm");
            WritePgm(path, sheet, SheetSide, SheetSide);

            byte[] written = File.ReadAllBytes(path);
            string header = $"P5\n{SheetSide} {SheetSide}\n255\n";
            Assert.Equal(header, Encoding.ASCII.GetString(written, 0, header.Length));
            Assert.Equal(header.Length + SheetSide * SheetSide, written.Length);

            int top = n / Grid * SheetSide, left = n % Grid * SheetSide;
            for (int r = 0; r < SheetSide; r++)
                sheet.AsSpan(r * SheetSide, SheetSide).CopyTo(overview.AsSpan((top + r) * Grid * SheetSide + left));
        }
        WritePgm(Path.Combine(directory, "all.pgm"), overview, Grid * SheetSide, Grid * SheetSide);
        output.WriteLine($"contact sheets in {directory} (all.pgm: clean, then the 15 in the paper's order, row by row)");
    }

    private static byte[] Sheet(ICorruption corruption)
    {
        var sheet = new byte[SheetSide * SheetSide];
        Array.Fill(sheet, (byte)128);
        var y = new byte[Side * Side];
        for (int k = 0; k < Grid * Grid; k++)
        {
            corruption.Apply(Digits.Image(k), y, Side, Side, 1.0, (ulong)k);
            int top = Gap + k / Grid * (Side + Gap), left = Gap + k % Grid * (Side + Gap);
            for (int r = 0; r < Side; r++)
                y.AsSpan(r * Side, Side).CopyTo(sheet.AsSpan((top + r) * SheetSide + left));
        }
        return sheet;
    }

    private static void WritePgm(string path, byte[] pixels, int width, int height)
    {
        using FileStream file = File.Create(path);
        file.Write(Encoding.ASCII.GetBytes($"P5\n{width} {height}\n255\n"));
        file.Write(pixels);
    }
}
