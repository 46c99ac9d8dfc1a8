namespace TinyTrain.Runtime.Execution;

/// <summary>Reads a graph stage's geometry (<see cref="PatchGraph"/>) from a plan: the executor, the loader and the cost model.</summary>
public static class PatchGraphLoader
{
    /// <summary>
    /// Fills the graph from the graph stage op at <paramref name="stage"/> of <paramref name="plan"/> and its args[0] inner
    /// ops. An input that is neither the stage input nor an earlier inner op's output gets source int.MinValue (the loader
    /// refuses it). Returns false when the stage runs no op or more than <see cref="PatchGraph.MaxOps"/>.
    /// </summary>
    public static bool Load(PatchGraph g, Plans.Plan plan, int stage)
    {
        Plans.OpInfo op = plan.Op(stage);
        int n = op.Arg(0);
        if (n < 1 || n > PatchGraph.MaxOps || stage + n >= plan.OpCount) return false;
        g.Count = n;
        Plans.TensorInfo x = plan.Tensor(op.Input0);
        g.InC = x.C;
        g.InH = x.H;
        g.InW = x.W;
        for (int k = 0; k < n; k++)
        {
            Plans.OpInfo inner = plan.Op(stage + 1 + k);
            g.IsAdd[k] = inner.Kind == Plans.OpKind.Add;
            g.Kernel[k] = g.IsAdd[k] ? 1 : inner.Arg(0);
            g.Stride[k] = g.IsAdd[k] ? 1 : inner.Arg(1);
            g.Pad[k] = g.IsAdd[k] ? 0 : inner.Arg(2);
            Plans.TensorInfo y = plan.Tensor(inner.Output);
            g.C[k] = y.C;
            g.H[k] = y.H;
            g.W[k] = y.W;
            g.Source0[k] = Find(plan, stage, k, op.Input0, inner.Input0);
            g.Source1[k] = g.IsAdd[k] ? Find(plan, stage, k, op.Input0, inner.Input1) : PatchGraph.None;
        }
        return true;
    }

    private static int Find(Plans.Plan plan, int stage, int k, int stageInput, int tensor)
    {
        if (tensor == stageInput) return PatchGraph.StageInput;
        for (int i = k - 1; i >= 0; i--)
            if (plan.Op(stage + 1 + i).Output == tensor) return i;
        return int.MinValue;
    }
}
