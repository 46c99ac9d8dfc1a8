namespace TinyTrain.Runtime.Tests.Execution;

using TinyTrain.Runtime.Execution;

/// <summary>The geometry patch stages are sized and run by, on hand-worked cases.</summary>
public class PatchTilingTests
{
    [Fact]
    public void Parts_cover_the_size_in_near_equal_pieces()
    {
        // 7 rows in 3 parts: [0,2) [2,4) [4,7).
        Assert.Equal(new[] { 0, 2, 4, 7 }, new[] { 0, 1, 2, 3 }.Select(i => PatchTiling.PartStart(7, 3, i)));
    }

    [Theory]
    // 3x3, stride 1, pad 1: output rows [0,4) read input rows [-1,5) (row -1 is padding).
    [InlineData(0, 4, 3, 1, 1, -1, 5)]
    // 3x3, stride 2, pad 1: output rows [4,8) read input rows [7,16).
    [InlineData(4, 8, 3, 2, 1, 7, 16)]
    // 1x1 pointwise: the same rows.
    [InlineData(2, 5, 1, 1, 0, 2, 5)]
    public void The_input_rows_of_an_output_tile_include_the_halo(int start, int end, int kernel, int stride, int pad, int inStart, int inEnd)
    {
        Assert.Equal(inStart, PatchTiling.InputStart(start, stride, pad));
        Assert.Equal(inEnd, PatchTiling.InputEnd(end, kernel, stride, pad));
        // The window over the padded tile gives exactly the output tile.
        Assert.Equal(end - start, (inEnd - inStart - kernel) / stride + 1);
    }
}
