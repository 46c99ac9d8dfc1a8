namespace TinyTrain.Emulator.CostModel;

using TinyTrain.Compiler.Boards;
using TinyTrain.Runtime.Execution;
using TinyTrain.Runtime.Plans;
using PlanImage = TinyTrain.Runtime.Plans.Plan;
using RtOpKind = TinyTrain.Runtime.Plans.OpKind;

/// <summary>Which of the board's throughput figures an op's multiply-accumulates run at.</summary>
public enum MacKind { None, Conv, Depthwise, Pointwise }

/// <summary>
/// One op's estimated work: multiply-accumulates at one of the board's rates, plus bytes moved at the board's
/// memory rate. Cycles = Macs / macsPerCycle + Bytes / memoryBytesPerCycle (README.md says why each term).
/// </summary>
public readonly record struct OpCost(int Index, RtOpKind Kind, OpPhase Phase, MacKind MacKind, long Macs, long Bytes, double Cycles);

/// <summary>A plan's estimated time on one board: per op, per inference (forward ops) and per training step.</summary>
public sealed record CostEstimate(string BoardId, int ClockMhz, IReadOnlyList<OpCost> Ops, double InferenceCycles, double TrainStepCycles)
{
    public double MsPerInference => InferenceCycles / (ClockMhz * 1000.0);

    /// <summary>Null when the plan has no backward pass (an inference plan).</summary>
    public double? MsPerTrainStep => TrainStepCycles > InferenceCycles ? TrainStepCycles / (ClockMhz * 1000.0) : null;

    public long InferenceMacs => Sum(o => o.Phase == OpPhase.Forward, o => o.Macs);
    public long TrainStepMacs => Sum(o => o.Phase != OpPhase.Init, o => o.Macs);

    private long Sum(Func<OpCost, bool> where, Func<OpCost, long> what)
    {
        long total = 0;
        foreach (OpCost o in Ops)
            if (where(o)) total += what(o);
        return total;
    }
}

/// <summary>
/// The documented latency model (emulator/CostModel/README.md): for every op of a plan, its MACs over the board's
/// MACs per cycle for that kind of op, plus the bytes it reads and writes over the board's memory bytes per cycle.
/// It reads only the plan (shapes and op arguments) and the board profile, so it estimates any plan file.
/// </summary>
public static class CostEstimator
{
    /// <summary>Bytes of per-output-channel constants a forward conv or linear op reads: int32 bias, Q31 multiplier, shift.</summary>
    public const int ForwardChannelConstantBytes = 12;

    /// <summary>Bytes of per-output-channel constants a backward or update op reads: the float32 weight scale.</summary>
    public const int ScaleBytes = 4;

    public static CostEstimate Estimate(PlanImage plan, BoardProfile board)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(board);
        BoardThroughput t = board.Throughput;
        var ops = new OpCost[plan.OpCount];
        double inference = 0, step = 0;
        for (int i = 0; i < plan.OpCount; i++)
        {
            OpCost cost = Op(plan, i, t);
            ops[i] = cost;
            // Executor.Invoke runs the Forward ops; TrainStep runs every op but Init (which runs at bind).
            if (cost.Phase == OpPhase.Forward && i < plan.ForwardOpCount) inference += cost.Cycles;
            if (cost.Phase != OpPhase.Init) step += cost.Cycles;
        }
        return new CostEstimate(board.Id, board.ClockMhz, ops, inference, step);
    }

    /// <summary>The MACs, bytes and cycles of op <paramref name="index"/> of <paramref name="plan"/>.</summary>
    public static OpCost Op(PlanImage plan, int index, BoardThroughput throughput)
    {
        OpInfo op = plan.Op(index);
        (MacKind kind, long macs, long bytes) = Work(plan, op, index);
        double rate = kind switch
        {
            MacKind.Conv => throughput.ConvMacsPerCycle,
            MacKind.Depthwise => throughput.DepthwiseMacsPerCycle,
            MacKind.Pointwise => throughput.PointwiseMacsPerCycle,
            _ => 0,
        };
        double cycles = (macs > 0 ? macs / rate : 0) + bytes / throughput.MemoryBytesPerCycle;
        return new OpCost(index, op.Kind, op.Phase, kind, macs, bytes, cycles);
    }

    // Shapes: x (C,H,W) is Input0, y the Output; for backward ops x is dy and the output dx.
    private static (MacKind Kind, long Macs, long Bytes) Work(PlanImage plan, OpInfo op, int index)
    {
        switch (op.Kind)
        {
            case RtOpKind.Conv2D:
            case RtOpKind.PointwiseInPlace: // a 1x1 Conv2D run pixel by pixel over its input: the same work
            {
                // x (IC,H,W), w (OC,IC/G,K,K), y (OC,OH,OW)
                TensorInfo x = plan.Tensor(op.Input0), y = plan.Tensor(op.Output);
                int kernel = op.Arg(0), groups = op.Arg(3);
                long weights = (long)y.C * (x.C / groups) * kernel * kernel;
                long macs = weights * y.H * y.W;
                return (ConvKind(kernel), macs, x.ByteLength + y.ByteLength + weights + (long)ForwardChannelConstantBytes * y.C);
            }
            case RtOpKind.DepthwiseConv2D:
            {
                // x (C,H,W), w (C,1,K,K), y (C,OH,OW)
                TensorInfo x = plan.Tensor(op.Input0), y = plan.Tensor(op.Output);
                int kernel = op.Arg(0);
                long weights = (long)y.C * kernel * kernel;
                return (MacKind.Depthwise, weights * y.H * y.W, x.ByteLength + y.ByteLength + weights + (long)ForwardChannelConstantBytes * y.C);
            }
            case RtOpKind.FullyConnected:
            {
                // x flat (IN), w (OUT, IN), y (OUT)
                TensorInfo x = plan.Tensor(op.Input0), y = plan.Tensor(op.Output);
                long weights = (long)x.ElementCount * y.C;
                return (MacKind.Pointwise, weights, x.ByteLength + y.ByteLength + weights + (long)ForwardChannelConstantBytes * y.C);
            }
            case RtOpKind.Conv2DBackwardInput:
            {
                // dy (OC,OH,OW) -> dx (IC,H,W): the transposed conv, the same MACs as the forward conv.
                TensorInfo dy = plan.Tensor(op.Input0), dx = plan.Tensor(op.Output);
                int kernel = op.Arg(0), groups = op.Arg(3);
                long weights = (long)dy.C * (dx.C / groups) * kernel * kernel;
                return (ConvKind(kernel), weights * dy.H * dy.W,
                    dy.ByteLength + Written(dx, op) + weights + (long)ScaleBytes * dy.C);
            }
            case RtOpKind.DepthwiseBackwardInput:
            {
                TensorInfo dy = plan.Tensor(op.Input0), dx = plan.Tensor(op.Output);
                int kernel = op.Arg(0);
                long weights = (long)dy.C * kernel * kernel;
                return (MacKind.Depthwise, weights * dy.H * dy.W, dy.ByteLength + Written(dx, op) + weights + (long)ScaleBytes * dy.C);
            }
            case RtOpKind.FullyConnectedBackwardInput:
            {
                // dy (OUT) -> dx (IN) = W^T dy
                TensorInfo dy = plan.Tensor(op.Input0), dx = plan.Tensor(op.Output);
                long weights = (long)dx.ElementCount * dy.ElementCount;
                return (MacKind.Pointwise, weights, dy.ByteLength + Written(dx, op) + weights + (long)ScaleBytes * dy.ElementCount);
            }
            case RtOpKind.Conv2DUpdate:
            {
                // x (IC,H,W) saved input, dy (OC,OH,OW); trains the first k input channels (per group) of every output channel.
                TensorInfo x = plan.Tensor(op.Input0), dy = plan.Tensor(op.Input1);
                int kernel = op.Arg(0), k = op.Arg(4);
                long trained = (long)dy.C * k * kernel * kernel;
                long inputRead = x.C == 0 ? 0 : x.ByteLength * (long)Math.Min(k * op.Arg(3), x.C) / x.C;
                return (ConvKind(kernel), trained * dy.H * dy.W, inputRead + dy.ByteLength + UpdateBytes(op, trained, dy.C));
            }
            case RtOpKind.DepthwiseUpdate:
            {
                // x (C,H,W), dy (C,OH,OW); trains the first k channels.
                TensorInfo x = plan.Tensor(op.Input0), dy = plan.Tensor(op.Input1);
                int kernel = op.Arg(0), k = op.Arg(3);
                long trained = (long)k * kernel * kernel;
                long inputRead = x.C == 0 ? 0 : x.ByteLength * (long)k / x.C;
                return (MacKind.Depthwise, trained * dy.H * dy.W, inputRead + dy.ByteLength + UpdateBytes(op, trained, dy.C));
            }
            case RtOpKind.FullyConnectedUpdate:
            {
                // x (IN), dy (OUT); trains the first k inputs of every output.
                TensorInfo x = plan.Tensor(op.Input0), dy = plan.Tensor(op.Input1);
                int k = op.Arg(0);
                long trained = (long)dy.ElementCount * k;
                return (MacKind.Pointwise, trained, Math.Min(k, x.ByteLength) + dy.ByteLength + UpdateBytes(op, trained, dy.ElementCount));
            }
            case RtOpKind.PatchStage:
            {
                // Its inner ops follow and are costed whole; the stage adds the halos they recompute and the tile copies.
                TensorInfo y = plan.Tensor(op.Output);
                int n = op.Arg(0), rows = op.Arg(1), cols = op.Arg(2);
                long extra = 0, moved = 2L * y.ByteLength;
                for (int k = 0; k < n; k++)
                {
                    TensorInfo iy = plan.Tensor(plan.Op(index + 1 + k).Output);
                    extra -= MacsPerPosition(plan, index + 1 + k) * iy.H * iy.W;
                    for (int r = 0; r < rows; r++)
                        for (int c = 0; c < cols; c++)
                        {
                            PatchTiling.Range(plan, index, k, PatchTiling.PartStart(y.H, rows, r), PatchTiling.PartStart(y.H, rows, r + 1), false,
                                out int oy0, out int oy1, out int iy0, out int iy1);
                            PatchTiling.Range(plan, index, k, PatchTiling.PartStart(y.W, cols, c), PatchTiling.PartStart(y.W, cols, c + 1), true,
                                out int ox0, out int ox1, out int ix0, out int ix1);
                            extra += MacsPerPosition(plan, index + 1 + k) * (oy1 - oy0) * (ox1 - ox0);
                            moved += 2L * plan.Tensor(plan.Op(index + 1 + k).Input0).C * (iy1 - iy0) * (ix1 - ix0);
                        }
                }
                return (MacKind.Conv, extra, moved);
            }
            case RtOpKind.PatchGraphStage:
            {
                // As a chain stage: the halos the inner ops recompute (each op's tile covers what its readers need) and the copies.
                TensorInfo y = plan.Tensor(op.Output);
                int rows = op.Arg(1), cols = op.Arg(2);
                var g = new PatchGraph();
                PatchGraphLoader.Load(g, plan, index);
                long extra = 0, moved = 2L * y.ByteLength;
                for (int k = 0; k < g.Count; k++)
                    if (!g.IsAdd[k]) extra -= MacsPerPosition(plan, index + 1 + k) * g.H[k] * g.W[k];
                for (int r = 0; r < rows; r++)
                    for (int c = 0; c < cols; c++)
                    {
                        g.Ranges(PatchTiling.PartStart(y.H, rows, r), PatchTiling.PartStart(y.H, rows, r + 1),
                            PatchTiling.PartStart(y.W, cols, c), PatchTiling.PartStart(y.W, cols, c + 1));
                        for (int k = 0; k < g.Count; k++)
                        {
                            if (g.IsAdd[k]) continue;
                            extra += MacsPerPosition(plan, index + 1 + k) * (g.Y1[k] - g.Y0[k]) * (g.X1[k] - g.X0[k]);
                            moved += 2L * g.SourceChannels(g.Source0[k]) * g.InputRows(k, out _) * g.InputCols(k, out _);
                        }
                    }
                return (MacKind.Conv, extra, moved);
            }
            case RtOpKind.ChannelStage:
                // Its inner ops follow and are costed whole (their tiled tensors have their whole shapes); each channel's
                // first op re-reads the stage input, which the first inner op's cost counts once.
                return (MacKind.None, 0, (long)(op.Arg(1) - 1) * plan.Tensor(op.Input0).ByteLength);
            case RtOpKind.InitParams:
                // Runs at bind and reset, never in a step: copies args[0] bytes from Flash to SRAM.
                return (MacKind.None, 0, 2L * op.Arg(0));
            default:
            {
                // Elementwise and data movement (Add, pools, masks, loss, gradient sums): every tensor read and written once.
                long bytes = plan.Tensor(op.Input0).ByteLength;
                if (op.Input1 != PlanFormat.NoTensor) bytes += plan.Tensor(op.Input1).ByteLength;
                if (op.Output != PlanFormat.NoTensor)
                {
                    TensorInfo y = plan.Tensor(op.Output);
                    bytes += Written(y, op);
                }
                return (MacKind.None, 0, bytes);
            }
        }
    }

    // Multiply-accumulates per output position (all channels) of a Conv2D or DepthwiseConv2D op.
    private static long MacsPerPosition(PlanImage plan, int index)
    {
        OpInfo op = plan.Op(index);
        long taps = (long)op.Arg(0) * op.Arg(0) * plan.Tensor(op.Output).C;
        return op.Kind == RtOpKind.DepthwiseConv2D ? taps : plan.Tensor(op.Input0).C / op.Arg(3) * taps;
    }

    private static MacKind ConvKind(int kernel) => kernel == 1 ? MacKind.Pointwise : MacKind.Conv;

    // An accumulated gradient is read and written; any other output only written.
    private static long Written(TensorInfo y, OpInfo op) => (op.Flags & OpFlags.Accumulate) != 0 ? 2L * y.ByteLength : y.ByteLength;

    // The trained int8 weights and int32 biases are read and written back; the float32 scales read; momentum read and written.
    private static long UpdateBytes(OpInfo op, long trainedWeights, int outChannels)
    {
        long biases = op.Bias != PlanFormat.NoConstant ? outChannels : 0;
        long bytes = 2 * trainedWeights + 2 * 4 * biases + (long)ScaleBytes * outChannels;
        int stateArg = op.Kind switch { RtOpKind.Conv2DUpdate => 6, RtOpKind.DepthwiseUpdate => 5, _ => 2 };
        if (op.Arg(stateArg) >= 0) bytes += 2 * 4 * (trainedWeights + biases);
        return bytes;
    }
}
