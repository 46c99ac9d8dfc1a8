namespace TinyTrain.Compiler.Planning;

using TinyTrain.Compiler.Learning;
using TinyTrain.Runtime.Plans;
using RtOpKind = TinyTrain.Runtime.Plans.OpKind;

/// <summary>
/// Channel-by-channel backward of inverted residual blocks (<see cref="RtOpKind.ChannelStage"/>): the float32 gradient
/// of an expanded tensor (the projection's input gradient, its masked form, the depthwise input gradient, the
/// expansion's masked output gradient) is the largest tensor of a sparse backward pass, yet each of its channels is
/// needed only by per-channel ops: the projection's input gradient gives plane c from column c of its weights, the
/// mask and depthwise ops work per channel, the expansion's bias and weight rows c need plane c only, and its input
/// gradient adds row c's part. A stage runs those ops one channel at a time, holding one plane in two slots; the
/// executor keeps the whole ops' float order and random draws, so the results are the same bit for bit.
/// </summary>
public static class ChannelStages
{
    /// <summary>The program with every chain that qualifies run as a channel stage (the program itself when none does).</summary>
    public static PlanProgram Apply(PlanProgram program)
    {
        var ops = new List<POp>(program.Ops);
        var tensors = new List<PTensor>(program.Tensors);
        var readers = Readers(ops, tensors.Count);
        bool changed = false;
        for (int j = 0; j < ops.Count; j++)
        {
            if (!TryChain(ops, tensors, readers, j, out List<POp> chain, out List<POp> moved, out HashSet<int> tiled, out int output, out int planeFloats))
                continue;
            int channels = tensors[chain[0].Output].Shape.C;
            int buffer = tensors.Count;
            tensors.Add(new PTensor
            {
                Id = buffer, Name = $"{chain[0].Name}..{chain[^1].Name}.planes", Type = ElementType.Float32,
                Shape = new Graphs.Shape(2 * planeFloats, 1, 1), Role = TensorRole.Scratch,
            });
            foreach (int t in tiled)
            {
                PTensor p = tensors[t];
                tensors[t] = new PTensor { Id = p.Id, Name = p.Name, Type = p.Type, Shape = p.Shape, Role = p.Role, Scale = p.Scale, ZeroPoint = p.ZeroPoint, Tiled = true };
            }
            var stage = new POp
            {
                Kind = RtOpKind.ChannelStage, Phase = OpPhase.Backward, Name = $"channel_stage[{chain[0].Name}..{chain[^1].Name}]",
                Input0 = chain[0].Input0, Output = output, Scratch = buffer, Args = [chain.Count, channels, planeFloats],
            };
            int span = chain.Count + moved.Count;
            ops.RemoveRange(j, span);
            ops.InsertRange(j, [.. moved, stage, .. chain]);
            j += span;
            changed = true;
        }
        return !changed ? program : new PlanProgram
        {
            Name = program.Name, Tensors = tensors, Ops = ops, Input = program.Input, Output = program.Output,
            Trainable = program.Trainable, Patch = program.Patch, MidStages = program.MidStages,
        };
    }

    // From op j, a 1x1 input gradient to an expanded tensor, then the ops that use only its channels, in order. Bias-only
    // updates right after op j that do not read the chain move ahead of it: they read nothing the chain writes, op j
    // reads no bias, and they draw their random numbers before the chain's updates either way.
    private static bool TryChain(List<POp> ops, List<PTensor> tensors, int[] readers, int j, out List<POp> chain, out List<POp> moved,
        out HashSet<int> tiled, out int output, out int planeFloats)
    {
        chain = [];
        moved = [];
        tiled = [];
        output = -1;
        planeFloats = 0;
        POp a = ops[j];
        if (!IsPointwiseInputGradient(a) || a.Output < 0 || tensors[a.Output].Type != ElementType.Float32) return false;
        int channels = tensors[a.Output].Shape.C;
        chain.Add(a);
        tiled.Add(a.Output);
        var read = new Dictionary<int, int>(); // reads of each tiled tensor inside the chain
        bool consumed = false;
        for (int end = j + 1; end < ops.Count; end++)
        {
            POp op = ops[end];
            int reading = Reads(op, tiled);
            if (reading < 0)
            {
                if (chain.Count == 1 && op.Kind == RtOpKind.BiasUpdate && op.StateFloats == 0)
                {
                    moved.Add(op);
                    continue;
                }
                break;
            }
            bool ok = op.Kind switch
            {
                RtOpKind.MaskGradient => op.Input1 == reading && !tiled.Contains(op.Input0) && op.Output >= 0 && !consumed,
                RtOpKind.DepthwiseBackwardInput => op.Output >= 0 && !consumed,
                RtOpKind.BiasUpdate => op.StateFloats == 0,
                RtOpKind.Conv2DUpdate => op.Input1 == reading && op.Args[3] == 1 && op.StateFloats == 0 && !tiled.Contains(op.Input0),
                RtOpKind.Conv2DBackwardInput => IsPointwiseInputGradient(op) && !consumed,
                _ => false,
            };
            if (!ok) break;
            if (op.Kind == RtOpKind.Conv2DBackwardInput)
            {
                consumed = true;
                output = op.Output;
            }
            else if (op.Output >= 0)
            {
                if (tensors[op.Output].Shape.C != channels || tensors[op.Output].Type != ElementType.Float32) break;
                tiled.Add(op.Output);
            }
            read[reading] = read.GetValueOrDefault(reading) + 1;
            chain.Add(op);
        }
        if (chain.Count < 2 || chain.Count > Runtime.Execution.Executor.MaxChannelStageOps) return false;
        // An op that stopped the chain may have added its output to tiled: only the chain's outputs count.
        tiled.Clear();
        foreach (POp op in chain)
            if (op.Output >= 0 && op.Output != output) tiled.Add(op.Output);
        // Each tiled tensor is read only inside the chain.
        foreach (int t in tiled)
        {
            if (read.GetValueOrDefault(t) != readers[t]) return false;
            planeFloats = Math.Max(planeFloats, tensors[t].Shape.H * tensors[t].Shape.W);
        }
        return true;
    }

    // The tiled tensor op reads, or -1 when it reads none of them.
    private static int Reads(POp op, HashSet<int> tiled)
    {
        if (op.Input0 >= 0 && tiled.Contains(op.Input0)) return op.Input0;
        if (op.Input1 >= 0 && tiled.Contains(op.Input1)) return op.Input1;
        return -1;
    }

    private static bool IsPointwiseInputGradient(POp op) =>
        op.Kind == RtOpKind.Conv2DBackwardInput && op.Args.Length >= 4 && op.Args[0] == 1 && op.Args[1] == 1 && op.Args[2] == 0 && op.Args[3] == 1;

    private static int[] Readers(List<POp> ops, int tensorCount)
    {
        var readers = new int[tensorCount];
        foreach (POp op in ops)
        {
            if (op.Input0 >= 0) readers[op.Input0]++;
            if (op.Input1 >= 0 && op.Input1 != op.Input0) readers[op.Input1]++;
        }
        return readers;
    }
}
