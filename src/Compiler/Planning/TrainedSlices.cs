namespace TinyTrain.Compiler.Planning;

using TinyTrain.Compiler.Learning;
using TinyTrain.Runtime.Plans;
using RtOpKind = TinyTrain.Runtime.Plans.OpKind;

/// <summary>
/// Trained slices (CompileOptions.TrainedSlices): a 1x1 conv whose weight trains only its first input channels keeps
/// only that slice writable (OutC rows of trainChannels bytes in the params region, OpFlags.WeightsSliced); the frozen
/// columns stay in Flash. The runtime reads such a weight one assembled row at a time, bit for bit the whole weight.
/// </summary>
public static class TrainedSlices
{
    /// <summary>Marks the weight slots of the program's partially trained 1x1 convs (one group) as sliceable.</summary>
    public static void Mark(PlanProgram program)
    {
        foreach (POp op in program.Ops)
        {
            if (op.Kind != RtOpKind.Conv2DUpdate || op.Weights?.Param is not { } slot) continue;
            int inC = program.Tensors[op.Input0].Shape.C, trainChannels = op.Args[4];
            if (!IsPointwise(op.Args) || trainChannels <= 0 || trainChannels >= inC) continue;
            slot.SliceChannels = trainChannels;
            slot.SliceInChannels = inC;
        }
    }

    /// <summary>The marked slots every op of which can read a slice: a 1x1 Conv2D (a mask only on planes of whole bytes),
    /// the row form of its input gradient (not the column form a channel stage starts with), its update.</summary>
    public static HashSet<ParamSlot> Sliced(PlanProgram program)
    {
        var sliced = new HashSet<ParamSlot>(ReferenceEqualityComparer.Instance);
        var refused = new HashSet<ParamSlot>(ReferenceEqualityComparer.Instance);
        List<POp> ops = program.Ops;
        for (int j = 0; j < ops.Count; j++)
        {
            POp op = ops[j];
            if (op.Weights?.Param is not { } slot || slot.SliceChannels == 0) continue;
            bool columns = j > 0 && ops[j - 1].Kind == RtOpKind.ChannelStage;
            bool ok = op.Kind switch
            {
                RtOpKind.Conv2D => IsPointwise(op.Args) && (op.Scratch < 0 || program.Tensors[op.Output].Shape.H * program.Tensors[op.Output].Shape.W % 8 == 0),
                RtOpKind.Conv2DBackwardInput => IsPointwise(op.Args) && !columns,
                RtOpKind.Conv2DUpdate => true,
                _ => false,
            };
            (ok ? sliced : refused).Add(slot);
        }
        sliced.ExceptWith(refused);
        return sliced;
    }

    /// <summary>A sliced op's args: Conv2D gets trainChannels and the whole weight's constant offset as args 7-8,
    /// Conv2DBackwardInput as args 4-5; Conv2DUpdate has trainChannels already.</summary>
    public static int[] Args(RtOpKind kind, int[] args, ParamSlot slot, uint whole)
    {
        int at = kind switch { RtOpKind.Conv2D => 7, RtOpKind.Conv2DBackwardInput => 4, _ => -1 };
        if (at < 0) return args;
        var extended = new int[Math.Max(args.Length, at + 2)];
        Array.Copy(args, extended, args.Length);
        extended[at] = slot.SliceChannels;
        extended[at + 1] = checked((int)whole);
        return extended;
    }

    private static bool IsPointwise(int[] args) => args[0] == 1 && args[1] == 1 && args[2] == 0 && args[3] == 1;
}
