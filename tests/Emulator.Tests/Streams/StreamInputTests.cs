using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Graphs;
using TinyTrain.Compiler.Training;
using TinyTrain.Emulator.Streams;

namespace TinyTrain.Emulator.Tests.Streams;

public class StreamInputTests
{
    [Theory]
    [InlineData(1, 28, 28)]
    [InlineData(3, 28, 28)]
    [InlineData(1, 14, 14)]
    [InlineData(3, 32, 32)]
    [InlineData(3, 128, 128)]
    [InlineData(2, 17, 40)]
    public void Fill_gives_exactly_what_InputLayout_gives_for_the_same_image(int c, int h, int w)
    {
        var random = new Random(h * 1000 + w);
        var pixels = new byte[28 * 28];
        random.NextBytes(pixels);
        var data = new Dataset("one", Split.Test, pixels, [0], ["a"]);
        var shape = new Shape(c, h, w);
        var expected = new float[shape.Size + 3];
        var actual = new float[shape.Size + 3];

        InputLayout.Fill(data, 0, shape, expected, 3);
        StreamInput.Fill(pixels, 28, 28, shape, actual, 3);

        Assert.Equal(expected, actual);
    }

    [Fact]
    public void Pixels_scale_to_the_unit_range()
    {
        var pixels = new byte[28 * 28];
        pixels[0] = 255;
        pixels[1] = 51;
        var floats = new float[28 * 28];

        StreamInput.Fill(pixels, 28, 28, new Shape(1, 28, 28), floats, 0);

        Assert.Equal(1f, floats[0]);
        Assert.Equal(0.2f, floats[1], 6);
        Assert.Equal(0f, floats[2]);
    }

    [Fact]
    public void A_destination_too_small_is_refused()
    {
        var e = Assert.Throws<ArgumentException>(() => StreamInput.Fill(new byte[784], 28, 28, new Shape(3, 32, 32), new float[3000], 100));

        Assert.StartsWith("Input 3x32x32 needs 3072 floats from offset 100; the array holds 3000.", e.Message);
    }
}
