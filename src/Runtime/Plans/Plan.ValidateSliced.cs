namespace TinyTrain.Runtime.Plans;

using static LittleEndian;

// Trained slices (OpFlags.WeightsSliced, OpKind.InitParamsRows): a 1x1 conv's trained columns in params, the whole
// weight in Constants, rows assembled in the params region's last InC bytes.
public sealed partial class Plan
{
    private const string SlicedShape = "a 1x1, stride 1, unpadded, one-group conv";

    // Copies the first sliceBytes of rows rows of rowBytes from Constants at Weights to params at paramsOffset.
    private void ValidateInitParamsRows(int j, int r)
    {
        for (int f = PlanFormat.OpInput0; f <= PlanFormat.OpScratch; f += 2)
        {
            int t = U16(_image, r + f);
            if (t != PlanFormat.NoTensor)
                throw Invalid(_source, $"{OpLabel(j)}: touches no tensors, but its {TensorFieldName(f)} is tensor {t}");
        }
        int rows = Arg(r, 0), rowBytes = Arg(r, 1), sliceBytes = Arg(r, 2), target = Arg(r, 3);
        if (rows < 1 || rowBytes < 1 || sliceBytes < 1 || sliceBytes > rowBytes)
            throw Invalid(_source, $"{OpLabel(j)}: {rows} rows of {rowBytes} bytes, slices of {sliceBytes} (args 0-2) are not positive with slice <= row");
        CheckConstant(j, "weights", U32(_image, r + PlanFormat.OpWeights), (long)rows * rowBytes, 1, true);
        long region = SramParamBytes, length = (long)rows * sliceBytes;
        if (target < 0 || target + length > region)
            throw Invalid(_source, $"{OpLabel(j)}: params offset (arg 3) {target} with length {length} lies outside the {region}-byte params region");
        CheckNoConstant(j, r, PlanFormat.OpBias, "bias");
        CheckNoConstant(j, r, PlanFormat.OpMultiplier, "multipliers");
        CheckNoConstant(j, r, PlanFormat.OpShift, "shifts");
    }

    // A sliced op's weights: OutC rows of trainChannels bytes in params, the whole OutC x InC in Constants, and (for the
    // ops that read rows, not the update) a row buffer of InC bytes at the end of params that no Init op fills.
    private void CheckSliced(int j, int r, int flags, int inC, int outC, int tcArg, int wholeArg, bool readsRows)
    {
        if (Arg(r, 0) != 1 || Arg(r, 1) != 1 || Arg(r, 2) != 0 || Arg(r, 3) != 1)
            throw Invalid(_source, $"{OpLabel(j)}: keeps a trained slice of its weights (flag WeightsSliced), but is not {SlicedShape}");
        if ((flags & (int)OpFlags.WeightsInParams) == 0)
            throw Invalid(_source, $"{OpLabel(j)}: keeps a trained slice of its weights (flag WeightsSliced), which must be in the params region (flag WeightsInParams)");
        int tc = Arg(r, tcArg);
        if (tc < 1 || tc >= inC)
            throw Invalid(_source, $"{OpLabel(j)}: its trained slice of {tc} input channels (arg {tcArg}) is outside 1..{inC - 1}");
        CheckRef(j, "weights", U32(_image, r + PlanFormat.OpWeights), (long)outC * tc, 1, true, true);
        if (!readsRows) return;
        int whole = Arg(r, wholeArg);
        CheckConstant(j, "whole weights", whole < 0 ? PlanFormat.NoConstant : (uint)whole, (long)outC * inC, 1, true);
        long buffer = SramParamBytes - inC;
        if (U32(_image, r + PlanFormat.OpWeights) + (long)outC * tc > buffer)
            throw Invalid(_source, $"{OpLabel(j)}: its {inC}-byte row buffer at the end of the {SramParamBytes}-byte params region overlaps its trained slice");
        for (int i = 0; i < OpCount; i++)
        {
            int ri = _ops + i * PlanFormat.OpRecordSize, kind = U16(_image, ri + PlanFormat.OpKindField);
            long end = kind == (int)OpKind.InitParams ? (long)Arg(ri, 1) + Arg(ri, 0)
                : kind == (int)OpKind.InitParamsRows ? Arg(ri, 3) + (long)Arg(ri, 0) * Arg(ri, 2) : -1;
            if (end > buffer)
                throw Invalid(_source, $"{OpLabel(j)}: its {inC}-byte row buffer at the end of the params region overlaps what {OpLabel(i)} fills");
        }
    }
}
