namespace TinyTrain.Compiler.Planning;

using TinyTrain.Compiler.Quantization;
using TinyTrain.Runtime.Plan;
using RtOpKind = TinyTrain.Runtime.Plan.OpKind;

/// <summary>One row of the compile report: an op, where its output lives, what it costs.</summary>
public sealed record OpReport(int Index, string Name, string Kind, string Output, int OutputOffset, int OutputBytes, long Macs, int ConstantBytes, bool InPlace);

/// <summary>The emitted plan image plus everything a report needs.</summary>
public sealed record EmittedPlan(byte[] Image, MemoryPlan Memory, MemoryPlan NaiveMemory, QuantizedModel Model,
    IReadOnlyList<OpReport> Ops, int ConstantBytes)
{
    public int ArenaBytes => Memory.PeakBytes;
}

/// <summary>
/// Plan memory and emit: tensor lifetimes -> arena offsets (in-place where an op allows it), then the
/// .ttplan image with constants (Flash), tensor table and op list.
/// </summary>
public static class PlanEmitter
{
    public static EmittedPlan Emit(QuantizedModel model, PlannerMode mode = PlannerMode.Greedy)
    {
        if (!model.IsQuantized) throw new InvalidOperationException("quantize the model before emitting a plan");
        int tensors = model.Tensors.Count, ops = model.Ops.Count;
        var first = new int[tensors];
        var last = new int[tensors];
        Array.Fill(last, -1);
        for (int i = 0; i < ops; i++)
        {
            QOp op = model.Ops[i];
            first[op.Output] = i;
            foreach (int x in op.Inputs) last[x] = Math.Max(last[x], i);
        }
        last[model.Output] = ops - 1;
        for (int t = 0; t < tensors; t++)
            if (last[t] < first[t]) last[t] = first[t];    // written but never read: lives through its own op

        // In place: an Add may write over its first input when that input dies at the Add.
        var buffer = new int[tensors];
        for (int t = 0; t < tensors; t++) buffer[t] = t;
        var inPlace = new bool[ops];
        for (int i = 0; i < ops; i++)
        {
            QOp op = model.Ops[i];
            int x0 = op.Inputs[0];
            if (op.Kind == QOpKind.Add && x0 != model.Input && last[x0] == i && buffer[x0] == x0 && op.Inputs[1] != x0)
            {
                buffer[op.Output] = x0;
                inPlace[i] = true;
            }
        }
        var requests = new List<BufferRequest>();
        var requestOf = new int[tensors];
        for (int t = 0; t < tensors; t++)
        {
            if (buffer[t] != t) continue;
            int size = model.Tensors[t].Shape.Size, f = first[t], l = last[t];
            for (int u = 0; u < tensors; u++)
                if (u != t && buffer[u] == t)
                {
                    size = Math.Max(size, model.Tensors[u].Shape.Size);
                    l = Math.Max(l, last[u]);
                }
            requestOf[t] = requests.Count;
            requests.Add(new BufferRequest(model.Tensors[t].Name, size, f, l));
        }
        MemoryPlan memory = MemoryPlanner.Plan(requests, mode);
        MemoryPlan naive = MemoryPlanner.Plan(requests, PlannerMode.Naive);

        var b = new PlanBuilder { ModelName = model.Name, ArenaBytes = memory.PeakBytes, NumClasses = model.NumClasses };
        var offsets = new int[tensors];
        for (int t = 0; t < tensors; t++)
        {
            QTensor q = model.Tensors[t];
            offsets[t] = memory.Offsets[requestOf[buffer[t]]];
            TensorRole role = t == model.Input ? TensorRole.Input : t == model.Output ? TensorRole.Output : TensorRole.Activation;
            b.AddTensor(q.Name, ElementType.Int8, role, q.Shape.C, q.Shape.H, q.Shape.W, offsets[t], q.Scale, q.ZeroPoint,
                t == model.Input ? Plan.NoOp : (ushort)first[t], (ushort)last[t]);
        }
        b.InputTensor = model.Input;
        b.OutputTensor = model.Output;

        var reports = new List<OpReport>();
        int constantBytes = 0;
        for (int i = 0; i < ops; i++)
        {
            QOp op = model.Ops[i];
            ushort x0 = (ushort)op.Inputs[0], x1 = op.Inputs.Length > 1 ? (ushort)op.Inputs[1] : PlanFormat.NoTensor, y = (ushort)op.Output;
            uint weights = PlanFormat.NoConstant, bias = PlanFormat.NoConstant, multiplier = PlanFormat.NoConstant, shift = PlanFormat.NoConstant;
            int opConstants = 0;
            if (op.WeightQ is not null)
            {
                weights = b.AddInt8s(op.WeightQ);
                bias = b.AddInt32s(op.BiasQ);
                multiplier = b.AddInt32s(op.Multiplier);
                shift = b.AddInt32s(op.Shift);
                opConstants = op.WeightQ.Length + 12 * op.OutChannels;
            }
            constantBytes += opConstants;
            (RtOpKind kind, int[] args) = op.Kind switch
            {
                QOpKind.Conv => (RtOpKind.Conv2D, new[] { op.Kernel, op.Stride, op.Padding, op.Groups, op.ActMin, op.ActMax }),
                QOpKind.DepthwiseConv => (RtOpKind.DepthwiseConv2D, new[] { op.Kernel, op.Stride, op.Padding, op.ActMin, op.ActMax }),
                QOpKind.FullyConnected => (RtOpKind.FullyConnected, new[] { op.ActMin, op.ActMax }),
                QOpKind.Add => (RtOpKind.Add, [.. op.AddParams!, op.ActMin, op.ActMax]),
                QOpKind.AvgPool => (RtOpKind.AvgPool, new[] { op.Kernel, op.Stride, op.ActMin, op.ActMax }),
                QOpKind.GlobalAvgPool => (RtOpKind.GlobalAvgPool, new[] { op.ActMin, op.ActMax }),
                _ => throw new InvalidOperationException($"op '{op.Name}': no plan op for {op.Kind}"),
            };
            b.AddOp(kind, OpPhase.Forward, x0, x1, y, PlanFormat.NoTensor, weights, bias, multiplier, shift, args);
            QTensor output = model.Tensors[op.Output];
            reports.Add(new OpReport(i, op.Name, kind.ToString(), output.Shape.ToString(), offsets[op.Output], output.Shape.Size,
                op.Macs(model.Tensors), opConstants, inPlace[i]));
        }
        b.ForwardOpCount = ops;
        b.FlashBytes = constantBytes;
        return new EmittedPlan(b.Build(), memory, naive, model, reports, constantBytes);
    }
}
