namespace TinyTrain.Runtime.Execution;

using TinyTrain.Runtime.Kernels;
using TinyTrain.Runtime.Plans;

// Channel stages (OpKind.ChannelStage): the backward of an expansion conv -> depthwise -> projection chain run one
// expanded channel at a time, so that its float32 gradients exist one plane at a time in two plane slots instead of
// whole. Each inner op's channel-c part is the ordinary kernel on one channel (or ChannelGradient, which sums in the
// whole kernel's order), and each update op draws its random numbers from its own cursor, started where the whole
// ops would have started it: the results are bit for bit those of the inner ops run whole.
public sealed partial class Executor
{
    /// <summary>The most inner ops a channel stage may run (Plan.Validate refuses more).</summary>
    public const int MaxChannelStageOps = 8;

    private readonly uint[] _cursors = new uint[MaxChannelStageOps];

    private void RunChannelStage(OpInfo op, int index)
    {
        int n = op.Arg(0), channels = op.Arg(1), planeFloats = op.Arg(2);
        int slot0 = _plan.Tensor(op.Scratch).ArenaOffset, slot1 = slot0 + 4 * planeFloats;

        // Where each update op's draws start: after every draw of the update ops before it, channel after channel.
        uint cursor = _rng;
        for (int k = 0; k < n; k++)
        {
            long draws = (long)channels * ChannelDraws(_plan.Op(index + 1 + k));
            _cursors[k] = cursor;
            for (long d = 0; d < draws; d++) StochasticRounding.Next(ref cursor);
        }
        float[][]? dw = null, db = null;
        if (GradientProbe is not null) ProbeArrays(index, n, channels, out dw, out db);

        for (int c = 0; c < channels; c++)
        {
            // The tiled tensor each slot holds for this channel (-1: none).
            int held0 = -1, held1 = -1;
            for (int k = 0; k < n; k++)
            {
                OpInfo inner = _plan.Op(index + 1 + k);
                OpFlags flags = inner.Flags;
                byte[] wBuffer = (flags & OpFlags.WeightsInParams) != 0 ? _params : _image;
                byte[] bBuffer = (flags & OpFlags.BiasInParams) != 0 ? _params : _image;
                int w = Ref(inner.Weights, flags, OpFlags.WeightsInParams), bias = Ref(inner.Bias, flags, OpFlags.BiasInParams);
                int scales = Const(inner.Multiplier);
                switch (inner.Kind)
                {
                    case OpKind.Conv2DBackwardInput:
                    {
                        TensorInfo dy = _plan.Tensor(inner.Input0), dx = _plan.Tensor(inner.Output);
                        if (dx.Tiled)
                        {
                            ChannelGradient.Column(_arena, dy.ArenaOffset, dy.C, dy.H * dy.W, wBuffer, w, dx.C, c, _image, scales, _arena, slot0);
                            held0 = inner.Output;
                            held1 = -1;
                        }
                        else
                        {
                            int at = held0 == inner.Input0 ? slot0 : slot1;
                            if ((flags & OpFlags.WeightsSliced) != 0)
                                (wBuffer, w) = (_params, AssembleRow(w, inner.Arg(5), dx.C, inner.Arg(4), c) - c * dx.C);
                            ChannelGradient.Row(_arena, at, dx.H * dx.W, wBuffer, w, dx.C, c, _image, scales, _arena, dx.ArenaOffset, c == 0);
                        }
                        break;
                    }
                    case OpKind.MaskGradient:
                    {
                        TensorInfo mask = _plan.Tensor(inner.Input0), dy = _plan.Tensor(inner.Input1);
                        bool first = held0 == inner.Input1;
                        int at = first ? slot0 : slot1, plane = dy.H * dy.W;
                        ChannelGradient.Mask(_arena, mask.ArenaOffset, (long)c * plane, _arena, at, plane, _arena, at);
                        if (first) held0 = inner.Output; else held1 = inner.Output;
                        break;
                    }
                    case OpKind.DepthwiseBackwardInput:
                    {
                        TensorInfo dy = _plan.Tensor(inner.Input0), dx = _plan.Tensor(inner.Output);
                        bool first = held0 == inner.Input0;
                        int from = first ? slot0 : slot1, to = first ? slot1 : slot0, taps = inner.Arg(0) * inner.Arg(0);
                        var p = new DepthwiseParams
                        {
                            C = 1, H = dx.H, W = dx.W, OH = dy.H, OW = dy.W, Kernel = inner.Arg(0), Stride = inner.Arg(1), Pad = inner.Arg(2), ActMin = -128, ActMax = 127,
                        };
                        DepthwiseConv2D.BackwardInput(p, _arena, from, wBuffer, w + c * taps, _image, scales + 4 * c, _arena, to, false);
                        if (first) held1 = inner.Output; else held0 = inner.Output;
                        break;
                    }
                    case OpKind.BiasUpdate:
                    {
                        TensorInfo dy = _plan.Tensor(inner.Input0);
                        int at = held0 == inner.Input0 ? slot0 : slot1, plane = dy.H * dy.W, state = inner.Arg(2);
                        if (db is not null) db[k][c] = TrainingUpdate.Sum(_arena, at, plane);
                        var rule = new UpdateRule { LearningRate = LearningRate, Momentum = Momentum, Qas = inner.Arg(1) != 0 };
                        Training.BiasUpdate(_arena, at, 1, plane, bBuffer, bias + 4 * c, _image, scales + 4 * c, BitConverter.Int32BitsToSingle(inner.Arg(0)),
                            rule, _state, state < 0 ? -1 : state + 4 * c, ref _cursors[k]);
                        break;
                    }
                    default: // Conv2DUpdate (one group, no momentum): output channel c
                    {
                        TensorInfo x = _plan.Tensor(inner.Input0), dy = _plan.Tensor(inner.Input1);
                        int at = held0 == inner.Input1 ? slot0 : slot1, kernel = inner.Arg(0), trainChannels = inner.Arg(4);
                        var p = new ConvParams
                        {
                            InC = x.C, H = x.H, W = x.W, OutC = 1, OH = dy.H, OW = dy.W,
                            Kernel = kernel, Stride = inner.Arg(1), Pad = inner.Arg(2), Groups = 1,
                            InputZeroPoint = x.ZeroPoint, ActMin = -128, ActMax = 127,
                        };
                        if (dw is not null)
                        {
                            int count = trainChannels * kernel * kernel;
                            float[] rowW = new float[count], rowB = new float[1];
                            Conv2D.WeightGradient(p, _arena, x.ArenaOffset, _arena, at, x.Scale, trainChannels, rowW, rowB);
                            Array.Copy(rowW, 0, dw[k], c * count, count);
                            db![k][c] = rowB[0];
                        }
                        var rule = new UpdateRule { LearningRate = LearningRate, Momentum = Momentum, Qas = inner.Arg(5) != 0 };
                        // A trained slice: the kernel on x's first trainChannels channels, the slice's row c as the whole row (Executor.Sliced.cs).
                        int row = (flags & OpFlags.WeightsSliced) != 0 ? trainChannels : x.C;
                        p.InC = row;
                        Conv2D.Update(p, _arena, x.ArenaOffset, _arena, at, wBuffer, w < 0 ? -1 : w + c * row * kernel * kernel, bBuffer, bias < 0 ? -1 : bias + 4 * c,
                            _image, scales + 4 * c, x.Scale, trainChannels, rule, _state, -1, ref _cursors[k]);
                        break;
                    }
                }
            }
        }
        _rng = cursor;
        if (dw is not null)
            for (int k = 0; k < n; k++)
                if (_plan.Op(index + 1 + k).Phase == OpPhase.Update) GradientProbe!(index + 1 + k, dw[k], db![k]);
    }

    // Random draws an inner op takes per channel: one per trained weight and bias of that channel.
    private static int ChannelDraws(OpInfo op)
    {
        if (op.Kind == OpKind.BiasUpdate) return 1;
        if (op.Kind != OpKind.Conv2DUpdate) return 0;
        int weights = op.Weights == PlanFormat.NoConstant ? 0 : op.Arg(4) * op.Arg(0) * op.Arg(0);
        return weights + (op.Bias == PlanFormat.NoConstant ? 0 : 1);
    }

    // For the gradient probe only (tests and tools, never on a device): what each update op of the stage reports.
    private void ProbeArrays(int index, int n, int channels, out float[][] dw, out float[][] db)
    {
        dw = new float[n][];
        db = new float[n][];
        for (int k = 0; k < n; k++)
        {
            OpInfo inner = _plan.Op(index + 1 + k);
            bool weights = inner.Kind == OpKind.Conv2DUpdate && inner.Weights != PlanFormat.NoConstant;
            dw[k] = weights ? new float[channels * inner.Arg(4) * inner.Arg(0) * inner.Arg(0)] : Array.Empty<float>();
            db[k] = new float[channels];
        }
    }
}
