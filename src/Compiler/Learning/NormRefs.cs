namespace TinyTrain.Compiler.Learning;

using TinyTrain.Compiler.Quantization;
using TinyTrain.Runtime.Plans;
using RtOpKind = TinyTrain.Runtime.Plans.OpKind;

/// <summary>
/// The data of one NormAffine op (a per-channel scale/shift beside a folded conv) and the plan ops that use it:
/// the scale/shift block (params, starts at 1 and 0), the statistics correction and running statistics (params,
/// only with norm statistics) and the source statistics (Flash). Autodiff asks this class for the op's forward,
/// statistics and update ops, so every use of the block is written in one place.
/// </summary>
public sealed class NormRefs
{
    /// <summary>Largest change of a scale or shift in one step, and the range a scale stays in: guards against runaway adaptation.</summary>
    public const float MaxStep = 0.05f, MinScale = 0.25f, MaxScale = 4f;
    /// <summary>Weight of the L2 pull of scale/shift towards the source values (1, 0): long runs stay near the source model.</summary>
    public const float Anchor = 1f;
    /// <summary>Weight of a new sample in the running statistics (batch 1), and the largest statistics scale.</summary>
    public const float StatisticsMomentum = 0.02f, MaxStatisticsScale = 8f;

    public required DataRef Affine { get; init; }
    public DataRef? Correction { get; init; }
    public DataRef? Running { get; init; }
    public DataRef? Source { get; init; }

    /// <summary>One entry per op of the model: the refs of each NormAffine op, null elsewhere.</summary>
    public static NormRefs?[] For(QuantizedModel model, TrainableSet trainable)
    {
        var refs = new NormRefs?[model.Ops.Count];
        for (int i = 0; i < model.Ops.Count; i++)
        {
            QOp op = model.Ops[i];
            if (op.Kind != QOpKind.NormAffine) continue;
            int c = op.OutChannels;
            DataRef? correction = null, running = null, source = null;
            if (trainable.NormStatistics)
            {
                float[] stats = op.SourceStatistics
                    ?? throw new InvalidOperationException($"op '{op.Name}': norm statistics asked for, but the source statistics were never measured (run NormStatistics)");
                correction = DataRef.InParams(new ParamSlot($"{op.Name}.stat_scale_shift", Autodiff.FloatBytes(Identity(c))));
                running = DataRef.InParams(new ParamSlot($"{op.Name}.running_stats", Autodiff.FloatBytes(stats)));
                source = DataRef.Const(Autodiff.FloatBytes(stats));
            }
            refs[i] = new NormRefs
            {
                Affine = DataRef.InParams(new ParamSlot($"{op.Name}.scale_shift", Autodiff.FloatBytes(Identity(c)))),
                Correction = correction, Running = running, Source = source,
            };
        }
        return refs;
    }

    /// <summary>scale[C] = 1 then shift[C] = 0: the map that changes nothing.</summary>
    public static float[] Identity(int channels)
    {
        var values = new float[2 * channels];
        Array.Fill(values, 1f, 0, channels);
        return values;
    }

    public static POp Forward(QOp op, int i, NormRefs norm, int mask)
    {
        int maskMode = mask < 0 ? 0 : op.Activation == Activation.Relu6 ? 2 : 1;
        return new POp
        {
            Kind = RtOpKind.NormAffine, Phase = OpPhase.Forward, Name = op.Name, Input0 = op.Inputs[0], Output = op.Output, Scratch = mask,
            Weights = norm.Affine, Bias = norm.Correction, Args = [op.ActMin, op.ActMax, maskMode], Layer = i,
        };
    }

    public static POp Statistics(QOp op, int i, NormRefs norm) => new()
    {
        Kind = RtOpKind.NormStats, Phase = OpPhase.Save, Name = $"{op.Name}.stats", Input0 = op.Inputs[0], Output = -1,
        Weights = norm.Running, Bias = norm.Correction, Multiplier = norm.Source,
        Args = [BitConverter.SingleToInt32Bits(StatisticsMomentum), BitConverter.SingleToInt32Bits(MaxStatisticsScale)], Layer = i,
    };

    public static POp Update(QOp op, int i, NormRefs norm, int dv, float anchor = Anchor) => new()
    {
        Kind = RtOpKind.NormAffineUpdate, Phase = OpPhase.Update, Name = $"{op.Name}.update", Input0 = op.Inputs[0], Input1 = dv, Output = -1,
        Weights = norm.Affine, Bias = norm.Correction,
        Args = [BitConverter.SingleToInt32Bits(MaxStep), BitConverter.SingleToInt32Bits(MinScale), BitConverter.SingleToInt32Bits(MaxScale),
            BitConverter.SingleToInt32Bits(anchor)], Layer = i,
    };
}
