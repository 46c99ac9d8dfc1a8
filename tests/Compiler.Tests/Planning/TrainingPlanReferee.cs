namespace TinyTrain.Compiler.Tests.Planning;

using System.Buffers.Binary;
using TinyTrain.Runtime.Execution;
using TinyTrain.Runtime.Kernels;
using TinyTrain.Runtime.Plans;

/// <summary>
/// Runs a loaded training plan the way a bind and one training step do, independently of Plan.Validate.cs:
/// Init ops copy through spans cut to the Constants section and the params region; forward ops run as plain
/// int8 loops over spans cut to each tensor, to the weights and bias (in Constants or params, per the flags)
/// and to the per-channel constants; masks, loss, gradients and updates go to the runtime's own kernels with
/// the arguments Executor.ExecuteTraining builds, after the regions they will touch are checked against their
/// sections. Any index a validated plan lets out of range throws, and so does any kernel precondition a
/// validated plan breaks (a TinyTrainException from a kernel). Then the runtime's Executor binds the plan,
/// runs inference and one training step: what Plan.Load promises is that this cannot fail.
/// </summary>
internal static class TrainingPlanReferee
{
    /// <summary>True when the plan holds any op of a training kind: this referee runs it, not <see cref="PlanReferee"/>.</summary>
    public static bool IsTrainingPlan(Plan plan)
    {
        for (int j = 0; j < plan.OpCount; j++)
            if ((int)plan.Op(j).Kind >= (int)OpKind.InitParams) return true;
        return false;
    }

    /// <summary>Runs Init, then every other op in order, if the work is at most <paramref name="maxWork"/>. Returns whether it ran them.</summary>
    public static bool Execute(Plan plan, long maxWork = PlanReferee.MaxWork)
    {
        _ = plan.ModelName;
        long work = 0;
        for (int i = 0; i < plan.TensorCount; i++) _ = plan.Tensor(i).Name();
        for (int j = 0; j < plan.OpCount; j++) work += Work(plan, plan.Op(j));
        if (work > maxWork) return false;

        byte[] image = plan.Image;
        var arena = new byte[plan.ArenaBytes];
        var parameters = new byte[plan.SramParamBytes];
        var state = new byte[plan.StateBytes];
        ReadOnlySpan<byte> constants = image.AsSpan(plan.ConstantsOffset, plan.ConstantsLength);
        TensorInfo input = plan.Tensor(plan.InputTensor);
        new Random(7).NextBytes(arena.AsSpan(input.ArenaOffset, input.ByteLength));
        for (int j = 0; j < plan.OpCount; j++)
        {
            OpInfo op = plan.Op(j);
            if (op.Phase != OpPhase.Init) continue;
            Expect(j < plan.ForwardOpCount, j, op, "Init ops are among the ops Reset runs");
            constants.Slice((int)op.Weights, op.Arg(0)).CopyTo(parameters.AsSpan(op.Arg(1), op.Arg(0)));
        }
        uint rng = 0x9E3779B9;
        var rule = new UpdateRule { LearningRate = 0.01f, Momentum = 0.9f };
        for (int j = 0; j < plan.OpCount; j++)
        {
            OpInfo op = plan.Op(j);
            if (op.Phase == OpPhase.Init) continue;
            Expect(op.Output != plan.InputTensor, j, op, "does not write the model input");
            if ((int)op.Kind <= (int)OpKind.GlobalAvgPool)
                Forward(plan, j, op, arena, parameters, constants);
            else
                Train(plan, j, op, arena, parameters, state, ref rng, rule with { Qas = op.Kind switch
                {
                    OpKind.Conv2DUpdate => op.Arg(5) != 0,
                    OpKind.DepthwiseUpdate => op.Arg(4) != 0,
                    _ => op.Arg(1) != 0,
                } });
        }

        var executor = new Executor(plan);
        new Random(8).NextBytes(executor.Arena.AsSpan(executor.InputOffset, executor.InputLength));
        executor.Invoke();
        if (executor.CanTrain) executor.TrainStep(plan.NumClasses - 1);
        return true;
    }

    private static long Work(Plan plan, OpInfo op)
    {
        if (op.Phase == OpPhase.Init) return op.Arg(0);
        TensorInfo x = plan.Tensor(op.Input0);
        int groups = op.Kind is OpKind.Conv2D or OpKind.Conv2DBackwardInput or OpKind.Conv2DUpdate ? Math.Max(1, op.Arg(3)) : 1;
        int k = op.Arg(0);
        return op.Kind switch
        {
            OpKind.Conv2D or OpKind.DepthwiseConv2D or OpKind.AvgPool
                => (long)plan.Tensor(op.Output).ElementCount * (op.Kind == OpKind.Conv2D ? x.C / groups : 1) * k * k,
            OpKind.FullyConnected or OpKind.FullyConnectedBackwardInput => (long)plan.Tensor(op.Output).ElementCount * x.ElementCount,
            OpKind.Conv2DBackwardInput or OpKind.DepthwiseBackwardInput or OpKind.AvgPoolBackward
                => (long)x.ElementCount * plan.Tensor(op.Output).C / groups * k * k,
            // An update walks dy once per trained weight tap.
            OpKind.Conv2DUpdate or OpKind.DepthwiseUpdate => (long)plan.Tensor(op.Input1).ElementCount * (x.C / groups + 1) * k * k,
            OpKind.FullyConnectedUpdate => (long)plan.Tensor(op.Input1).ElementCount * (x.ElementCount + 1),
            OpKind.GlobalAvgPoolBackward => plan.Tensor(op.Output).ElementCount,
            _ => x.ElementCount,
        };
    }

    private static void Expect(bool ok, int j, OpInfo op, string what)
    {
        if (!ok) throw new InvalidOperationException($"op {j} ({op.Kind}) passed validation but breaks a precondition: {what}");
    }

    // A weights or bias field's bytes: in params when its flag is set, else in Constants.
    private static ReadOnlySpan<byte> Region(OpInfo op, uint offset, long bytes, OpFlags inParams, byte[] parameters, ReadOnlySpan<byte> constants) =>
        (op.Flags & inParams) != 0 ? parameters.AsSpan((int)offset, checked((int)bytes)) : constants.Slice((int)offset, checked((int)bytes));

    // ---- Forward: int8 loops over exact spans (TFLite-like numbers, not bit-exact).

    private static void Forward(Plan plan, int j, OpInfo op, byte[] arena, byte[] parameters, ReadOnlySpan<byte> constants)
    {
        Expect(op.Phase == OpPhase.Forward && j < plan.ForwardOpCount, j, op, "forward ops run in the inference pass");
        TensorInfo xt = plan.Tensor(op.Input0), yt = plan.Tensor(op.Output);
        Expect(xt.Type == ElementType.Int8 && yt.Type == ElementType.Int8, j, op, "int8 tensors");
        ReadOnlySpan<byte> x = arena.AsSpan(xt.ArenaOffset, xt.ByteLength);
        var y = new byte[yt.ByteLength];
        switch (op.Kind)
        {
            case OpKind.Conv2D:
            case OpKind.DepthwiseConv2D:
            case OpKind.FullyConnected:
            {
                bool fc = op.Kind == OpKind.FullyConnected, depthwise = op.Kind == OpKind.DepthwiseConv2D;
                int k = fc ? 1 : op.Arg(0), stride = fc ? 1 : op.Arg(1), pad = fc ? 0 : op.Arg(2);
                int groups = depthwise ? xt.C : fc ? 1 : op.Arg(3);
                int ic = fc ? xt.ElementCount : xt.C, h = fc ? 1 : xt.H, w = fc ? 1 : xt.W;
                int icPerGroup = ic / groups, ocPerGroup = yt.C / groups;
                ReadOnlySpan<byte> weights = Region(op, op.Weights, (long)yt.C * icPerGroup * k * k, OpFlags.WeightsInParams, parameters, constants);
                ReadOnlySpan<byte> bias = op.Bias == PlanFormat.NoConstant ? default : Region(op, op.Bias, 4L * yt.C, OpFlags.BiasInParams, parameters, constants);
                ReadOnlySpan<byte> multipliers = constants.Slice((int)op.Multiplier, 4 * yt.C), shifts = constants.Slice((int)op.Shift, 4 * yt.C);
                int actArg = depthwise ? 3 : fc ? 0 : 4;
                for (int oc = 0; oc < yt.C; oc++)
                    for (int oy = 0; oy < yt.H; oy++)
                        for (int ox = 0; ox < yt.W; ox++)
                        {
                            long acc = bias.IsEmpty ? 0 : BinaryPrimitives.ReadInt32LittleEndian(bias[(4 * oc)..]);
                            for (int i = 0; i < icPerGroup; i++)
                            {
                                int c = oc / ocPerGroup * icPerGroup + i;
                                for (int ky = 0; ky < k; ky++)
                                    for (int kx = 0; kx < k; kx++)
                                    {
                                        int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                                        if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                                        acc += ((sbyte)x[(c * h + iy) * w + ix] - xt.ZeroPoint) * (sbyte)weights[((oc * icPerGroup + i) * k + ky) * k + kx];
                                    }
                            }
                            int m = BinaryPrimitives.ReadInt32LittleEndian(multipliers[(4 * oc)..]);
                            int s = BinaryPrimitives.ReadInt32LittleEndian(shifts[(4 * oc)..]);
                            y[(oc * yt.H + oy) * yt.W + ox] = Clamp(yt.ZeroPoint + Requantize(acc, m, s), op.Arg(actArg), op.Arg(actArg + 1));
                        }
                break;
            }
            case OpKind.Add:
            {
                TensorInfo x1t = plan.Tensor(op.Input1);
                ReadOnlySpan<byte> x1 = arena.AsSpan(x1t.ArenaOffset, x1t.ByteLength);
                for (int i = 0; i < yt.ElementCount; i++)
                {
                    long a = Requantize(((sbyte)x[i] - xt.ZeroPoint) << op.Arg(6), op.Arg(0), op.Arg(1));
                    long b = Requantize(((sbyte)x1[i] - x1t.ZeroPoint) << op.Arg(6), op.Arg(2), op.Arg(3));
                    y[i] = Clamp(yt.ZeroPoint + Requantize(a + b, op.Arg(4), op.Arg(5)), op.Arg(7), op.Arg(8));
                }
                break;
            }
            default: // AvgPool, GlobalAvgPool
            {
                bool global = op.Kind == OpKind.GlobalAvgPool;
                int kh = global ? xt.H : op.Arg(0), kw = global ? xt.W : op.Arg(0), stride = global ? 1 : op.Arg(1);
                int actArg = global ? 0 : 2;
                for (int c = 0; c < yt.C; c++)
                    for (int oy = 0; oy < yt.H; oy++)
                        for (int ox = 0; ox < yt.W; ox++)
                        {
                            long sum = 0;
                            for (int ky = 0; ky < kh; ky++)
                                for (int kx = 0; kx < kw; kx++)
                                    sum += (sbyte)x[(c * xt.H + oy * stride + ky) * xt.W + ox * stride + kx];
                            y[(c * yt.H + oy) * yt.W + ox] = Clamp(sum / (kh * kw), op.Arg(actArg), op.Arg(actArg + 1));
                        }
                break;
            }
        }
        y.CopyTo(arena.AsSpan(yt.ArenaOffset, yt.ByteLength));
        if (op.Scratch != PlanFormat.NoTensor && op.Kind is OpKind.Conv2D or OpKind.DepthwiseConv2D or OpKind.FullyConnected)
        {
            // The gradient mask a forward op of a training plan writes: exactly its own bytes.
            TensorInfo mt = plan.Tensor(op.Scratch);
            Expect(mt.Type == ElementType.Bits && mt.ElementCount == yt.ElementCount, j, op, "mask shape");
            Span<byte> mask = arena.AsSpan(mt.ArenaOffset, mt.ByteLength);
            mask.Clear();
            for (int i = 0; i < y.Length; i++)
                if ((sbyte)y[i] > yt.ZeroPoint) mask[i / 8] |= (byte)(1 << (i % 8));
        }
    }

    // ---- Training ops: the runtime's kernels, called as Executor.ExecuteTraining calls them.

    private static void Train(Plan plan, int j, OpInfo op, byte[] arena, byte[] parameters, byte[] state, ref uint rng, UpdateRule rule)
    {
        byte[] image = plan.Image;
        int constantsAt = plan.ConstantsOffset;
        bool accumulate = (op.Flags & OpFlags.Accumulate) != 0;
        bool weightsInParams = (op.Flags & OpFlags.WeightsInParams) != 0, biasInParams = (op.Flags & OpFlags.BiasInParams) != 0;
        byte[] wBuffer = weightsInParams ? parameters : image;
        byte[] bBuffer = biasInParams ? parameters : image;
        int w = op.Weights == PlanFormat.NoConstant ? -1 : weightsInParams ? (int)op.Weights : constantsAt + (int)op.Weights;
        int bias = op.Bias == PlanFormat.NoConstant ? -1 : biasInParams ? (int)op.Bias : constantsAt + (int)op.Bias;
        int scales = op.Multiplier == PlanFormat.NoConstant ? -1 : constantsAt + (int)op.Multiplier;
        TensorInfo x = plan.Tensor(op.Input0);
        bool update = op.Kind is OpKind.Conv2DUpdate or OpKind.DepthwiseUpdate or OpKind.FullyConnectedUpdate or OpKind.BiasUpdate;
        Expect(update ? op.Phase == OpPhase.Update : op.Kind == OpKind.SaveMask ? op.Phase == OpPhase.Save : op.Phase == OpPhase.Backward, j, op, "phase");
        Expect(op.Kind == OpKind.SaveMask ? j < plan.ForwardOpCount : j >= plan.ForwardOpCount, j, op, "position");
        Expect(update ? op.Output == PlanFormat.NoTensor : op.Output < plan.TensorCount, j, op, "output");
        if (update)
        {
            // What the update writes must be the writable params region, never the image.
            Expect(w < 0 || weightsInParams, j, op, "trained weights in params");
            Expect(bias < 0 || biasInParams, j, op, "trained bias in params");
        }
        switch (op.Kind)
        {
            case OpKind.SaveMask:
            {
                TensorInfo m = plan.Tensor(op.Output);
                Training.SaveMask(arena, x.ArenaOffset, x.ElementCount, op.Arg(0), op.Arg(1), arena, m.ArenaOffset);
                break;
            }
            case OpKind.LossGradient:
            {
                TensorInfo d = plan.Tensor(op.Output);
                Expect(x.ElementCount == plan.NumClasses && d.ElementCount == x.ElementCount, j, op, "logits and their gradient hold one value per class");
                Training.LossGradient(arena, x.ArenaOffset, x.ElementCount, x.Scale, x.ZeroPoint, plan.NumClasses - 1, arena, d.ArenaOffset);
                break;
            }
            case OpKind.MaskGradient:
            {
                TensorInfo dy = plan.Tensor(op.Input1), dz = plan.Tensor(op.Output);
                Expect(x.Type == ElementType.Bits && x.ElementCount == dy.ElementCount && dz.ElementCount == dy.ElementCount, j, op, "mask, dy and dz counts");
                Training.MaskGradient(arena, x.ArenaOffset, arena, dy.ArenaOffset, dy.ElementCount, arena, dz.ArenaOffset);
                break;
            }
            case OpKind.GradientAdd:
            {
                TensorInfo b = plan.Tensor(op.Input1), y = plan.Tensor(op.Output);
                Expect(x.ElementCount == y.ElementCount && b.ElementCount == y.ElementCount, j, op, "equal counts");
                Training.GradientAdd(arena, x.ArenaOffset, arena, b.ArenaOffset, y.ElementCount, arena, y.ArenaOffset);
                break;
            }
            case OpKind.Conv2DBackwardInput:
            {
                TensorInfo dx = plan.Tensor(op.Output);
                var p = new ConvParams
                {
                    InC = dx.C, H = dx.H, W = dx.W, OutC = x.C, OH = x.H, OW = x.W,
                    Kernel = op.Arg(0), Stride = op.Arg(1), Pad = op.Arg(2), Groups = op.Arg(3), ActMin = -128, ActMax = 127,
                };
                Channels(plan, op, parameters, x.C, (long)x.C * (dx.C / p.Groups) * p.Kernel * p.Kernel);
                Conv2D.BackwardInput(p, arena, x.ArenaOffset, wBuffer, w, image, scales, arena, dx.ArenaOffset, accumulate);
                break;
            }
            case OpKind.DepthwiseBackwardInput:
            {
                TensorInfo dx = plan.Tensor(op.Output);
                var p = new DepthwiseParams
                {
                    C = dx.C, H = dx.H, W = dx.W, OH = x.H, OW = x.W, Kernel = op.Arg(0), Stride = op.Arg(1), Pad = op.Arg(2), ActMin = -128, ActMax = 127,
                };
                Channels(plan, op, parameters, dx.C, (long)dx.C * p.Kernel * p.Kernel);
                DepthwiseConv2D.BackwardInput(p, arena, x.ArenaOffset, wBuffer, w, image, scales, arena, dx.ArenaOffset, accumulate);
                break;
            }
            case OpKind.FullyConnectedBackwardInput:
            {
                TensorInfo dx = plan.Tensor(op.Output);
                var p = new FullyConnectedParams { In = dx.ElementCount, Out = x.ElementCount, ActMin = -128, ActMax = 127 };
                Channels(plan, op, parameters, p.Out, (long)p.Out * p.In);
                FullyConnected.BackwardInput(p, arena, x.ArenaOffset, wBuffer, w, image, scales, arena, dx.ArenaOffset, accumulate);
                break;
            }
            case OpKind.Conv2DUpdate:
            {
                TensorInfo dy = plan.Tensor(op.Input1);
                var p = new ConvParams
                {
                    InC = x.C, H = x.H, W = x.W, OutC = dy.C, OH = dy.H, OW = dy.W,
                    Kernel = op.Arg(0), Stride = op.Arg(1), Pad = op.Arg(2), Groups = op.Arg(3), InputZeroPoint = x.ZeroPoint, ActMin = -128, ActMax = 127,
                };
                Channels(plan, op, parameters, dy.C, (long)dy.C * (x.C / p.Groups) * p.Kernel * p.Kernel);
                Conv2D.Update(p, arena, x.ArenaOffset, arena, dy.ArenaOffset, wBuffer, w, bBuffer, bias, image, scales, x.Scale, op.Arg(4), rule, state, op.Arg(6), ref rng);
                break;
            }
            case OpKind.DepthwiseUpdate:
            {
                TensorInfo dy = plan.Tensor(op.Input1);
                var p = new DepthwiseParams
                {
                    C = x.C, H = x.H, W = x.W, OH = dy.H, OW = dy.W, Kernel = op.Arg(0), Stride = op.Arg(1), Pad = op.Arg(2),
                    InputZeroPoint = x.ZeroPoint, ActMin = -128, ActMax = 127,
                };
                Channels(plan, op, parameters, x.C, (long)x.C * p.Kernel * p.Kernel);
                DepthwiseConv2D.Update(p, arena, x.ArenaOffset, arena, dy.ArenaOffset, wBuffer, w, bBuffer, bias, image, scales, x.Scale, op.Arg(3), rule, state, op.Arg(5), ref rng);
                break;
            }
            case OpKind.FullyConnectedUpdate:
            {
                TensorInfo dy = plan.Tensor(op.Input1);
                var p = new FullyConnectedParams { In = x.ElementCount, Out = dy.ElementCount, InputZeroPoint = x.ZeroPoint, ActMin = -128, ActMax = 127 };
                Channels(plan, op, parameters, p.Out, (long)p.Out * p.In);
                FullyConnected.Update(p, arena, x.ArenaOffset, arena, dy.ArenaOffset, wBuffer, w, bBuffer, bias, image, scales, x.Scale, op.Arg(0), rule, state, op.Arg(2), ref rng);
                break;
            }
            case OpKind.BiasUpdate:
                Training.BiasUpdate(arena, x.ArenaOffset, x.C, x.H * x.W, bBuffer, bias, image, scales, BitConverter.Int32BitsToSingle(op.Arg(0)),
                    rule, state, op.Arg(2), ref rng);
                break;
            case OpKind.AvgPoolBackward:
            {
                TensorInfo dx = plan.Tensor(op.Output);
                var p = new PoolParams { C = dx.C, H = dx.H, W = dx.W, OH = x.H, OW = x.W, Kernel = op.Arg(0), Stride = op.Arg(1), ActMin = -128, ActMax = 127 };
                AvgPool.Backward(p, arena, x.ArenaOffset, arena, dx.ArenaOffset, accumulate);
                break;
            }
            case OpKind.GlobalAvgPoolBackward:
            {
                TensorInfo dx = plan.Tensor(op.Output);
                Expect(x.C == dx.C && x.ElementCount == dx.C, j, op, "dy is (C,1,1)");
                var p = new PoolParams { C = dx.C, H = dx.H, W = dx.W, OH = 1, OW = 1, Kernel = dx.H, Stride = 1, ActMin = -128, ActMax = 127 };
                GlobalAvgPool.Backward(p, arena, x.ArenaOffset, arena, dx.ArenaOffset, accumulate);
                break;
            }
            default:
                Expect(false, j, op, "known kind");
                break;
        }
    }

    // The weights, bias and weight scales an op will touch lie inside their own sections, not just inside the image.
    private static void Channels(Plan plan, OpInfo op, byte[] parameters, int channels, long weightBytes)
    {
        ReadOnlySpan<byte> constants = plan.Image.AsSpan(plan.ConstantsOffset, plan.ConstantsLength);
        if (op.Weights != PlanFormat.NoConstant) _ = Region(op, op.Weights, weightBytes, OpFlags.WeightsInParams, parameters, constants);
        if (op.Bias != PlanFormat.NoConstant) _ = Region(op, op.Bias, 4L * channels, OpFlags.BiasInParams, parameters, constants);
        _ = constants.Slice((int)op.Multiplier, 4 * channels);
    }

    // acc * M * 2^(shift - 31), rounded; acc is clamped to int32 first as the kernels' accumulators are.
    private static long Requantize(long acc, int multiplier, int shift)
    {
        acc = Math.Clamp(acc, int.MinValue, int.MaxValue);
        Int128 product = (Int128)acc * multiplier;
        int right = 31 - shift;
        if (right == 0) return (long)product;
        return (long)((product + (Int128.One << (right - 1))) >> right);
    }

    private static byte Clamp(long v, int min, int max) => (byte)(sbyte)Math.Clamp(v, min, max);
}
