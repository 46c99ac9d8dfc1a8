namespace TinyTrain.Compiler.Learning;

using TinyTrain.Compiler.Graphs;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Runtime.Plans;
using RtOpKind = TinyTrain.Runtime.Plans.OpKind;

public sealed record TrainingOptions
{
    /// <summary>Quantization-Aware Scaling of gradients (Lin et al. 2022); off only to measure what it buys.</summary>
    public bool Qas { get; init; } = true;
    /// <summary>Keep a float32 momentum entry per trained value in the state region.</summary>
    public bool Momentum { get; init; }
    /// <summary>Test-time adaptation: weight of the L2 pull of each scale/shift towards the source values (1, 0).</summary>
    public float NormAnchor { get; init; } = NormRefs.Anchor;
    /// <summary>tta:eco: lambda, the weight of the mean L1 distance between each meta network's join and its frozen part's output.</summary>
    public float DistillWeight { get; init; } = DefaultDistillWeight;

    public const float DefaultDistillWeight = 20f;
}

/// <summary>
/// Attach the trainable set, derive the backward pass at compile time, and prune it: the step
/// program is the int8 forward, the 1-bit masks that backward needs, then, from the loss back to
/// the earliest trained layer, each op's input gradient (only where something upstream is
/// trained) and its weight and bias update (applied as soon as it is computed). Nothing is
/// computed or kept that no trained parameter needs.
/// </summary>
public static class Autodiff
{
    /// <summary>EATA's filter: a sample whose prediction has entropy above this share of ln C is not learned from.</summary>
    public const float EntropyFilter = 0.4f;

    public static PlanProgram Build(QuantizedModel model, TrainableSet trainable, TrainingOptions? options = null)
    {
        options ??= new TrainingOptions();
        if (!model.IsQuantized) throw new InvalidOperationException("quantize the model before building its program");
        var tensors = new List<PTensor>();
        foreach (QTensor q in model.Tensors)
        {
            TensorRole role = q.Id == model.Input ? TensorRole.Input : q.Id == model.Output ? TensorRole.Output : TensorRole.Activation;
            tensors.Add(new PTensor { Id = q.Id, Name = q.Name, Type = ElementType.Int8, Shape = q.Shape, Role = role, Scale = q.Scale, ZeroPoint = q.ZeroPoint });
        }
        var ops = new List<POp>();
        int n = model.Ops.Count;

        // reach[t]: some trained parameter lies upstream of t, so dL/dt is needed. Pruning is this reachability.
        var reach = new bool[tensors.Count];
        for (int i = 0; i < n; i++)
        {
            QOp op = model.Ops[i];
            reach[op.Output] = trainable.PerOp[i].Any || op.Inputs.Any(t => reach[t]);
        }

        var weights = new DataRef?[n];
        var biases = new DataRef?[n];
        var scales = new DataRef?[n];
        for (int i = 0; i < n; i++)
        {
            QOp op = model.Ops[i];
            if (op.WeightQ is null) continue;
            byte[] w = (byte[])(Array)op.WeightQ;
            byte[] b = Int32Bytes(op.BiasQ!);
            OpTraining t = trainable.PerOp[i];
            weights[i] = t.WeightChannels > 0 ? DataRef.InParams(new ParamSlot($"{op.Name}.weight", w)) : DataRef.Const(w);
            biases[i] = t.Bias ? DataRef.InParams(new ParamSlot($"{op.Name}.bias", b)) : DataRef.Const(b);
            scales[i] = DataRef.Const(FloatBytes(op.WeightScale!));
        }
        NormRefs?[] norms = NormRefs.For(model, trainable);

        // Forward. A conv or fully connected op with a fused ReLU/ReLU6 on the backward path writes its
        // 1-bit gradient mask itself, from the sign of its int32 accumulator (exact, unlike the int8 output).
        var mask = new int[n];
        Array.Fill(mask, -1);
        for (int i = 0; i < n; i++)
        {
            QOp op = model.Ops[i];
            if (reach[op.Output] && op.Activation != Activation.None)
            {
                if (op.Kind is not (QOpKind.Conv or QOpKind.DepthwiseConv or QOpKind.FullyConnected or QOpKind.NormAffine))
                    throw new TinyTrainException($"op '{op.Name}': a fused activation on {op.Kind} has no backward rule");
                mask[i] = Add(tensors, $"{op.Name}.mask", ElementType.Bits, tensors[op.Output].Shape, TensorRole.SavedForBackward);
            }
            if (norms[i] is { } norm)
            {
                ops.Add(NormRefs.Forward(op, i, norm, mask[i]));
                if (trainable.NormStatistics) ops.Add(NormRefs.Statistics(op, i, norm));
                continue;
            }
            ops.Add(Forward(op, i, weights[i], biases[i], model, mask[i]));
        }
        if (trainable.IsEmpty)
            return new PlanProgram { Name = model.Name, Tensors = tensors, Ops = ops, Input = model.Input, Output = model.Output, Trainable = trainable };

        // Backward: every rule is one arm of the switch below.
        var contributions = new List<int>[tensors.Count];
        for (int t = 0; t < contributions.Length; t++) contributions[t] = new List<int>();
        int dLogits = Add(tensors, "loss.grad", ElementType.Float32, new Shape(model.NumClasses, 1, 1), TensorRole.Gradient);
        // Entropy (test-time adaptation): EATA's filter skips samples whose entropy is above 0.4 ln C.
        int[] objective = trainable.Objective == Objective.Entropy
            ? [1, BitConverter.SingleToInt32Bits(EntropyFilter * MathF.Log(model.NumClasses))]
            : [0];
        ops.Add(new POp { Kind = RtOpKind.LossGradient, Phase = OpPhase.Backward, Name = "loss", Input0 = model.Output, Output = dLogits, Args = objective });
        contributions[model.Output].Add(dLogits);

        for (int i = n - 1; i >= 0; i--)
        {
            QOp op = model.Ops[i];
            if (!reach[op.Output]) continue;
            int dy = Combine(contributions[op.Output], tensors, ops, op.Name, i);
            if (mask[i] >= 0)
            {
                int dz = Add(tensors, $"{op.Name}.grad_pre", ElementType.Float32, tensors[op.Output].Shape, TensorRole.Gradient);
                ops.Add(new POp { Kind = RtOpKind.MaskGradient, Phase = OpPhase.Backward, Name = $"{op.Name}.mask_grad", Input0 = mask[i], Input1 = dy, Output = dz, MayRunInPlace = true, Layer = i });
                dy = dz;
            }
            Shape x = model.Tensors[op.Inputs[0]].Shape, y = model.Tensors[op.Output].Shape;
            bool needDx = reach[op.Inputs[0]];
            int dx = needDx && op.Kind != QOpKind.Add ? Add(tensors, $"{model.Tensors[op.Inputs[0]].Name}.grad@{op.Name}", ElementType.Float32, x, TensorRole.Gradient) : -1;
            switch (op.Kind)
            {
                case QOpKind.Conv:
                    if (needDx)
                        ops.Add(new POp { Kind = RtOpKind.Conv2DBackwardInput, Phase = OpPhase.Backward, Name = $"{op.Name}.grad_input", Input0 = dy, Output = dx,
                            Weights = weights[i], Multiplier = scales[i], Args = [op.Kernel, op.Stride, op.Padding, op.Groups], Macs = op.Macs(model.Tensors), Layer = i });
                    break;
                case QOpKind.DepthwiseConv:
                    if (needDx)
                        ops.Add(new POp { Kind = RtOpKind.DepthwiseBackwardInput, Phase = OpPhase.Backward, Name = $"{op.Name}.grad_input", Input0 = dy, Output = dx,
                            Weights = weights[i], Multiplier = scales[i], Args = [op.Kernel, op.Stride, op.Padding], Macs = op.Macs(model.Tensors), Layer = i });
                    break;
                case QOpKind.FullyConnected:
                    if (needDx)
                        ops.Add(new POp { Kind = RtOpKind.FullyConnectedBackwardInput, Phase = OpPhase.Backward, Name = $"{op.Name}.grad_input", Input0 = dy, Output = dx,
                            Weights = weights[i], Multiplier = scales[i], Macs = op.Macs(model.Tensors), Layer = i });
                    break;
                case QOpKind.Add:
                    // d(x0 + x1) = dy for both inputs: no op, the gradient tensor is shared.
                    if (needDx) contributions[op.Inputs[0]].Add(dy);
                    if (reach[op.Inputs[1]])
                        contributions[op.Inputs[1]].Add(trainable.Distilled.Contains(i) ? Distill(op, i, dy, tensors, ops, options.DistillWeight) : dy);
                    continue;
                case QOpKind.AvgPool:
                    if (needDx)
                        ops.Add(new POp { Kind = RtOpKind.AvgPoolBackward, Phase = OpPhase.Backward, Name = $"{op.Name}.grad_input", Input0 = dy, Output = dx, Args = [op.Kernel, op.Stride], Layer = i });
                    break;
                case QOpKind.GlobalAvgPool:
                    if (needDx)
                        ops.Add(new POp { Kind = RtOpKind.GlobalAvgPoolBackward, Phase = OpPhase.Backward, Name = $"{op.Name}.grad_input", Input0 = dy, Output = dx, Layer = i });
                    break;
                case QOpKind.NormAffine:
                {
                    // The update reads dv before dx overwrites it in place, so it runs first (its new scale then
                    // carries dv further down: a one-step lag that saves a float32 copy of the plane).
                    NormRefs norm = norms[i]!;
                    if (trainable.PerOp[i].Affine) ops.Add(NormRefs.Update(op, i, norm, dy, options.NormAnchor));
                    if (needDx)
                        ops.Add(new POp { Kind = RtOpKind.NormAffineBackwardInput, Phase = OpPhase.Backward, Name = $"{op.Name}.grad_input", Input0 = dy, Output = dx,
                            Weights = norm.Affine, Bias = norm.Correction, MayRunInPlace = true, Layer = i });
                    if (needDx) contributions[op.Inputs[0]].Add(dx);
                    continue;
                }
                default:
                    throw new TinyTrainException($"op '{op.Name}': {op.Kind} has no backward rule");
            }
            if (needDx) contributions[op.Inputs[0]].Add(dx);
            OpTraining train = trainable.PerOp[i];
            if (train.Any) ops.Add(Update(op, i, train, weights[i]!, biases[i]!, scales[i]!, x, y, dy, options, model));
        }
        return new PlanProgram { Name = model.Name, Tensors = tensors, Ops = ops, Input = model.Input, Output = model.Output, Trainable = trainable };
    }

    private static POp Forward(QOp op, int i, DataRef? weights, DataRef? bias, QuantizedModel model, int mask)
    {
        // The mask mode follows the activation args: 0 none, 1 ReLU (acc > 0), 2 ReLU6 (and below six).
        int maskMode = mask < 0 ? 0 : op.Activation == Activation.Relu6 ? 2 : 1;
        DataRef? multiplier = op.Multiplier is null ? null : DataRef.Const(Int32Bytes(op.Multiplier));
        DataRef? shift = op.Shift is null ? null : DataRef.Const(Int32Bytes(op.Shift));
        (RtOpKind kind, int[] args) = op.Kind switch
        {
            QOpKind.Conv => (RtOpKind.Conv2D, new[] { op.Kernel, op.Stride, op.Padding, op.Groups, op.ActMin, op.ActMax, maskMode }),
            QOpKind.DepthwiseConv => (RtOpKind.DepthwiseConv2D, new[] { op.Kernel, op.Stride, op.Padding, op.ActMin, op.ActMax, maskMode }),
            QOpKind.FullyConnected => (RtOpKind.FullyConnected, new[] { op.ActMin, op.ActMax, maskMode }),
            QOpKind.Add => (RtOpKind.Add, [.. op.AddParams!, op.ActMin, op.ActMax]),
            QOpKind.AvgPool => (RtOpKind.AvgPool, new[] { op.Kernel, op.Stride, op.ActMin, op.ActMax }),
            QOpKind.GlobalAvgPool => (RtOpKind.GlobalAvgPool, new[] { op.ActMin, op.ActMax }),
            _ => throw new InvalidOperationException($"op '{op.Name}': no plan op for {op.Kind}"),
        };
        return new POp
        {
            Kind = kind, Phase = OpPhase.Forward, Name = op.Name, Input0 = op.Inputs[0], Input1 = op.Inputs.Length > 1 ? op.Inputs[1] : -1,
            Output = op.Output, Scratch = mask, Weights = weights, Bias = bias, Multiplier = multiplier, Shift = shift, Args = args,
            MayRunInPlace = op.Kind == QOpKind.Add, Macs = op.Macs(model.Tensors), Layer = i,
        };
    }

    private static POp Update(QOp op, int i, OpTraining train, DataRef weights, DataRef bias, DataRef scales, Shape x, Shape y, int dy,
        TrainingOptions options, QuantizedModel model)
    {
        int k = train.WeightChannels, qas = options.Qas ? 1 : 0;
        int taps = op.Kind == QOpKind.FullyConnected ? 1 : op.Kernel * op.Kernel;
        int trainedWeights = op.Kind == QOpKind.DepthwiseConv ? k * taps : op.OutChannels * k * taps;
        int trainedBiases = train.Bias ? op.OutChannels : 0;
        int state = options.Momentum ? trainedWeights + trainedBiases : 0;
        DataRef? w = k > 0 ? weights : null;
        DataRef? b = train.Bias ? bias : null;
        long macs = (long)trainedWeights * y.H * y.W;
        if (k == 0)
        {
            // Bias only: the gradient is dy summed over the plane; nothing from the forward pass is kept for it.
            float inputScale = model.Tensors[op.Inputs[0]].Scale;
            return new POp { Kind = RtOpKind.BiasUpdate, Phase = OpPhase.Update, Name = $"{op.Name}.update", Input0 = dy, Output = -1,
                Bias = b, Multiplier = scales, Args = [BitConverter.SingleToInt32Bits(inputScale), qas, -1], StateFloats = state, StateArg = 2, Layer = i };
        }
        return op.Kind switch
        {
            QOpKind.Conv => new POp { Kind = RtOpKind.Conv2DUpdate, Phase = OpPhase.Update, Name = $"{op.Name}.update", Input0 = op.Inputs[0], Input1 = dy, Output = -1,
                Weights = w, Bias = b, Multiplier = scales, Args = [op.Kernel, op.Stride, op.Padding, op.Groups, k, qas, -1], StateFloats = state, StateArg = 6, Macs = macs, Layer = i },
            QOpKind.DepthwiseConv => new POp { Kind = RtOpKind.DepthwiseUpdate, Phase = OpPhase.Update, Name = $"{op.Name}.update", Input0 = op.Inputs[0], Input1 = dy, Output = -1,
                Weights = w, Bias = b, Multiplier = scales, Args = [op.Kernel, op.Stride, op.Padding, k, qas, -1], StateFloats = state, StateArg = 5, Macs = macs, Layer = i },
            QOpKind.FullyConnected => new POp { Kind = RtOpKind.FullyConnectedUpdate, Phase = OpPhase.Update, Name = $"{op.Name}.update", Input0 = op.Inputs[0], Input1 = dy, Output = -1,
                Weights = w, Bias = b, Multiplier = scales, Args = [k, qas, -1], StateFloats = state, StateArg = 2, Macs = macs, Layer = i },
            _ => throw new TinyTrainException($"op '{op.Name}': {op.Kind} has no parameters to train"),
        };
    }

    // EcoTTA's self-distillation at a join y = x + m: |y - x| = |m|, so m's gradient gains lambda / count x sign(m).
    private static int Distill(QOp op, int i, int dy, List<PTensor> tensors, List<POp> ops, float lambda)
    {
        Shape shape = tensors[op.Inputs[1]].Shape;
        int dm = Add(tensors, $"{op.Name}.distill_grad", ElementType.Float32, shape, TensorRole.Gradient);
        float weight = lambda / shape.Size;
        ops.Add(new POp { Kind = RtOpKind.DistillGradient, Phase = OpPhase.Backward, Name = $"{op.Name}.distill", Input0 = op.Inputs[1], Input1 = dy, Output = dm,
            Args = [BitConverter.SingleToInt32Bits(weight)], MayRunInPlace = true, Layer = i });
        return dm;
    }

    // Sums the gradient contributions of a tensor read by several ops (a residual input).
    private static int Combine(List<int> parts, List<PTensor> tensors, List<POp> ops, string name, int layer)
    {
        if (parts.Count == 0) throw new InvalidOperationException($"op '{name}': no gradient reaches its output");
        int sum = parts[0];
        for (int p = 1; p < parts.Count; p++)
        {
            int y = Add(tensors, $"{name}.grad_sum{p}", ElementType.Float32, tensors[sum].Shape, TensorRole.Gradient);
            ops.Add(new POp { Kind = RtOpKind.GradientAdd, Phase = OpPhase.Backward, Name = $"{name}.grad_sum{p}", Input0 = sum, Input1 = parts[p], Output = y, MayRunInPlace = true, Layer = layer });
            sum = y;
        }
        return sum;
    }

    private static int Add(List<PTensor> tensors, string name, ElementType type, Shape shape, TensorRole role)
    {
        tensors.Add(new PTensor { Id = tensors.Count, Name = name, Type = type, Shape = shape, Role = role });
        return tensors.Count - 1;
    }

    internal static byte[] Int32Bytes(int[] values)
    {
        var bytes = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++) System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(4 * i), values[i]);
        return bytes;
    }

    internal static byte[] FloatBytes(float[] values)
    {
        var bytes = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++) System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(4 * i), values[i]);
        return bytes;
    }
}
