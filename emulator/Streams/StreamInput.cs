using TinyTrain.Compiler.Graphs;

namespace TinyTrain.Emulator.Streams;

/// <summary>
/// Turns a stream image (grey bytes) into a model's input floats, as Training/InputLayout does for a data set:
/// pixels scaled to [0, 1], resized bilinearly when the model's resolution differs, repeated over its channels.
/// The same arithmetic in the same order, so a stream sample and the same data set image give identical floats.
/// </summary>
public static class StreamInput
{
    // pixels is (rows, cols) bytes; destination gets (input.C, input.H, input.W) floats from offset.
    public static void Fill(ReadOnlySpan<byte> pixels, int rows, int cols, Shape input, float[] destination, int offset)
    {
        ArgumentNullException.ThrowIfNull(destination);
        if (pixels.Length != rows * cols)
            throw new ArgumentException($"{rows}x{cols} pixels need {rows * cols} bytes, got {pixels.Length}.", nameof(pixels));
        if (offset < 0 || destination.Length - offset < input.Size)
            throw new ArgumentException($"Input {input} needs {input.Size} floats from offset {offset}; the array holds {destination.Length}.", nameof(destination));
        int plane = input.H * input.W;
        if (rows > 1 && rows == input.C && cols == plane)
        {
            // A sensor window: one row per channel, copied as it is (as Training/InputLayout does).
            for (int i = 0; i < rows * cols; i++) destination[offset + i] = pixels[i] * (1f / 255f);
            return;
        }
        if (input.H == rows && input.W == cols)
        {
            for (int i = 0; i < plane; i++) destination[offset + i] = pixels[i] * (1f / 255f);
        }
        else
        {
            float sy = (float)rows / input.H, sx = (float)cols / input.W;
            for (int y = 0; y < input.H; y++)
            {
                float fy = Math.Clamp((y + 0.5f) * sy - 0.5f, 0f, rows - 1);
                int y0 = (int)fy, y1 = Math.Min(y0 + 1, rows - 1);
                float wy = fy - y0;
                for (int x = 0; x < input.W; x++)
                {
                    float fx = Math.Clamp((x + 0.5f) * sx - 0.5f, 0f, cols - 1);
                    int x0 = (int)fx, x1 = Math.Min(x0 + 1, cols - 1);
                    float wx = fx - x0;
                    float top = pixels[y0 * cols + x0] * (1 - wx) + pixels[y0 * cols + x1] * wx;
                    float bottom = pixels[y1 * cols + x0] * (1 - wx) + pixels[y1 * cols + x1] * wx;
                    destination[offset + y * input.W + x] = (top * (1 - wy) + bottom * wy) * (1f / 255f);
                }
            }
        }
        for (int c = 1; c < input.C; c++)
            Array.Copy(destination, offset, destination, offset + c * plane, plane);
    }
}
