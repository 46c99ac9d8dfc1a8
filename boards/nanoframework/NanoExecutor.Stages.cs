namespace TinyTrain.Nano;

using TinyTrain.Runtime.Kernels;
using TinyTrain.Runtime.Plans;

// The memory options' stage ops, as src/Runtime's Executor.Patch.cs, Executor.Channel.cs and Executor.InPlace.cs run
// them: a patch stage (kind 60) runs frozen early convs tile by tile (kind 63 through residual blocks too), a channel stage (61) runs the backward of an
// expansion -> depthwise -> projection chain one expanded channel at a time, and an in-place 1x1 conv (62) writes its
// output over its dying input pixel by pixel. Each calls the same kernels on the same bytes in the same order, so the
// results are bit for bit the desktop runtime's (tests/Nano.Tests). Nothing allocates after bind.
public sealed partial class NanoExecutor
{
    /// <summary>The most inner ops a channel stage may run (as src/Runtime's Executor.MaxChannelStageOps).</summary>
    private const int MaxChannelStageOps = 8;

    private readonly uint[] _cursors = new uint[MaxChannelStageOps];

    // The geometry of the graph stage being run (src/Runtime's PatchGraph, linked): filled at each run, allocated once.
    private readonly TinyTrain.Runtime.Execution.PatchGraph _graph = new TinyTrain.Runtime.Execution.PatchGraph();

    // Runs op i (a stage runs its inner ops itself); returns how many ops after it the caller must skip.
    private int Run(OpInfo op, int i)
    {
        if (op.Kind == OpKind.PatchStage)
        {
            RunPatchStage(op, i);
            return op.Arg(0);
        }
        if (op.Kind == OpKind.PatchGraphStage)
        {
            RunPatchGraphStage(op, i);
            return op.Arg(0);
        }
        if (op.Kind == OpKind.ChannelStage)
        {
            RunChannelStage(op, i);
            return op.Arg(0);
        }
        Execute(op);
        return 0;
    }

    private static int PartStart(int size, int parts, int index)
    {
        return (int)((long)size * index / parts);
    }

    // For the stage output rows [start, end) (columns when columns is true), the output rows inner op k computes and
    // the input rows it reads, halo included (src/Runtime's PatchTiling.Range over the plan image).
    private void Range(int stage, int k, int start, int end, bool columns, out int outStart, out int outEnd, out int inStart, out int inEnd)
    {
        int n = Op(stage).Arg(0);
        outStart = start;
        outEnd = end;
        inStart = 0;
        inEnd = 0;
        for (int i = n - 1; i >= k; i--)
        {
            OpInfo op = Op(stage + 1 + i);
            if (i < n - 1)
            {
                TensorInfo y = Tensor(op.Output);
                int size = columns ? y.W : y.H;
                outStart = inStart < 0 ? 0 : inStart;
                outEnd = inEnd > size ? size : inEnd;
            }
            inStart = outStart * op.Arg(1) - op.Arg(2);
            inEnd = (outEnd - 1) * op.Arg(1) - op.Arg(2) + op.Arg(0);
        }
    }

    private void RunPatchStage(OpInfo op, int index)
    {
        int n = op.Arg(0), rows = op.Arg(1), cols = op.Arg(2);
        TensorInfo y = Tensor(op.Output), tile = Tensor(op.Scratch);
        int padded = tile.ArenaOffset, output = tile.ArenaOffset + op.Arg(3);
        TensorInfo input = Tensor(op.Input0);
        bool streamed = input.Streamed;
        int band = output + op.Arg(4), capacity = op.Arg(5), held0 = 0, held1 = 0;
        // Arg 6 > 0: the output staged over the dying input (src/Runtime's Executor.Patch.cs).
        int spill = op.Arg(6), spillAt = band + input.C * capacity * input.W;
        if (streamed)
        {
            RequireFrame();
        }
        for (int r = 0; r < rows; r++)
        {
            int y0 = PartStart(y.H, rows, r), y1 = PartStart(y.H, rows, r + 1);
            if (streamed)
            {
                // The rows the first op reads for this row of tiles (src/Runtime's PatchTiling.InputBand).
                int bo0, bo1, by0, by1;
                Range(index, 0, y0, y1, false, out bo0, out bo1, out by0, out by1);
                if (by0 < 0) by0 = 0;
                if (by1 > input.H) by1 = input.H;
                AdvanceBand(input, band, capacity, held0, held1, by0, by1);
                held0 = by0;
                held1 = by1;
            }
            for (int c = 0; c < cols; c++)
            {
                int x0 = PartStart(y.W, cols, c), x1 = PartStart(y.W, cols, c + 1);
                int th = 0, tw = 0;
                for (int k = 0; k < n; k++)
                {
                    OpInfo inner = Op(index + 1 + k);
                    int oy0, oy1, iy0, iy1, ox0, ox1, ix0, ix1;
                    Range(index, k, y0, y1, false, out oy0, out oy1, out iy0, out iy1);
                    Range(index, k, x0, x1, true, out ox0, out ox1, out ix0, out ix1);
                    TensorInfo x = Tensor(inner.Input0);
                    int sy = iy0 < 0 ? 0 : iy0, sx = ix0 < 0 ? 0 : ix0;
                    if (k == 0 && streamed)
                    {
                        PatchTile.Pad(_arena, band, x.C, x.H, x.W, held0, 0, capacity, x.W, iy0, iy1, ix0, ix1, x.ZeroPoint, padded);
                    }
                    else if (k == 0)
                    {
                        PatchTile.Pad(_arena, x.ArenaOffset, x.C, x.H, x.W, 0, 0, x.H, x.W, iy0, iy1, ix0, ix1, x.ZeroPoint, padded);
                    }
                    else
                    {
                        PatchTile.Pad(_arena, output, x.C, x.H, x.W, sy, sx, th, tw, iy0, iy1, ix0, ix1, x.ZeroPoint, padded);
                    }
                    th = oy1 - oy0;
                    tw = ox1 - ox0;
                    RunTile(inner, x, Tensor(inner.Output), iy1 - iy0, ix1 - ix0, th, tw, padded, output);
                }
                if (spill > 0)
                {
                    PatchTile.Stage(_arena, output, y.C, th, tw, input.ArenaOffset + op.Arg(7), spillAt, spill, y.W, y0, x0);
                }
                else
                {
                    PatchTile.Place(_arena, output, y.C, th, tw, y.ArenaOffset, y.H, y.W, y0, x0);
                }
            }
        }
        if (spill > 0)
        {
            PatchTile.Unstage(_arena, input.ArenaOffset + op.Arg(7), spillAt, spill, y.C, y.H, y.W, y.ArenaOffset);
        }
    }

    // A patch stage through residual blocks (kind 63), as src/Runtime's Executor.Patch.cs runs it: each inner op's output
    // tile in its slot of the tile buffer; a window op pads its source's tile, an Add adds its sources row by row.
    private void RunPatchGraphStage(OpInfo op, int index)
    {
        TinyTrain.Runtime.Execution.PatchGraph g = _graph;
        LoadGraph(g, op, index);
        int n = g.Count, rows = op.Arg(1), cols = op.Arg(2);
        long paddedBytes, slotBytes;
        g.Measure(rows, cols, out paddedBytes, out slotBytes);
        TensorInfo y = Tensor(op.Output), x = Tensor(op.Input0);
        int padded = Tensor(op.Scratch).ArenaOffset, slots = padded + op.Arg(3);
        // A streamed input: its band (after the slots) stands in for the whole input (src/Runtime's Executor.Patch.cs).
        bool streamed = x.Streamed;
        int band = slots + op.Arg(4), capacity = op.Arg(5), held0 = 0, held1 = 0;
        int inputAt = x.ArenaOffset, inputRows = x.H;
        if (streamed)
        {
            RequireFrame();
        }
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < cols; c++)
            {
                g.Ranges(PartStart(y.H, rows, r), PartStart(y.H, rows, r + 1), PartStart(y.W, cols, c), PartStart(y.W, cols, c + 1));
                if (streamed && c == 0)
                {
                    int start;
                    int count = g.StageInputRows(out start);
                    AdvanceBand(x, band, capacity, held0, held1, start, start + count);
                    held0 = start;
                    held1 = start + count;
                    inputAt = band - held0 * x.W;
                    inputRows = capacity;
                }
                for (int k = 0; k < n; k++)
                {
                    OpInfo inner = Op(index + 1 + k);
                    TensorInfo to = Tensor(inner.Output);
                    int th = g.Y1[k] - g.Y0[k], tw = g.X1[k] - g.X0[k], at = slots + g.Offset[k];
                    if (g.IsAdd[k])
                    {
                        AddTile(inner, g, k, inputAt, inputRows, x.W, to, slots, at);
                        continue;
                    }
                    int iy0, ix0;
                    int h = g.InputRows(k, out iy0), w = g.InputCols(k, out ix0);
                    int s = g.Source0[k];
                    TensorInfo from = Tensor(inner.Input0);
                    if (s == TinyTrain.Runtime.Execution.PatchGraph.StageInput && streamed)
                    {
                        PatchTile.Pad(_arena, band, x.C, x.H, x.W, held0, 0, capacity, x.W, iy0, iy0 + h, ix0, ix0 + w, x.ZeroPoint, padded);
                    }
                    else if (s == TinyTrain.Runtime.Execution.PatchGraph.StageInput)
                    {
                        PatchTile.Pad(_arena, x.ArenaOffset, x.C, x.H, x.W, 0, 0, x.H, x.W, iy0, iy0 + h, ix0, ix0 + w, x.ZeroPoint, padded);
                    }
                    else
                    {
                        PatchTile.Pad(_arena, slots + g.Offset[s], from.C, from.H, from.W, g.Y0[s], g.X0[s], g.Y1[s] - g.Y0[s], g.X1[s] - g.X0[s],
                            iy0, iy0 + h, ix0, ix0 + w, from.ZeroPoint, padded);
                    }
                    RunTile(inner, from, to, h, w, th, tw, padded, at);
                }
                PatchTile.Place(_arena, slots + g.Offset[n - 1], y.C, g.Y1[n - 1] - g.Y0[n - 1], g.X1[n - 1] - g.X0[n - 1], y.ArenaOffset, y.H, y.W,
                    g.Y0[n - 1], g.X0[n - 1]);
            }
        }
    }

    // src/Runtime's PatchGraphLoader.Load over this executor's plan image.
    private void LoadGraph(TinyTrain.Runtime.Execution.PatchGraph g, OpInfo op, int stage)
    {
        int n = op.Arg(0);
        if (n < 1 || n > TinyTrain.Runtime.Execution.PatchGraph.MaxOps || stage + n >= _opCount)
        {
            throw Unsupported(op);
        }
        g.Count = n;
        TensorInfo x = Tensor(op.Input0);
        g.InC = x.C;
        g.InH = x.H;
        g.InW = x.W;
        for (int k = 0; k < n; k++)
        {
            OpInfo inner = Op(stage + 1 + k);
            bool add = inner.Kind == OpKind.Add;
            g.IsAdd[k] = add;
            g.Kernel[k] = add ? 1 : inner.Arg(0);
            g.Stride[k] = add ? 1 : inner.Arg(1);
            g.Pad[k] = add ? 0 : inner.Arg(2);
            TensorInfo t = Tensor(inner.Output);
            g.C[k] = t.C;
            g.H[k] = t.H;
            g.W[k] = t.W;
            g.Source0[k] = FindSource(stage, k, op.Input0, inner.Input0);
            g.Source1[k] = add ? FindSource(stage, k, op.Input0, inner.Input1) : TinyTrain.Runtime.Execution.PatchGraph.None;
            if (g.Source0[k] == int.MinValue || g.Source1[k] == int.MinValue)
            {
                throw Unsupported(op);
            }
        }
    }

    private int FindSource(int stage, int k, int stageInput, int tensor)
    {
        if (tensor == stageInput)
        {
            return TinyTrain.Runtime.Execution.PatchGraph.StageInput;
        }
        for (int i = k - 1; i >= 0; i--)
        {
            if (Op(stage + 1 + i).Output == tensor)
            {
                return i;
            }
        }
        return int.MinValue;
    }

    // An inner Add on one tile, one row of one channel at a time (src/Runtime's Executor.AddTile).
    private void AddTile(OpInfo op, TinyTrain.Runtime.Execution.PatchGraph g, int k, int inputAt, int inputRows, int inputW, TensorInfo y, int slots, int at)
    {
        TensorInfo x0 = Tensor(op.Input0), x1 = Tensor(op.Input1);
        int th = g.Y1[k] - g.Y0[k], tw = g.X1[k] - g.X0[k];
        var p = new AddParams
        {
            Count = tw,
            Input0ZeroPoint = x0.ZeroPoint, Input0Multiplier = op.Arg(0), Input0Shift = op.Arg(1),
            Input1ZeroPoint = x1.ZeroPoint, Input1Multiplier = op.Arg(2), Input1Shift = op.Arg(3),
            OutputZeroPoint = y.ZeroPoint, OutputMultiplier = op.Arg(4), OutputShift = op.Arg(5), LeftShift = op.Arg(6),
            ActMin = op.Arg(7), ActMax = op.Arg(8),
        };
        for (int ch = 0; ch < y.C; ch++)
        {
            for (int row = 0; row < th; row++)
            {
                int yy = g.Y0[k] + row, xx = g.X0[k];
                Add.RunReference(p, _arena, g.Element(g.Source0[k], inputAt, inputRows, inputW, slots, ch, yy, xx), _arena, g.Element(g.Source1[k], inputAt, inputRows, inputW, slots, ch, yy, xx),
                    _arena, at + (ch * th + row) * tw);
            }
        }
    }

    // Moves a streamed input's band from frame rows [held0, held1) to [y0, y1), reading only the new rows (PatchTile.Advance).
    private void AdvanceBand(TensorInfo x, int band, int capacity, int held0, int held1, int y0, int y1)
    {
        PatchTile.Advance(_arena, band, capacity, x.C, x.H, x.W, held0, held1, y0, y1, _frameBytes, _frameFloats, _frameOffset, 1f / x.Scale, x.ZeroPoint);
    }

    // One inner op of a patch stage on one tile: padded input tile (h, w) to output tile (oh, ow), no padding, no mask.
    private void RunTile(OpInfo op, TensorInfo x, TensorInfo y, int h, int w, int oh, int ow, int from, int to)
    {
        OpFlags flags = op.Flags;
        byte[] wBuffer = (flags & OpFlags.WeightsInParams) != 0 ? _params : _image;
        byte[] bBuffer = (flags & OpFlags.BiasInParams) != 0 ? _params : _image;
        int weights = Ref(op.Weights, flags, OpFlags.WeightsInParams), bias = Ref(op.Bias, flags, OpFlags.BiasInParams);
        int mult = Const(op.Multiplier), shift = Const(op.Shift);
        if (op.Kind == OpKind.Conv2D)
        {
            var p = new ConvParams
            {
                InC = x.C, H = h, W = w, OutC = y.C, OH = oh, OW = ow,
                Kernel = op.Arg(0), Stride = op.Arg(1), Pad = 0, Groups = op.Arg(3),
                InputZeroPoint = x.ZeroPoint, OutputZeroPoint = y.ZeroPoint, ActMin = op.Arg(4), ActMax = op.Arg(5),
            };
            Conv2D.RunReference(p, _arena, from, wBuffer, weights, bBuffer, bias, _image, mult, shift, _arena, to, null, -1, 0);
        }
        else if (op.Kind == OpKind.DepthwiseConv2D)
        {
            var p = new DepthwiseParams
            {
                C = x.C, H = h, W = w, OH = oh, OW = ow, Kernel = op.Arg(0), Stride = op.Arg(1), Pad = 0,
                InputZeroPoint = x.ZeroPoint, OutputZeroPoint = y.ZeroPoint, ActMin = op.Arg(3), ActMax = op.Arg(4),
            };
            DepthwiseConv2D.RunReference(p, _arena, from, wBuffer, weights, bBuffer, bias, _image, mult, shift, _arena, to, null, -1, 0);
        }
        else
        {
            throw Unsupported(op);
        }
    }

    private void RunChannelStage(OpInfo op, int index)
    {
        int n = op.Arg(0), channels = op.Arg(1), planeFloats = op.Arg(2);
        if (n > MaxChannelStageOps)
        {
            throw Unsupported(op);
        }
        int slot0 = Tensor(op.Scratch).ArenaOffset, slot1 = slot0 + 4 * planeFloats;

        // Where each update op's draws start: after every draw of the update ops before it, channel after channel.
        uint cursor = _rng;
        for (int k = 0; k < n; k++)
        {
            long draws = (long)channels * ChannelDraws(Op(index + 1 + k));
            _cursors[k] = cursor;
            for (long d = 0; d < draws; d++)
            {
                StochasticRounding.Next(ref cursor);
            }
        }

        for (int c = 0; c < channels; c++)
        {
            int held0 = -1, held1 = -1;
            for (int k = 0; k < n; k++)
            {
                OpInfo inner = Op(index + 1 + k);
                OpFlags flags = inner.Flags;
                byte[] wBuffer = (flags & OpFlags.WeightsInParams) != 0 ? _params : _image;
                byte[] bBuffer = (flags & OpFlags.BiasInParams) != 0 ? _params : _image;
                int w = Ref(inner.Weights, flags, OpFlags.WeightsInParams), bias = Ref(inner.Bias, flags, OpFlags.BiasInParams);
                int scales = Const(inner.Multiplier);
                if (inner.Kind == OpKind.Conv2DBackwardInput)
                {
                    TensorInfo dy = Tensor(inner.Input0), dx = Tensor(inner.Output);
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
                        {
                            wBuffer = _params;
                            w = AssembleRow(w, inner.Arg(5), dx.C, inner.Arg(4), c) - c * dx.C;
                        }
                        ChannelGradient.Row(_arena, at, dx.H * dx.W, wBuffer, w, dx.C, c, _image, scales, _arena, dx.ArenaOffset, c == 0);
                    }
                }
                else if (inner.Kind == OpKind.MaskGradient)
                {
                    TensorInfo mask = Tensor(inner.Input0), dy = Tensor(inner.Input1);
                    bool first = held0 == inner.Input1;
                    int at = first ? slot0 : slot1, plane = dy.H * dy.W;
                    ChannelGradient.Mask(_arena, mask.ArenaOffset, (long)c * plane, _arena, at, plane, _arena, at);
                    if (first)
                    {
                        held0 = inner.Output;
                    }
                    else
                    {
                        held1 = inner.Output;
                    }
                }
                else if (inner.Kind == OpKind.DepthwiseBackwardInput)
                {
                    TensorInfo dy = Tensor(inner.Input0), dx = Tensor(inner.Output);
                    bool first = held0 == inner.Input0;
                    int from = first ? slot0 : slot1, to = first ? slot1 : slot0, taps = inner.Arg(0) * inner.Arg(0);
                    var p = new DepthwiseParams
                    {
                        C = 1, H = dx.H, W = dx.W, OH = dy.H, OW = dy.W, Kernel = inner.Arg(0), Stride = inner.Arg(1), Pad = inner.Arg(2), ActMin = -128, ActMax = 127,
                    };
                    DepthwiseConv2D.BackwardInputReference(p, _arena, from, wBuffer, w + c * taps, _image, scales + 4 * c, _arena, to, false);
                    if (first)
                    {
                        held1 = inner.Output;
                    }
                    else
                    {
                        held0 = inner.Output;
                    }
                }
                else if (inner.Kind == OpKind.BiasUpdate)
                {
                    TensorInfo dy = Tensor(inner.Input0);
                    int at = held0 == inner.Input0 ? slot0 : slot1, plane = dy.H * dy.W, state = inner.Arg(2);
                    var rule = new UpdateRule { LearningRate = LearningRate, Momentum = Momentum, Qas = inner.Arg(1) != 0 };
                    Training.BiasUpdate(_arena, at, 1, plane, bBuffer, bias + 4 * c, _image, scales + 4 * c, FloatBits.FromBits(inner.Arg(0)),
                        rule, _state, state < 0 ? -1 : state + 4 * c, ref _cursors[k]);
                }
                else if (inner.Kind == OpKind.Conv2DUpdate)
                {
                    // One group, no momentum: output channel c.
                    TensorInfo x = Tensor(inner.Input0), dy = Tensor(inner.Input1);
                    int at = held0 == inner.Input1 ? slot0 : slot1, kernel = inner.Arg(0), trainChannels = inner.Arg(4);
                    var p = new ConvParams
                    {
                        InC = x.C, H = x.H, W = x.W, OutC = 1, OH = dy.H, OW = dy.W,
                        Kernel = kernel, Stride = inner.Arg(1), Pad = inner.Arg(2), Groups = 1,
                        InputZeroPoint = x.ZeroPoint, ActMin = -128, ActMax = 127,
                    };
                    var rule = new UpdateRule { LearningRate = LearningRate, Momentum = Momentum, Qas = inner.Arg(5) != 0 };
                    // A trained slice: the kernel on x's first trainChannels channels, the slice's row c as the whole row (Executor.Sliced.cs).
                    int row = (flags & OpFlags.WeightsSliced) != 0 ? trainChannels : x.C;
                    p.InC = row;
                    Conv2D.Update(p, _arena, x.ArenaOffset, _arena, at, wBuffer, w < 0 ? -1 : w + c * row * kernel * kernel, bBuffer, bias < 0 ? -1 : bias + 4 * c,
                        _image, scales + 4 * c, x.Scale, trainChannels, rule, _state, -1, ref _cursors[k]);
                }
                else
                {
                    throw Unsupported(inner);
                }
            }
        }
        _rng = cursor;
    }

    // Random draws an inner op takes per channel: one per trained weight and bias of that channel.
    private static int ChannelDraws(OpInfo op)
    {
        if (op.Kind == OpKind.BiasUpdate)
        {
            return 1;
        }
        if (op.Kind != OpKind.Conv2DUpdate)
        {
            return 0;
        }
        int weights = op.Weights == PlanFormat.NoConstant ? 0 : op.Arg(4) * op.Arg(0) * op.Arg(0);
        return weights + (op.Bias == PlanFormat.NoConstant ? 0 : 1);
    }

    // A 1x1 conv over its dying input, pixel by pixel: output byte (o, i) lies over input byte (o, i) of the same
    // pixel, which was gathered into the scratch before the kernel ran on that pixel.
    private void PointwiseInPlace(OpInfo op)
    {
        TensorInfo x = Tensor(op.Input0), y = Tensor(op.Output);
        OpFlags flags = op.Flags;
        byte[] wBuffer = (flags & OpFlags.WeightsInParams) != 0 ? _params : _image;
        byte[] bBuffer = (flags & OpFlags.BiasInParams) != 0 ? _params : _image;
        int w = Ref(op.Weights, flags, OpFlags.WeightsInParams), bias = Ref(op.Bias, flags, OpFlags.BiasInParams);
        int mult = Const(op.Multiplier), shift = Const(op.Shift);
        var p = new ConvParams
        {
            InC = x.C, H = 1, W = 1, OutC = y.C, OH = 1, OW = 1, Kernel = 1, Stride = 1, Pad = 0, Groups = 1,
            InputZeroPoint = x.ZeroPoint, OutputZeroPoint = y.ZeroPoint, ActMin = op.Arg(4), ActMax = op.Arg(5),
        };
        int plane = x.H * x.W, pixel = Tensor(op.Scratch).ArenaOffset, result = pixel + x.C;
        for (int i = 0; i < plane; i++)
        {
            for (int c = 0; c < x.C; c++)
            {
                _arena[pixel + c] = _arena[x.ArenaOffset + c * plane + i];
            }
            Conv2D.RunReference(p, _arena, pixel, wBuffer, w, bBuffer, bias, _image, mult, shift, _arena, result, null, -1, 0);
            for (int o = 0; o < y.C; o++)
            {
                _arena[y.ArenaOffset + o * plane + i] = _arena[result + o];
            }
        }
    }
}
