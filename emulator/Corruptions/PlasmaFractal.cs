namespace TinyTrain.Emulator.Corruptions;

/// <summary>
/// MNIST-C's plasma_fractal (a modification of FLHerne's mapgen diamondsquare.py): a size x size height map by the
/// diamond-square algorithm with wrap-around neighbours, normalized to [0, 1]. As in the paper's code each midpoint
/// gets wibble * uniform(-wibble, wibble) (wibble starts at 100 and is divided by the decay at each level).
/// </summary>
internal static class PlasmaFractal
{
    public const int PaperSize = 256;

    /// <summary>Fills map (size*size, row-major; size a power of two) with values in [0, 1].</summary>
    public static void Generate(Span<double> map, int size, double wibbleDecay, ref SplitMix64 rng)
    {
        map[0] = 0;
        int step = size;
        double wibble = 100;
        while (step >= 2)
        {
            int half = step / 2;
            int n = size / step;

            // Squares: each centre is the mean of its four corners plus noise.
            for (int a = 0; a < n; a++)
            {
                int r = a * step, rNext = (a + 1) % n * step;
                for (int b = 0; b < n; b++)
                {
                    int c = b * step, cNext = (b + 1) % n * step;
                    double sum = map[r * size + c] + map[rNext * size + c] + (map[r * size + cNext] + map[rNext * size + cNext]);
                    map[(r + half) * size + c + half] = sum / 4 + wibble * rng.NextUniform(-wibble, wibble);
                }
            }

            // Diamonds on the rows of the corners: centres above and below, corners left and right.
            for (int a = 0; a < n; a++)
            {
                int r = a * step, rAbove = (a + n - 1) % n * step + half;
                for (int b = 0; b < n; b++)
                {
                    int c = b * step, cNext = (b + 1) % n * step;
                    double sum = map[(r + half) * size + c + half] + map[rAbove * size + c + half] + (map[r * size + c] + map[r * size + cNext]);
                    map[r * size + c + half] = sum / 4 + wibble * rng.NextUniform(-wibble, wibble);
                }
            }

            // Diamonds on the columns of the corners: centres left and right, corners above and below.
            for (int a = 0; a < n; a++)
            {
                int r = a * step, rNext = (a + 1) % n * step;
                for (int b = 0; b < n; b++)
                {
                    int c = b * step, cLeft = (b + n - 1) % n * step + half;
                    double sum = map[(r + half) * size + c + half] + map[(r + half) * size + cLeft] + (map[r * size + c] + map[rNext * size + c]);
                    map[(r + half) * size + c] = sum / 4 + wibble * rng.NextUniform(-wibble, wibble);
                }
            }

            step /= 2;
            wibble /= wibbleDecay;
        }

        int count = size * size;
        double min = double.PositiveInfinity;
        for (int i = 0; i < count; i++) min = Math.Min(min, map[i]);
        double max = double.NegativeInfinity;
        for (int i = 0; i < count; i++)
        {
            map[i] -= min;
            max = Math.Max(max, map[i]);
        }
        if (max > 0)
            for (int i = 0; i < count; i++) map[i] /= max;
    }

    /// <summary>The paper's 256, or the next power of two that covers a larger image.</summary>
    public static int SizeFor(int width, int height)
    {
        int size = PaperSize;
        while (size < width || size < height) size *= 2;
        return size;
    }
}
