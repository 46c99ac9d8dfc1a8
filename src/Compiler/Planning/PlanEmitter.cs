namespace TinyTrain.Compiler.Planning;

using TinyTrain.Compiler.Learning;
using TinyTrain.Runtime.Plans;
using RtOpKind = TinyTrain.Runtime.Plans.OpKind;

/// <summary>One row of the compile report: an op, where its output lives, what it costs.</summary>
public sealed record OpReport(int Index, string Name, string Kind, string Phase, string Output, int OutputOffset, int OutputBytes,
    long Macs, int ConstantBytes, bool InPlace);

/// <summary>Bytes of the arena live at the step's busiest moment, by what they hold.</summary>
public sealed record PeakBreakdown(int OpIndex, string OpName, int ActivationBytes, int SavedForBackwardBytes, int GradientBytes, int ScratchBytes)
{
    public int Total => ActivationBytes + SavedForBackwardBytes + GradientBytes + ScratchBytes;
}

/// <summary>The emitted plan image plus everything a report needs.</summary>
public sealed record EmittedPlan(byte[] Image, MemoryPlan Memory, MemoryPlan NaiveMemory, PlanProgram Program,
    IReadOnlyList<OpReport> Ops, int ConstantBytes, int ParamBytes, int StateBytes, PeakBreakdown Peak)
{
    public int ArenaBytes => Memory.PeakBytes;
    /// <summary>SRAM of one step: the arena, the writable parameters and the optimizer state.</summary>
    public int SramBytes => ArenaBytes + ParamBytes + StateBytes;
}

/// <summary>
/// Plan memory and emit: lifetimes of every tensor of the step -> arena offsets (in place where an
/// elementwise op allows it), writable parameters -> the params region (filled by Init ops), optimizer
/// state -> the state region, constants -> Flash; then the .ttplan image.
/// </summary>
public static class PlanEmitter
{
    /// <param name="inPlaceDepthwise">A depthwise conv (forward without a mask, or its input gradient) whose input dies at
    /// it writes its output one channel plane below the input, over the planes already read (see Executor.InPlace.cs).</param>
    /// <param name="channelBackward">Run the backward of expansion -> depthwise -> projection chains one expanded channel
    /// at a time (<see cref="ChannelStages"/>), so that their float32 gradients never exist whole.</param>
    /// <param name="inPlacePointwise">A 1x1 conv without a mask whose input dies at it writes its output over that input,
    /// pixel by pixel (<see cref="RtOpKind.PointwiseInPlace"/>).</param>
    public static EmittedPlan Emit(PlanProgram program, PlannerMode mode = PlannerMode.Greedy, string? board = null, bool inPlaceDepthwise = false,
        bool channelBackward = false, bool inPlacePointwise = false)
    {
        if (inPlaceDepthwise) program = BiasUpdatesFirst(program);
        if (channelBackward) program = ChannelStages.Apply(program);
        if (!inPlacePointwise) return EmitProgram(program, mode, board, inPlaceDepthwise);
        // Placing a 1x1 conv's output over its input's planes constrains the greedy layout; it usually pays, but not always:
        // keep the smaller arena (the plan without it on a tie).
        EmittedPlan without = EmitProgram(program, mode, board, inPlaceDepthwise);
        PlanProgram pointwise = PointwiseInPlace(program);
        if (ReferenceEquals(pointwise, program)) return without;
        EmittedPlan with = EmitProgram(pointwise, mode, board, inPlaceDepthwise);
        return with.ArenaBytes < without.ArenaBytes ? with : without;
    }

    private static EmittedPlan EmitProgram(PlanProgram program, PlannerMode mode, string? board, bool inPlaceDepthwise)
    {
        List<PTensor> tensors = program.Tensors;
        List<POp> ops = program.Ops;
        int tensorCount = tensors.Count, opCount = ops.Count;

        // Writable parameters, in order of first use.
        var paramOffset = new Dictionary<ParamSlot, int>(ReferenceEqualityComparer.Instance);
        var slots = new List<ParamSlot>();
        HashSet<ParamSlot> sliced = TrainedSlices.Sliced(program);
        int paramBytes = 0;
        foreach (POp op in ops)
            foreach (DataRef? r in new[] { op.Weights, op.Bias })
                if (r?.Param is { } slot && !paramOffset.ContainsKey(slot))
                {
                    paramOffset[slot] = paramBytes;
                    slots.Add(slot);
                    paramBytes = Align4(paramBytes + (sliced.Contains(slot) ? slot.SliceBytes : slot.Initial.Length));
                }
        // The row buffer of sliced weights: one row of the widest, after every slot (OpFlags.WeightsSliced).
        int rowBuffer = 0;
        foreach (ParamSlot slot in sliced) rowBuffer = Math.Max(rowBuffer, slot.SliceInChannels);
        paramBytes = Align4(paramBytes + rowBuffer);

        // Lifetimes, in program op indices.
        var first = new int[tensorCount];
        var last = new int[tensorCount];
        Array.Fill(first, int.MaxValue);
        Array.Fill(last, -1);
        first[program.Input] = 0;
        int lastForward = -1;
        for (int j = 0; j < opCount; j++)
        {
            POp op = ops[j];
            if (op.Phase is OpPhase.Forward or OpPhase.Save) lastForward = j;
            foreach (int t in new[] { op.Input0, op.Input1 })
                if (t >= 0) last[t] = Math.Max(last[t], j);
            if (op.Output >= 0) first[op.Output] = Math.Min(first[op.Output], j);
            if (op.Scratch >= 0) first[op.Scratch] = Math.Min(first[op.Scratch], j);
        }
        last[program.Output] = Math.Max(last[program.Output], lastForward);
        for (int t = 0; t < tensorCount; t++)
        {
            if (first[t] == int.MaxValue) first[t] = 0;
            if (last[t] < first[t]) last[t] = first[t];
        }

        // In place: an elementwise op may write over an input whose buffer dies at that op.
        var root = new int[tensorCount];
        for (int t = 0; t < tensorCount; t++) root[t] = t;
        var delta = new int[tensorCount]; // a tensor's offset inside its group's buffer
        var groupLast = (int[])last.Clone();
        var inPlace = new bool[opCount];
        for (int j = 0; j < opCount; j++)
        {
            POp op = ops[j];
            if (inPlaceDepthwise && ChannelInPlace(program, op, root, groupLast, j))
            {
                // The output goes below the input by ChannelGap: make room under the input's group when it has none.
                int x = op.Input0, r = root[x], gap = ChannelGap(tensors[x], tensors[op.Output]);
                if (delta[x] < gap)
                {
                    int shift = gap - delta[x];
                    for (int t = 0; t < tensorCount; t++)
                        if (root[t] == r) delta[t] += shift;
                }
                root[op.Output] = r;
                delta[op.Output] = delta[x] - gap;
                groupLast[r] = Math.Max(groupLast[r], last[op.Output]);
                inPlace[j] = true;
                continue;
            }
            if (!op.MayRunInPlace || op.Output < 0) continue;
            foreach (int x in new[] { op.Input0, op.Input1 })
            {
                // A tile of a patch stage has no buffer of its own to write over.
                if (x < 0 || x == program.Input || x == op.Output || tensors[x].Tiled || tensors[op.Output].Tiled) continue;
                int r = root[x];
                if (groupLast[r] != j || tensors[x].Bytes != tensors[op.Output].Bytes || tensors[x].Type != tensors[op.Output].Type) continue;
                if (op.Input0 == op.Input1) continue;
                root[op.Output] = r;
                delta[op.Output] = delta[x];
                groupLast[r] = Math.Max(groupLast[r], last[op.Output]);
                inPlace[j] = true;
                break;
            }
        }
        var groupBytes = new int[tensorCount];
        for (int t = 0; t < tensorCount; t++)
            if (tensors[t].InArena) groupBytes[root[t]] = Math.Max(groupBytes[root[t]], delta[t] + tensors[t].Bytes);
        var requests = new List<BufferRequest>();
        var requestOf = new int[tensorCount];
        for (int t = 0; t < tensorCount; t++)
        {
            if (root[t] != t) continue;
            requestOf[t] = requests.Count;
            // A tiled tensor (inside a patch stage) takes no arena: the stage's tile buffer holds its tiles.
            requests.Add(new BufferRequest(tensors[t].Name, groupBytes[t], first[t], groupLast[t]));
        }
        // A 1x1 conv's output may start at any whole plane of its dying input (PointwiseInPlace) where that plane is free.
        foreach (POp op in ops)
        {
            if (op.Kind != RtOpKind.PointwiseInPlace) continue;
            int x = op.Input0, y = op.Output, r = requestOf[root[y]];
            int plane = tensors[x].Shape.H * tensors[x].Shape.W;
            requests[r] = requests[r] with
            {
                Anchor = requestOf[root[x]], AnchorDelta = delta[x] - delta[y], AnchorStep = plane,
                AnchorSteps = Math.Max(0, tensors[x].Shape.C - tensors[y].Shape.C),
            };
        }
        // A patch stage that stages its output over its dying input (arg 6) may have it at the input's start (staged at byte
        // arg 7 > 0) or end (staged at byte 0).
        foreach (POp op in ops)
        {
            if (op.Kind != RtOpKind.PatchStage || op.Args.Length < 7 || op.Args[6] == 0) continue;
            int x = op.Input0, y = op.Output, r = requestOf[root[y]];
            requests[r] = requests[r] with
            {
                Anchor = requestOf[root[x]], AnchorStep = 0, AnchorSteps = 0,
                AnchorDelta = delta[x] + (op.Args[7] > 0 ? 0 : tensors[x].Bytes - tensors[y].Bytes) - delta[y],
            };
        }
        MemoryPlan memory = MemoryPlanner.Plan(requests, mode);
        MemoryPlan naive = MemoryPlanner.Plan(requests, PlannerMode.Naive);
        PeakBreakdown peak = Breakdown(program, requests, requestOf, root, first, groupLast, memory.Offsets);

        var b = new PlanBuilder { ModelName = program.Name, ArenaBytes = memory.PeakBytes, NumClasses = program.NumClasses, Board = board ?? "" };
        var constants = new Dictionary<byte[], uint>(ReferenceEqualityComparer.Instance);
        int constantBytes = 0;
        uint Constant(byte[] bytes)
        {
            if (constants.TryGetValue(bytes, out uint offset)) return offset;
            offset = b.AddConstant(bytes);
            constants[bytes] = offset;
            constantBytes += bytes.Length;
            return offset;
        }

        int initOps = slots.Count;
        int PlanIndex(int j) => initOps + j;
        var offsets = new int[tensorCount];
        for (int t = 0; t < tensorCount; t++)
        {
            PTensor p = tensors[t];
            offsets[t] = !p.InArena ? 0 : memory.Offsets[requestOf[root[t]]] + delta[t];
            b.AddTensor(p.Name, p.Type, p.Role, p.Shape.C, p.Shape.H, p.Shape.W, offsets[t], p.Scale, p.ZeroPoint,
                t == program.Input ? Plan.NoOp : (ushort)PlanIndex(first[t]), (ushort)PlanIndex(last[t]),
                p.Tiled ? PlanFormat.TensorFlagTiled : p.Streamed ? PlanFormat.TensorFlagStreamed : (ushort)0);
        }
        b.InputTensor = program.Input;
        b.OutputTensor = program.Output;

        foreach (ParamSlot slot in slots)
        {
            if (sliced.Contains(slot))
                b.AddOp(RtOpKind.InitParamsRows, OpPhase.Init, PlanFormat.NoTensor, PlanFormat.NoTensor, PlanFormat.NoTensor, PlanFormat.NoTensor,
                    Constant(slot.Initial), PlanFormat.NoConstant, PlanFormat.NoConstant, PlanFormat.NoConstant,
                    [slot.Initial.Length / slot.SliceInChannels, slot.SliceInChannels, slot.SliceChannels, paramOffset[slot]]);
            else
                b.AddOp(RtOpKind.InitParams, OpPhase.Init, PlanFormat.NoTensor, PlanFormat.NoTensor, PlanFormat.NoTensor, PlanFormat.NoTensor,
                    Constant(slot.Initial), PlanFormat.NoConstant, PlanFormat.NoConstant, PlanFormat.NoConstant, [slot.Initial.Length, paramOffset[slot]]);
        }

        int stateBytes = 0;
        var reports = new List<OpReport>();
        for (int j = 0; j < opCount; j++)
        {
            POp op = ops[j];
            int[] args = (int[])op.Args.Clone();
            if (op.StateArg >= 0)
            {
                args[op.StateArg] = op.StateFloats > 0 ? stateBytes : -1;
                stateBytes += 4 * op.StateFloats;
            }
            int before = constantBytes;
            OpFlags flags = OpFlags.None;
            uint Ref(DataRef? r, OpFlags inParams)
            {
                if (r is null) return PlanFormat.NoConstant;
                if (r.Param is { } slot)
                {
                    flags |= inParams;
                    return (uint)paramOffset[slot];
                }
                return Constant(r.Constant);
            }
            uint weights = Ref(op.Weights, OpFlags.WeightsInParams);
            uint bias = Ref(op.Bias, OpFlags.BiasInParams);
            uint multiplier = Ref(op.Multiplier, OpFlags.None);
            uint shift = Ref(op.Shift, OpFlags.None);
            RtOpKind kind = op.Kind;
            int scratch = op.Scratch;
            if (kind == RtOpKind.PointwiseInPlace)
            {
                // The planner put the output over a whole plane of the input, or (where no such plane was free) apart from it.
                inPlace[j] = OverPlane(tensors[op.Input0], offsets[op.Input0], tensors[op.Output], offsets[op.Output]);
                if (!inPlace[j]) (kind, scratch) = (RtOpKind.Conv2D, -1);
            }
            if (op.Weights?.Param is { } trained && sliced.Contains(trained))
                (args, flags) = (TrainedSlices.Args(kind, args, trained, Constant(trained.Initial)), flags | OpFlags.WeightsSliced);
            b.AddOp(kind, op.Phase, U16(op.Input0), U16(op.Input1), U16(op.Output), U16(scratch), weights, bias, multiplier, shift, args, flags);
            PTensor? output = op.Output >= 0 ? tensors[op.Output] : null;
            reports.Add(new OpReport(PlanIndex(j), op.Name, kind.ToString(), op.Phase.ToString(), output?.Shape.ToString() ?? "",
                output is null ? -1 : offsets[op.Output], output?.Bytes ?? 0, op.Macs, constantBytes - before, inPlace[j]));
        }
        b.ForwardOpCount = PlanIndex(lastForward + 1);
        b.FlashBytes = constantBytes;
        b.SramParamBytes = paramBytes;
        b.StateBytes = stateBytes;
        return new EmittedPlan(b.Build(), memory, naive, program, reports, constantBytes, paramBytes, stateBytes, peak);
    }

    // A depthwise input gradient followed by the bias-only update of the same layer (both read dy): the update
    // goes first, so that dy dies at the input gradient, which can then run in place. Bit for bit the same:
    // the input gradient reads the weights, not the bias, and the updates keep their order.
    private static PlanProgram BiasUpdatesFirst(PlanProgram program)
    {
        var ops = new List<POp>(program.Ops);
        bool changed = false;
        for (int j = 0; j + 1 < ops.Count; j++)
        {
            POp a = ops[j], b = ops[j + 1];
            if (a.Kind == RtOpKind.DepthwiseBackwardInput && b.Kind == RtOpKind.BiasUpdate && b.Input0 == a.Input0)
            {
                (ops[j], ops[j + 1]) = (b, a);
                changed = true;
                j++;
            }
        }
        return !changed ? program : new PlanProgram
        {
            Name = program.Name, Tensors = program.Tensors, Ops = ops, Input = program.Input, Output = program.Output,
            Trainable = program.Trainable, Patch = program.Patch, MidStages = program.MidStages,
        };
    }

    // Each forward 1x1 conv without a mask whose input (not the model's) is read last by it becomes a PointwiseInPlace op
    // with a pixel buffer (IC + OC bytes) as its scratch; the planner then puts its output at its input's offset.
    private static PlanProgram PointwiseInPlace(PlanProgram program)
    {
        var lastReader = new int[program.Tensors.Count];
        Array.Fill(lastReader, -1);
        for (int j = 0; j < program.Ops.Count; j++)
        {
            POp op = program.Ops[j];
            if (op.Input0 >= 0) lastReader[op.Input0] = j;
            if (op.Input1 >= 0) lastReader[op.Input1] = j;
        }
        var tensors = new List<PTensor>(program.Tensors);
        var ops = new List<POp>(program.Ops);
        for (int j = 0; j < ops.Count; j++)
        {
            POp op = ops[j];
            bool pointwise = op.Kind == RtOpKind.Conv2D && op.Phase == OpPhase.Forward && op.Scratch < 0 && op.Input1 < 0
                && op.Args[0] == 1 && op.Args[1] == 1 && op.Args[2] == 0 && op.Args[3] == 1;
            int x = op.Input0;
            if (!pointwise || x == program.Input || op.Output == program.Output || lastReader[x] != j || tensors[x].Tiled || tensors[op.Output].Tiled)
                continue;
            if (tensors[op.Output].Bytes > tensors[x].Bytes) continue;   // an expansion would need its input placed inside it
            int scratch = tensors.Count;
            tensors.Add(new PTensor
            {
                Id = scratch, Name = $"{op.Name}.pixel", Type = ElementType.Int8, Role = TensorRole.Scratch, Scale = 1f,
                Shape = new Graphs.Shape(tensors[x].Shape.C + tensors[op.Output].Shape.C, 1, 1),
            });
            ops[j] = new POp
            {
                Kind = RtOpKind.PointwiseInPlace, Phase = op.Phase, Name = op.Name, Input0 = op.Input0, Input1 = op.Input1, Output = op.Output,
                Scratch = scratch, Weights = op.Weights, Bias = op.Bias, Multiplier = op.Multiplier, Shift = op.Shift, Args = op.Args,
                Macs = op.Macs, Layer = op.Layer,
            };
        }
        return tensors.Count == program.Tensors.Count ? program : new PlanProgram
        {
            Name = program.Name, Tensors = tensors, Ops = ops, Input = program.Input, Output = program.Output,
            Trainable = program.Trainable, Patch = program.Patch, MidStages = program.MidStages,
        };
    }

    // The output of a 1x1 conv starts at whole plane m of its input, 0 <= m <= IC - OC (Plan.Validate checks the same).
    private static bool OverPlane(PTensor x, int xOffset, PTensor y, int yOffset)
    {
        int plane = x.Shape.H * x.Shape.W, d = yOffset - xOffset;
        return d >= 0 && d % plane == 0 && d / plane <= x.Shape.C - y.Shape.C;
    }

    // A depthwise op that may write its output over its input channel by channel: same shape and type, no mask,
    // no accumulation, and the input's buffer dies here.
    private static bool ChannelInPlace(PlanProgram program, POp op, int[] root, int[] groupLast, int j)
    {
        bool forward = op.Kind == RtOpKind.DepthwiseConv2D && op.Scratch < 0;
        if (!forward && op.Kind != RtOpKind.DepthwiseBackwardInput) return false;
        int x = op.Input0;
        if (x < 0 || op.Output < 0 || x == program.Input || groupLast[root[x]] != j) return false;
        PTensor a = program.Tensors[x], b = program.Tensors[op.Output];
        if (a.Tiled || b.Tiled || a.Type != b.Type) return false;
        // A strided input gradient (dx planes larger than dy's) also fits: dy sits at the end of dx's buffer. A
        // strided forward output would keep the input's whole buffer alive: not worth it.
        return forward ? a.Shape == b.Shape : a.Shape.C == b.Shape.C && b.Shape.H * b.Shape.W >= a.Shape.H * a.Shape.W;
    }

    // How far the input starts above the output when a depthwise op runs in place channel by channel: output
    // plane c (ascending) may overwrite input planes below c only (Plan.Validate checks the same rule).
    private static int ChannelGap(PTensor input, PTensor output)
    {
        int c = output.Shape.C, inPlane = input.Bytes / c, outPlane = output.Bytes / c;
        return outPlane + (c - 1) * (outPlane - inPlane);
    }

    private static ushort U16(int tensor) => tensor < 0 ? PlanFormat.NoTensor : (ushort)tensor;

    private static int Align4(int n) => (n + 3) & ~3;

    // The op at which the arena reaches highest (the end of the highest live buffer; among such ops the one with the most
    // bytes live), and what those bytes hold. An int8 activation still alive after the forward pass is counted as saved for
    // backward. (Live bytes alone can name the wrong op: buffers that may overlap, a stage output over its dying input, count twice.)
    private static PeakBreakdown Breakdown(PlanProgram program, List<BufferRequest> requests, int[] requestOf, int[] root, int[] first, int[] last,
        IReadOnlyList<int> offsets)
    {
        int lastForward = program.Ops.FindLastIndex(o => o.Phase is OpPhase.Forward or OpPhase.Save);
        int bestOp = 0;
        long bestTop = -1, best = -1;
        for (int j = 0; j < Math.Max(1, program.Ops.Count); j++)
        {
            long live = 0, top = 0;
            for (int i = 0; i < requests.Count; i++)
            {
                BufferRequest r = requests[i];
                if (r.FirstUse > j || j > r.LastUse || r.Size == 0) continue;
                live += r.Size;
                top = Math.Max(top, (long)offsets[i] + r.Size);
            }
            if (top > bestTop || top == bestTop && live > best) (bestTop, best, bestOp) = (top, live, j);
        }
        int act = 0, saved = 0, grad = 0, scratch = 0;
        for (int t = 0; t < program.Tensors.Count; t++)
        {
            if (root[t] != t || first[t] > bestOp || last[t] < bestOp) continue;
            PTensor p = program.Tensors[t];
            int size = requests[requestOf[t]].Size;
            switch (p.Role)
            {
                case TensorRole.Gradient: grad += size; break;
                case TensorRole.SavedForBackward: saved += size; break;
                case TensorRole.Scratch: scratch += size; break;
                default:
                    if (bestOp > lastForward && last[t] > lastForward) saved += size; else act += size;
                    break;
            }
        }
        string name = program.Ops.Count > 0 ? program.Ops[bestOp].Name : "";
        return new PeakBreakdown(bestOp, name, act, saved, grad, scratch);
    }
}
