namespace TinyTrain.Runtime.Plans;

using TinyTrain.Runtime.Execution;
using static LittleEndian;

// Validation of channel stages (OpKind.ChannelStage): the inner ops are the per-channel kinds the executor
// runs, each tiled tensor is written inside the stage before it is read and is held in one of the two plane
// slots when read (the same slot rules as Executor.Channel.cs), every tiled plane fits a slot, and the plane
// buffer is apart from every whole tensor the inner ops name. Each inner op has passed its own checks already.
public sealed partial class Plan
{
    private void ValidateChannelStage(int j, int r)
    {
        byte[] b = _image;
        int in0 = U16(b, r + PlanFormat.OpInput0), in1 = U16(b, r + PlanFormat.OpInput1);
        int output = U16(b, r + PlanFormat.OpOutput), scratch = U16(b, r + PlanFormat.OpScratch);
        RequireTensor(j, "input 0", in0, ElementType.Float32);
        RequireOneInput(j, in1);
        RequireTensor(j, "plane buffer (scratch)", scratch, ElementType.Float32);
        if (output != PlanFormat.NoTensor)
            RequireTensor(j, "output", output, ElementType.Float32);
        for (uint f = PlanFormat.OpWeights; f <= PlanFormat.OpShift; f += 4)
            if (U32(b, r + (int)f) != PlanFormat.NoConstant)
                throw Invalid(_source, $"{OpLabel(j)}: a channel stage takes no constants, but its record names one at field {f}");
        if (Tensor(in0).Tiled || Tensor(scratch).Tiled || (output != PlanFormat.NoTensor && Tensor(output).Tiled))
            throw Invalid(_source, $"{OpLabel(j)}: its input, output and plane buffer must exist whole in the arena, not as tiles");

        int n = Arg(r, 0), channels = Arg(r, 1), planeFloats = Arg(r, 2);
        CheckChannelStageCount(j, r);
        if (channels < 1 || planeFloats < 1 || 8L * planeFloats > Tensor(scratch).ByteLength)
            throw Invalid(_source, $"{OpLabel(j)}: {channels} channels of planes of {planeFloats} floats (args 1, 2) do not fit its " +
                $"{Tensor(scratch).ByteLength}-byte plane buffer (two planes); recompile the plan");

        int held0 = -1, held1 = -1;
        bool wroteOutput = false;
        for (int k = 0; k < n; k++)
        {
            int i = j + 1 + k, ri = _ops + i * PlanFormat.OpRecordSize;
            int kind = U16(b, ri + PlanFormat.OpKindField), flags = b[ri + PlanFormat.OpFlags];
            int x0 = U16(b, ri + PlanFormat.OpInput0), x1 = U16(b, ri + PlanFormat.OpInput1), y = U16(b, ri + PlanFormat.OpOutput);
            // Every whole tensor the inner ops name is in use while the plane buffer is.
            CheckWholeApart(j, scratch, x0);
            CheckWholeApart(j, scratch, x1);
            CheckWholeApart(j, scratch, y);
            switch ((OpKind)kind)
            {
                case OpKind.Conv2DBackwardInput:
                {
                    if (Arg(ri, 0) != 1 || Arg(ri, 1) != 1 || Arg(ri, 2) != 0 || Arg(ri, 3) != 1 || (flags & (int)OpFlags.Accumulate) != 0)
                        throw Invalid(_source, $"{OpLabel(j)}: its op {k} ({OpLabel(i)}) is not a 1x1, stride 1, unpadded, one-group input gradient that overwrites its output");
                    if (k == 0)
                    {
                        if ((flags & (int)OpFlags.WeightsSliced) != 0)
                            throw Invalid(_source, $"{OpLabel(j)}: its first op ({OpLabel(i)}) reads columns of a sliced weight; a channel stage reads whole weights there");
                        if (x0 != in0 || !Tensor(y).Tiled)
                            throw Invalid(_source, $"{OpLabel(j)}: its first op ({OpLabel(i)}) must read the stage input {TensorLabel(in0)} and write a tiled tensor");
                        CheckPlane(j, y, channels, planeFloats);
                        held0 = y;
                        held1 = -1;
                        break;
                    }
                    RequireHeld(j, k, i, x0, held0, held1);
                    if (wroteOutput || y != output)
                        throw Invalid(_source, $"{OpLabel(j)}: its op {k} ({OpLabel(i)}) writes {TensorLabel(y)}, but only one op may write the stage output, " +
                            (output == PlanFormat.NoTensor ? "and the stage has none" : TensorLabel(output)));
                    wroteOutput = true;
                    break;
                }
                case OpKind.MaskGradient:
                    RequireHeld(j, k, i, x1, held0, held1);
                    RequireTiledOutput(j, k, i, y, channels, planeFloats);
                    if (held0 == x1) held0 = y; else held1 = y;
                    break;
                case OpKind.DepthwiseBackwardInput:
                    if ((flags & (int)OpFlags.Accumulate) != 0)
                        throw Invalid(_source, $"{OpLabel(j)}: its op {k} ({OpLabel(i)}) accumulates into its output; a channel stage's tiles are overwritten");
                    RequireHeld(j, k, i, x0, held0, held1);
                    RequireTiledOutput(j, k, i, y, channels, planeFloats);
                    if (held0 == x0) held1 = y; else held0 = y;
                    break;
                case OpKind.BiasUpdate:
                    RequireHeld(j, k, i, x0, held0, held1);
                    break;
                case OpKind.Conv2DUpdate:
                    if (Arg(ri, 3) != 1 || Arg(ri, 6) != -1)
                        throw Invalid(_source, $"{OpLabel(j)}: its op {k} ({OpLabel(i)}) has groups or momentum; a channel stage runs one-group updates without momentum");
                    if (Tensor(x0).Tiled)
                        throw Invalid(_source, $"{OpLabel(j)}: its op {k} ({OpLabel(i)}) reads a tiled forward input; it must exist whole");
                    RequireHeld(j, k, i, x1, held0, held1);
                    break;
                default:
                    throw Invalid(_source, $"{OpLabel(j)}: its op {k} ({OpLabel(i)}) is not one a channel stage runs (Conv2DBackwardInput, MaskGradient, " +
                        "DepthwiseBackwardInput, BiasUpdate, Conv2DUpdate)");
            }
        }
        if (output != PlanFormat.NoTensor && !wroteOutput)
            throw Invalid(_source, $"{OpLabel(j)}: names {TensorLabel(output)} as its output, but none of its ops writes it");
        if (output != PlanFormat.NoTensor)
            CheckApart(j, output, in0, "input");
    }

    // Checked before the ops after the stage are read as its inner ops (or as ops outside every stage).
    private void CheckChannelStageCount(int j, int r)
    {
        int n = Arg(r, 0);
        if (n < 1 || n > Executor.MaxChannelStageOps || n >= _opCount - j)
            throw Invalid(_source, $"{OpLabel(j)}: runs {n} ops (arg 0); a channel stage runs 1..{Executor.MaxChannelStageOps} of the ops after it");
    }

    private void CheckWholeApart(int j, int scratch, int t)
    {
        if (t < _tensorCount && !Tensor(t).Tiled) CheckApart(j, scratch, t, "inner ops' tensor");
    }

    private void RequireHeld(int j, int k, int i, int t, int held0, int held1)
    {
        if (t >= _tensorCount || !Tensor(t).Tiled || (t != held0 && t != held1))
            throw Invalid(_source, $"{OpLabel(j)}: its op {k} ({OpLabel(i)}) reads {(t < _tensorCount ? TensorLabel(t) : $"tensor {t}")}, which is not a tiled plane " +
                "this stage holds at that point");
    }

    private void RequireTiledOutput(int j, int k, int i, int y, int channels, int planeFloats)
    {
        if (y >= _tensorCount || !Tensor(y).Tiled)
            throw Invalid(_source, $"{OpLabel(j)}: its op {k} ({OpLabel(i)}) writes a whole tensor; inside a channel stage only the last input gradient may");
        CheckPlane(j, y, channels, planeFloats);
    }

    private void CheckPlane(int j, int t, int channels, int planeFloats)
    {
        TensorInfo x = Tensor(t);
        if (x.Type != ElementType.Float32 || x.C != channels || (long)x.H * x.W > planeFloats)
            throw Invalid(_source, $"{OpLabel(j)}: tiled {TensorLabel(t)} ({x.C},{x.H},{x.W}) is not float32 planes of {channels} channels " +
                $"within the {planeFloats}-float slots (args 1, 2)");
    }
}
