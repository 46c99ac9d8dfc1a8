namespace TinyTrain.Runtime.Plans;

using static LittleEndian;

/// <summary>Validation of the per-channel scale/shift ops (kinds 40..49, see <see cref="OpKind.NormAffine"/>).</summary>
public sealed partial class Plan
{
    private static bool IsNormKind(int kind) => kind >= (int)OpKind.NormAffine && kind <= (int)OpKind.NormStats;

    private static int NormPhase(int kind) => kind switch
    {
        (int)OpKind.NormAffine => (int)OpPhase.Forward,
        (int)OpKind.NormAffineBackwardInput => (int)OpPhase.Backward,
        (int)OpKind.NormStats => (int)OpPhase.Save,
        _ => (int)OpPhase.Update,
    };

    private const int NormFlags = (int)(OpFlags.WeightsInParams | OpFlags.BiasInParams);

    private void ValidateNormOp(int j, int r, int kind, int flags)
    {
        byte[] b = _image;
        int in0 = U16(b, r + PlanFormat.OpInput0), in1 = U16(b, r + PlanFormat.OpInput1);
        int output = U16(b, r + PlanFormat.OpOutput), scratch = U16(b, r + PlanFormat.OpScratch);
        CheckScratch(j, scratch);
        bool inputIsGradient = kind == (int)OpKind.NormAffineBackwardInput;
        RequireTensor(j, "input 0", in0, inputIsGradient ? ElementType.Float32 : ElementType.Int8);
        TensorInfo x = Tensor(in0);
        long block = 8L * x.C;
        // The affine block: always in params (it is what adaptation and adapters write); NormStats keeps its running statistics there.
        if ((flags & (int)OpFlags.WeightsInParams) == 0)
            throw Invalid(_source, $"{OpLabel(j)}: its scale/shift block must be in the params region (flag WeightsInParams)");
        CheckRef(j, "scale/shift", U32(b, r + PlanFormat.OpWeights), block, 4, true, true);
        bool statsRequired = kind == (int)OpKind.NormStats;
        if (U32(b, r + PlanFormat.OpBias) != PlanFormat.NoConstant && (flags & (int)OpFlags.BiasInParams) == 0)
            throw Invalid(_source, $"{OpLabel(j)}: its statistics correction must be in the params region (flag BiasInParams)");
        uint stats = U32(b, r + PlanFormat.OpBias);
        if (stats != PlanFormat.NoConstant || statsRequired)
            CheckRef(j, "statistics correction", stats, block, 4, true, true);
        CheckNoConstant(j, r, PlanFormat.OpShift, "shifts");
        if (kind != (int)OpKind.NormStats)
            CheckNoConstant(j, r, PlanFormat.OpMultiplier, "source statistics");
        if (kind is (int)OpKind.NormAffineUpdate or (int)OpKind.NormStats)
        {
            if (output != PlanFormat.NoTensor)
                throw Invalid(_source, $"{OpLabel(j)}: writes parameters in place, not a tensor, but names tensor {output} as its output");
        }
        switch ((OpKind)kind)
        {
            case OpKind.NormAffine:
            {
                RequireOneInput(j, in1);
                RequireTensor(j, "output", output, ElementType.Int8);
                TensorInfo y = Tensor(output);
                if (!SameShape(x, y))
                    throw Invalid(_source, $"{OpLabel(j)}: input ({x.C},{x.H},{x.W}) and output ({y.C},{y.H},{y.W}) differ in shape");
                if (output == InputTensor)
                    throw Invalid(_source, $"{OpLabel(j)}: writes the model input {TensorLabel(output)}");
                CheckActivation(j, r, 0);
                CheckMask(j, r, scratch, in0, output, 2);
                CheckPlacement(j, in0, "input 0", output, true, ForwardInPlaceRule);
                break;
            }
            case OpKind.NormAffineBackwardInput:
            {
                RequireOneInput(j, in1);
                RequireTensor(j, "output", output, ElementType.Float32);
                if (Tensor(output).ElementCount != x.ElementCount)
                    throw Invalid(_source, $"{OpLabel(j)}: dv holds {x.ElementCount} values but du holds {Tensor(output).ElementCount}");
                CheckPlacement(j, in0, "input 0", output, true, TrainingInPlaceRule);
                break;
            }
            case OpKind.NormAffineUpdate:
            {
                RequireTensor(j, "input 1", in1, ElementType.Float32);
                if (Tensor(in1).ElementCount != x.ElementCount)
                    throw Invalid(_source, $"{OpLabel(j)}: u holds {x.ElementCount} values but dv holds {Tensor(in1).ElementCount}");
                float maxStep = F32Arg(r, 0), minScale = F32Arg(r, 1), maxScale = F32Arg(r, 2), anchor = F32Arg(r, 3);
                if (!(anchor >= 0 && anchor <= float.MaxValue))
                    throw Invalid(_source, $"{OpLabel(j)}: anchor weight (arg 3) {anchor} is not a finite number at or above 0");
                if (!(maxStep > 0 && maxStep <= float.MaxValue) || !(minScale > 0 && minScale <= 1) || !(maxScale >= 1 && maxScale <= float.MaxValue))
                    throw Invalid(_source, $"{OpLabel(j)}: update bounds (args 0..2) maxStep {maxStep}, scale range [{minScale}, {maxScale}] must be positive and hold 1");
                break;
            }
            default: // NormStats
            {
                RequireOneInput(j, in1);
                CheckConstant(j, "source statistics", U32(b, r + PlanFormat.OpMultiplier), block, 4, true);
                float momentum = F32Arg(r, 0), maxStatScale = F32Arg(r, 1);
                if (!(momentum > 0 && momentum <= 1) || !(maxStatScale >= 1 && maxStatScale <= float.MaxValue))
                    throw Invalid(_source, $"{OpLabel(j)}: momentum (arg 0) {momentum} must lie in (0, 1] and the largest statistics scale (arg 1) {maxStatScale} must be at least 1");
                break;
            }
        }
    }

    // DistillGradient (kind 44): m int8 and dy float32 of one count -> dm float32, a finite weight at or above 0.
    private void ValidateDistillOp(int j, int r)
    {
        byte[] b = _image;
        int in0 = U16(b, r + PlanFormat.OpInput0), in1 = U16(b, r + PlanFormat.OpInput1);
        int output = U16(b, r + PlanFormat.OpOutput), scratch = U16(b, r + PlanFormat.OpScratch);
        CheckScratch(j, scratch);
        RequireTensor(j, "input 0", in0, ElementType.Int8);
        RequireTensor(j, "input 1", in1, ElementType.Float32);
        RequireTensor(j, "output", output, ElementType.Float32);
        int count = Tensor(in0).ElementCount;
        if (Tensor(in1).ElementCount != count || Tensor(output).ElementCount != count)
            throw Invalid(_source, $"{OpLabel(j)}: m of {count} values, dy of {Tensor(in1).ElementCount} and dm of {Tensor(output).ElementCount} are not all equal");
        CheckNoConstants(j, r);
        float weight = F32Arg(r, 0);
        if (!(weight >= 0 && weight <= float.MaxValue))
            throw Invalid(_source, $"{OpLabel(j)}: distillation weight (arg 0) {weight} is not a finite number at or above 0");
        CheckPlacement(j, in0, "input 0", output, false, DistillInPlaceRule);
        CheckPlacement(j, in1, "input 1", output, true, DistillInPlaceRule);
    }

    private const string DistillInPlaceRule = "a DistillGradient may write over its dy only, and exactly";

    private float F32Arg(int r, int k) => BitConverter.Int32BitsToSingle(Arg(r, k));
}
