using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Graphs;

namespace TinyTrain.Compiler.Training;

/// <summary>
/// Turns a dataset image (28x28 grey bytes) into a model's input tensor: pixels scaled to [0, 1],
/// resized bilinearly when the model's resolution differs, and repeated over its input channels.
/// Multi-channel data (a sensor window: one row per channel, e.g. imu-gestures' 6 x 64) whose rows are the model's
/// channels and whose columns fill H x W is copied as it is, row c into channel c.
/// </summary>
public static class InputLayout
{
    public static void Fill(Dataset data, int index, Shape input, float[] destination, int offset)
    {
        int rows = data.Rows, cols = data.Cols;
        int src = index * rows * cols;
        byte[] img = data.Images;
        int plane = input.H * input.W;
        if (rows > 1 && rows == input.C && cols == plane)
        {
            for (int i = 0; i < rows * cols; i++) destination[offset + i] = img[src + i] * (1f / 255f);
            return;
        }
        if (input.H == rows && input.W == cols)
        {
            for (int i = 0; i < plane; i++) destination[offset + i] = img[src + i] * (1f / 255f);
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
                    float top = img[src + y0 * cols + x0] * (1 - wx) + img[src + y0 * cols + x1] * wx;
                    float bottom = img[src + y1 * cols + x0] * (1 - wx) + img[src + y1 * cols + x1] * wx;
                    destination[offset + y * input.W + x] = (top * (1 - wy) + bottom * wy) * (1f / 255f);
                }
            }
        }
        for (int c = 1; c < input.C; c++)
            Array.Copy(destination, offset, destination, offset + c * plane, plane);
    }
}
