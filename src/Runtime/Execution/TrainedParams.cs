namespace TinyTrain.Runtime.Execution;

using TinyTrain.Runtime.Plans;

/// <summary>
/// The current value of one writable parameter whole, in the plan's own layout (for tools: export, adapter packs,
/// tests; allocates): what an Init op filled, with a trained slice's frozen columns read from the plan's constants.
/// </summary>
public static class TrainedParams
{
    /// <summary>The parameter that Init op <paramref name="initOp"/> fills, from <paramref name="paramsRegion"/>.</summary>
    public static byte[] Whole(Plan plan, byte[] paramsRegion, int initOp)
    {
        OpInfo op = plan.Op(initOp);
        int from = plan.ConstantsOffset + (int)op.Weights;
        if (op.Kind == OpKind.InitParams)
        {
            var value = new byte[op.Arg(0)];
            Array.Copy(paramsRegion, op.Arg(1), value, 0, value.Length);
            return value;
        }
        if (op.Kind != OpKind.InitParamsRows)
            throw new TinyTrainException($"{plan.Source}: op {initOp} ({op.Kind}) fills no parameter");
        int rows = op.Arg(0), rowBytes = op.Arg(1), sliceBytes = op.Arg(2), at = op.Arg(3);
        var whole = new byte[rows * rowBytes];
        Array.Copy(plan.Image, from, whole, 0, whole.Length);
        for (int r = 0; r < rows; r++)
            Array.Copy(paramsRegion, at + r * sliceBytes, whole, r * rowBytes, sliceBytes);
        return whole;
    }
}
