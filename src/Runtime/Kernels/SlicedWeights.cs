namespace TinyTrain.Runtime.Kernels;

/// <summary>
/// Trained slices (plan flag WeightsSliced): a 1x1 conv that trains only its first trainChannels input channels keeps only
/// those columns writable in the params region (OutC rows of trainChannels bytes); the frozen columns are read from the
/// plan's constants. Reads run one output channel at a time on the row assembled in the row buffer (the params region's
/// last InC bytes); each float sum and each random draw is exactly the whole kernel's, in the whole kernel's order, so
/// the results are bit for bit those of the whole weight. Plain loops over arrays, shared by src/Runtime's executor and
/// the nanoFramework build; nothing allocates.
/// </summary>
public static class SlicedWeights
{
    /// <summary>InitParamsRows: the first <paramref name="sliceBytes"/> of each of <paramref name="rows"/> rows of
    /// <paramref name="rowBytes"/> at image[<paramref name="from"/>], packed into parameters[<paramref name="to"/>].</summary>
    public static void InitRows(byte[] image, int from, byte[] parameters, int to, int rows, int rowBytes, int sliceBytes)
    {
        for (int r = 0; r < rows; r++)
        {
            Array.Copy(image, from + r * rowBytes, parameters, to + r * sliceBytes, sliceBytes);
        }
    }

    /// <summary>
    /// Row <paramref name="c"/> of the whole weight (inC bytes) in the row buffer: the trained columns from the slice at
    /// parameters[<paramref name="slice"/>], the rest from the whole weight at image[<paramref name="whole"/>]. Returns the
    /// row buffer's offset in <paramref name="parameters"/>.
    /// </summary>
    public static int AssembleRow(byte[] parameters, int slice, byte[] image, int whole, int inC, int trainChannels, int c)
    {
        int buffer = parameters.Length - inC;
        Array.Copy(parameters, slice + c * trainChannels, parameters, buffer, trainChannels);
        Array.Copy(image, whole + c * inC + trainChannels, parameters, buffer + trainChannels, inC - trainChannels);
        return buffer;
    }

    /// <summary>Conv2DBackwardInput of a sliced 1x1 conv (no Accumulate): row c's term of every dx sum, over c ascending as the whole kernel sums.</summary>
    public static void BackwardInput(byte[] arena, int dyOff, int outC, int dxOff, int inC, int plane, byte[] parameters, int slice, byte[] image, int whole,
        int trainChannels, int scales)
    {
        for (int c = 0; c < outC; c++)
        {
            int row = AssembleRow(parameters, slice, image, whole, inC, trainChannels, c);
            ChannelGradient.Row(arena, dyOff + 4 * c * plane, plane, parameters, row - c * inC, inC, c, image, scales, arena, dxOff, c == 0);
        }
    }

    /// <summary>
    /// Conv2DUpdate of a sliced 1x1 conv (one group, stride 1, unpadded): the update reads only input channels below
    /// trainChannels, the first planes of x, so it is the kernel on x's first trainChannels channels with the slice as the
    /// whole weight: the same gradients, draws and momentum entries, in the same order.
    /// </summary>
    public static void Update(in ConvParams whole, byte[] arena, int xOff, int dyOff, byte[] parameters, int w, byte[] bBuffer, int bias, byte[] image,
        int scales, float xScale, int trainChannels, in UpdateRule rule, byte[] state, int stateOff, ref uint rng)
    {
        ConvParams p = whole;
        p.InC = trainChannels;
        Conv2D.Update(p, arena, xOff, arena, dyOff, parameters, w, bBuffer, bias, image, scales, xScale, trainChannels, rule, state, stateOff, ref rng);
    }
}
