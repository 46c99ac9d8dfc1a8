namespace TinyTrain.Runtime.Execution;

using TinyTrain.Runtime.Kernels;
using TinyTrain.Runtime.Plans;

/// <summary>The per-channel scale/shift ops (kinds 40..49): forward, backward, update and running statistics.</summary>
public sealed partial class Executor
{
    private void ExecuteNorm(OpInfo op, int index)
    {
        OpFlags flags = op.Flags;
        // The affine block (Weights) and the statistics correction (Bias) are params offsets when their flags say so.
        byte[] wBuffer = (flags & OpFlags.WeightsInParams) != 0 ? _params : _image;
        byte[] bBuffer = (flags & OpFlags.BiasInParams) != 0 ? _params : _image;
        int affine = Ref(op.Weights, flags, OpFlags.WeightsInParams), stats = Ref(op.Bias, flags, OpFlags.BiasInParams);
        TensorInfo x = _plan.Tensor(op.Input0);
        switch (op.Kind)
        {
            case OpKind.NormAffine:
            {
                TensorInfo y = _plan.Tensor(op.Output);
                var p = NormParams(x, y, op.Arg(0), op.Arg(1));
                int mask = MaskOffset(op);
                NormAffine.Forward(p, _arena, x.ArenaOffset, wBuffer, affine, bBuffer, stats, _arena, y.ArenaOffset,
                    mask < 0 ? null : _arena, mask, mask < 0 ? 0 : op.Arg(2));
                break;
            }
            case OpKind.NormAffineBackwardInput:
            {
                TensorInfo du = _plan.Tensor(op.Output);
                NormAffine.BackwardInput(x.C, x.H * x.W, _arena, x.ArenaOffset, wBuffer, affine, bBuffer, stats, _arena, du.ArenaOffset);
                break;
            }
            case OpKind.NormAffineUpdate:
            {
                TensorInfo dv = _plan.Tensor(op.Input1);
                var p = NormParams(x, x, -128, 127);
                if (GradientProbe is not null)
                {
                    float[] dScale = new float[x.C], dShift = new float[x.C];
                    NormAffine.Gradient(p, _arena, x.ArenaOffset, _arena, dv.ArenaOffset, bBuffer, stats, dScale, dShift);
                    GradientProbe(index, dScale, dShift);
                }
                NormAffine.Update(p, _arena, x.ArenaOffset, _arena, dv.ArenaOffset, wBuffer, affine, bBuffer, stats,
                    LearningRate, F(op.Arg(0)), F(op.Arg(1)), F(op.Arg(2)), F(op.Arg(3)));
                break;
            }
            case OpKind.NormStats:
            {
                var p = NormParams(x, x, -128, 127);
                NormAffine.Stats(p, _arena, x.ArenaOffset, wBuffer, affine, _image, Const(op.Multiplier), bBuffer, stats,
                    F(op.Arg(0)), F(op.Arg(1)));
                break;
            }
            default:
                throw new TinyTrainException($"{_plan.Source}: op kind {(int)op.Kind} is not supported by this runtime");
        }
    }

    private static float F(int bits) => BitConverter.Int32BitsToSingle(bits);

    private static NormAffineParams NormParams(TensorInfo x, TensorInfo y, int actMin, int actMax) => new()
    {
        C = x.C, H = x.H, W = x.W, InputScale = x.Scale, InputZeroPoint = x.ZeroPoint,
        OutputScale = y.Scale, OutputZeroPoint = y.ZeroPoint, ActMin = actMin, ActMax = actMax,
    };
}
