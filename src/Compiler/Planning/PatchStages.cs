namespace TinyTrain.Compiler.Planning;

using TinyTrain.Compiler.Learning;
using TinyTrain.Runtime.Execution;
using TinyTrain.Runtime.Plans;
using RtOpKind = TinyTrain.Runtime.Plans.OpKind;

/// <summary>What a patch stage does and costs, for the compile report.</summary>
/// <param name="Macs">The stage's ops run whole; <paramref name="PatchedMacs"/> run tile by tile (halos are recomputed).</param>
/// <param name="BandRows">With a streamed input (--stream-input): the rows of the input the band holds (its bytes are in
/// <paramref name="TileBufferBytes"/>); 0 when the input is whole in the arena.</param>
/// <param name="SpillRows">When the stage's output is staged over its dying input (PatchStage arg 6): the output rows kept in a
/// spill buffer (in <paramref name="TileBufferBytes"/>); 0 otherwise.</param>
public sealed record PatchInfo(string FirstOp, string LastOp, int Ops, int Rows, int Cols, int TileBufferBytes, long Macs, long PatchedMacs,
    int UnpatchedArenaBytes, int BandRows = 0, int BandBytes = 0, int SpillRows = 0)
{
    public long ExtraMacs => PatchedMacs - Macs;
}

/// <summary>
/// Patch-by-patch execution of the first stage (MCUNetV2; the Tiny Training Engine runs its first stage in
/// 2x2 patches): the frozen early convolutions, before the earliest layer the backward pass reaches, become
/// one <see cref="RtOpKind.PatchStage"/> op that computes the stage output tile by tile, so that the large
/// activations between them never exist whole. The stage end and the grid are chosen by compiling the
/// candidates and keeping the smallest arena; the tile buffer is sized exactly for the tiles the runtime builds.
/// </summary>
public static class PatchStages
{
    /// <summary>Grids <c>auto</c> tries (square, as in MCUNetV2), coarsest first: a finer grid is kept only when its arena is
    /// smaller (its halos cost recomputation). Once the backward pass runs channel by channel the stage is often the
    /// step's peak, and grids finer than 4x4 pay; at 128x128 the largest schemes' stages (which hold the whole input image
    /// beside their tiles) shrink down to 16x16 tiles.</summary>
    private static readonly int[] AutoGrids = [2, 3, 4, 5, 6, 8, 10, 12, 16];

    /// <summary>
    /// The most halo recomputation <c>auto</c> accepts, as a share of the whole step's MACs: the smallest arena is not worth
    /// any speed (mbv2-w0.35's 16x16 residual stage at 128x128 saved 1.6 KB for +143 % of the step's MACs). An explicit RxC
    /// grid has no limit. CompileOptions.PatchRecomputeLimit sets it.
    /// </summary>
    public const double DefaultAutoRecompute = 0.15;

    /// <summary>Checks a --patch value: off, auto or RxC (rows x columns of tiles, 1..64 each).</summary>
    public static void Parse(string text, out bool auto, out int rows, out int cols)
    {
        auto = false;
        rows = cols = 0;
        if (text == "off") return;
        if (text == "auto")
        {
            auto = true;
            return;
        }
        string[] parts = text.Split('x');
        if (parts.Length != 2 || !int.TryParse(parts[0], out rows) || !int.TryParse(parts[1], out cols) || rows < 1 || cols < 1 || rows > 64 || cols > 64)
            throw new TinyTrainException($"--patch must be auto, off or RxC (tiles per column and row, 1..64, e.g. 2x2), got '{text}'");
    }

    /// <summary>Plans memory and emits the program, patching its first stage as <paramref name="patch"/> says.</summary>
    /// <param name="throughResiduals">Whether a stage may run through residual blocks (<see cref="RtOpKind.PatchGraphStage"/>);
    /// off, stages are chains (<see cref="RtOpKind.PatchStage"/>) only.</param>
    /// <param name="streamInput">The first stage reads the model input band by band from the host's frame (PlanFormat.TensorFlagStreamed).</param>
    /// <param name="midStages">With <c>auto</c>, frozen conv chains further in where the step peaks run patch by patch too (EmitMidStages).</param>
    /// <param name="stageOverInput">A chain first stage keeps its output over the input rows it has consumed (PatchStage arg 6).</param>
    public static EmittedPlan Emit(PlanProgram program, string patch, PlannerMode mode, string? board, bool inPlaceDepthwise = false,
        bool channelBackward = false, bool inPlacePointwise = false, bool throughResiduals = true, double maxAutoRecompute = DefaultAutoRecompute,
        bool streamInput = false, bool midStages = false, bool stageOverInput = false)
    {
        // With stages past the first, each first-stage candidate is judged with the stages it leaves room for.
        Func<PlanProgram, EmittedPlan, EmittedPlan> finish = midStages && patch == "auto"
            ? (staged, plan) => EmitMidStages(staged, plan, mode, board, inPlaceDepthwise, channelBackward, inPlacePointwise, maxAutoRecompute)
            : (_, plan) => plan;
        return EmitFirst(program, patch, mode, board, inPlaceDepthwise, channelBackward, inPlacePointwise, throughResiduals, maxAutoRecompute,
            streamInput, stageOverInput, finish);
    }

    private static EmittedPlan EmitFirst(PlanProgram program, string patch, PlannerMode mode, string? board, bool inPlaceDepthwise,
        bool channelBackward, bool inPlacePointwise, bool throughResiduals, double maxAutoRecompute, bool streamInput, bool stageOverInput,
        Func<PlanProgram, EmittedPlan, EmittedPlan> finish)
    {
        Parse(patch, out bool auto, out int rows, out int cols);
        EmittedPlan plain = finish(program, PlanEmitter.Emit(program, mode, board, inPlaceDepthwise, channelBackward, inPlacePointwise));
        if (streamInput && !auto && rows == 0)
            throw new TinyTrainException("--stream-input on needs a patch stage to read the input band by band; use --patch auto (or RxC), or --stream-input off");
        if (!auto && rows == 0) return plain;
        int longest = LongestStage(program);
        List<int> graphEnds = throughResiduals ? GraphEnds(program, longest) : [];
        if (longest < 1 && graphEnds.Count == 0)
        {
            if (auto && !streamInput) return plain;
            string reason = program.Ops.Count > 1 ? $"op '{program.Ops[0].Name}' and the next are not two frozen convolutions in a chain" : "the model has one op";
            throw new TinyTrainException($"--patch {patch}: nothing to run patch by patch ({reason}: the backward pass reaches them, or a residual " +
                (streamInput ? "joins them), so no stage can read the input band by band; use --stream-input off" : "joins them); use --patch auto or off"));
        }
        EmittedPlan? best = null;
        long stepMacs = 0;
        foreach (OpReport op in plain.Ops) stepMacs += op.Macs;
        foreach (POp op in plain.Program.Ops)
            if (op.Kind is RtOpKind.PatchStage or RtOpKind.PatchGraphStage) stepMacs -= op.Macs; // plain's own stages past the first
        foreach (int grid in auto ? AutoGrids : [0])
            foreach (int end in Enumerable.Range(1, Math.Max(0, longest)).Concat(graphEnds))
            {
                int r = auto ? grid : rows, c = auto ? grid : cols;
                Shape(program, end, out _, out int h, out int w);
                if (r > h || c > w) continue;
                if (streamInput && ReadAfter(program, end)) continue;
                // Staged over the input or not: staging moves the first stage output, which can move the next peak.
                foreach (bool stage in stageOverInput && end <= longest ? new[] { false, true } : [false])
                {
                    PlanProgram staged = end <= longest
                        ? Apply(program, end, r, c, plain.ArenaBytes, streamInput, stage)
                        : ApplyGraph(program, end, r, c, plain.ArenaBytes, streamInput);
                    if (stage && staged.Patch!.SpillRows == 0) continue; // could not stage: the same as the candidate before it
                    // The stage's input (unless streamed), output (unless staged over the input) and tile buffer are live together: no
                    // layout beats that, so a candidate whose sum is not below the best arena so far is not planned (most of the finer
                    // grids and longer stages).
                    long floor = (streamInput ? 0L : program.Tensors[program.Input].Bytes) + staged.Patch!.TileBufferBytes +
                        (staged.Patch.SpillRows > 0 ? 0L : program.Tensors[program.Ops[end].Output].Bytes);
                    if (best is not null && floor >= best.ArenaBytes) continue;
                    if (auto && staged.Patch.ExtraMacs > maxAutoRecompute * stepMacs) continue;
                    EmittedPlan candidate = finish(staged, PlanEmitter.Emit(staged, mode, board, inPlaceDepthwise, channelBackward, inPlacePointwise));
                    if (best is null || candidate.ArenaBytes < best.ArenaBytes) best = candidate;
                }
            }
        if (best is null && streamInput)
            throw new TinyTrainException($"--stream-input on: no patch stage {(auto ? "" : $"of a {rows}x{cols} grid ")}can read this model's input band by band " +
                "(the input is read by a layer the backward pass reaches, or by more than the first layers); use --stream-input off");
        if (best is null && auto) return plain;   // no grid fits the stage (e.g. a 1-pixel-wide sensor window)
        if (best is null)
            throw new TinyTrainException($"--patch {patch}: the grid is finer than the stage output; use a coarser grid or auto");
        return auto && !streamInput && best!.ArenaBytes >= plain.ArenaBytes ? plain : best!;
    }

    /// <summary>Grids a stage past the first may take (square, coarsest first).</summary>
    private static readonly int[] MidGrids = [2, 3, 4, 6, 8];

    /// <summary>At most this many stages past the first.</summary>
    private const int MaxMidStages = 8;

    /// <summary>
    /// Stages past the first (CompileOptions.PatchMidStages, with --patch auto): while the step's busiest op lies in a chain of
    /// frozen convs without masks (a 1x1 expansion, its depthwise conv and projection, whose expanded tensors are the step's
    /// largest once the first stage is patched), that chain, or the part of it around the busiest op, runs patch by patch as
    /// one more PatchStage op reading a whole tensor of the step; the candidate with the smallest arena is kept if it is
    /// smaller, within auto's recompute limit for all stages together. Bit for bit the same results (each stage is).
    /// </summary>
    private static EmittedPlan EmitMidStages(PlanProgram program, EmittedPlan plan, PlannerMode mode, string? board, bool inPlaceDepthwise,
        bool channelBackward, bool inPlacePointwise, double maxAutoRecompute)
    {
        long stepMacs = 0, extra = 0;
        foreach (OpReport op in plan.Ops) stepMacs += op.Macs;
        foreach (POp op in program.Ops)
            if (op.Kind is RtOpKind.PatchStage or RtOpKind.PatchGraphStage)
            {
                stepMacs -= op.Macs;
                extra += op.Macs;
            }
        for (int round = 0; round < MaxMidStages; round++)
        {
            // The chains around every op at which the arena reaches its top: relieving any of them may let it shrink.
            var chains = new List<(int First, int Last, int At)>();
            foreach (string name in TopOps(plan))
            {
                int at = program.Ops.FindIndex(o => o.Name == name);
                if (ChainAround(program, at, out int first, out int last) && !chains.Exists(c => c.First == first && c.Last == last && c.At == at))
                    chains.Add((first, last, at));
            }
            if (chains.Count == 0) break;
            PlanProgram? bestProgram = null;
            EmittedPlan? best = null;
            long bestExtra = 0, bestFloor = long.MaxValue;
            foreach ((int first, int last, int peak) in chains)
            for (int start = first; start <= peak && start < last; start++)
                for (int end = Math.Max(peak, start + 1); end <= last; end++)
                    foreach (int grid in MidGrids)
                    {
                        Graphs.Shape y = program.Tensors[program.Ops[end].Output].Shape;
                        if (grid > y.H || grid > y.W) continue;
                        PlanProgram staged = ApplyChain(program, start, end, grid, grid, plan.ArenaBytes);
                        PatchInfo info = start == 0 ? staged.Patch! : staged.MidStages[^1];
                        long floor = (long)program.Tensors[program.Ops[start].Input0].Bytes + program.Tensors[program.Ops[end].Output].Bytes + info.TileBufferBytes;
                        if (floor > (best ?? plan).ArenaBytes) continue;
                        if (extra + info.ExtraMacs > maxAutoRecompute * stepMacs) continue;
                        EmittedPlan candidate = PlanEmitter.Emit(staged, mode, board, inPlaceDepthwise, channelBackward, inPlacePointwise);
                        // Smaller, or as small with fewer bytes live where it peaks, or with a smaller stage: two stages may be needed
                        // to lower a plateau, and a stage taken now is not revisited.
                        EmittedPlan than = best ?? plan;
                        bool better = Better(candidate, than) || best is not null && !Better(than, candidate) && floor < bestFloor;
                        if (better) (best, bestProgram, bestExtra, bestFloor) = (candidate, staged, info.ExtraMacs, floor);
                    }
            if (best is null) break;
            extra += bestExtra;
            (plan, program) = (best, bestProgram!);
        }
        return plan;
    }

    private static bool Better(EmittedPlan a, EmittedPlan b) =>
        a.ArenaBytes < b.ArenaBytes || a.ArenaBytes == b.ArenaBytes && Live(a.Peak) < Live(b.Peak);

    private static long Live(PeakBreakdown p) => (long)p.ActivationBytes + p.SavedForBackwardBytes + p.GradientBytes + p.ScratchBytes;

    /// <summary>
    /// The names of the ops that set the plan's arena: the four with the most bytes live, then those at which a live buffer
    /// ends at the arena's size (at most 16 in all).
    /// </summary>
    private static List<string> TopOps(EmittedPlan plan)
    {
        IReadOnlyList<BufferRequest> requests = plan.Memory.Requests;
        int count = plan.Program.Ops.Count;
        var live = new long[count];
        foreach (BufferRequest r in requests)
            for (int j = Math.Max(0, r.FirstUse); j <= r.LastUse && j < count; j++) live[j] += r.Size;
        var names = Enumerable.Range(0, count).OrderByDescending(j => live[j]).Take(4).Select(j => plan.Program.Ops[j].Name).ToList();
        for (int i = 0; i < requests.Count && names.Count < 16; i++)
        {
            if (requests[i].Size == 0 || plan.Memory.Offsets[i] + requests[i].Size != plan.ArenaBytes) continue;
            for (int j = requests[i].FirstUse; j <= requests[i].LastUse && j < count && names.Count < 16; j++)
                if (!names.Contains(plan.Program.Ops[j].Name)) names.Add(plan.Program.Ops[j].Name);
        }
        return names;
    }

    /// <summary>
    /// The chain of frozen convs [first, last] (two ops at least) around op <paramref name="at"/>: Conv2D / DepthwiseConv2D in the
    /// forward pass, without masks or trained weights, outside every stage, each reading the previous one's output, which
    /// nothing else reads; the chain's input and output stay whole.
    /// </summary>
    private static bool ChainAround(PlanProgram program, int at, out int first, out int last)
    {
        first = last = -1;
        List<POp> ops = program.Ops;
        if (at < 0 || !Chainable(program, at)) return false;
        var readers = new int[program.Tensors.Count];
        foreach (POp op in ops)
        {
            if (op.Input0 >= 0) readers[op.Input0]++;
            if (op.Input1 >= 0 && op.Input1 != op.Input0) readers[op.Input1]++;
        }
        bool Linked(int k) => ops[k].Input0 == ops[k - 1].Output && readers[ops[k - 1].Output] == 1 && ops[k - 1].Output != program.Output;
        first = last = at;
        while (first > 0 && Chainable(program, first - 1) && Linked(first)) first--;
        while (last + 1 < ops.Count && Chainable(program, last + 1) && Linked(last + 1)) last++;
        return last > first;
    }

    // A frozen forward conv without a mask, not the op or an inner op of a stage, whose input is a whole tensor of the arena.
    private static bool Chainable(PlanProgram program, int k)
    {
        POp op = program.Ops[k];
        if (op.Phase != OpPhase.Forward || op.Kind is not (RtOpKind.Conv2D or RtOpKind.DepthwiseConv2D) || op.Scratch >= 0 || op.Input1 >= 0
            || op.Weights?.IsParam == true || op.Bias?.IsParam == true)
            return false;
        PTensor x = program.Tensors[op.Input0];
        if (x.Tiled || program.Tensors[op.Output].Tiled || op.Input0 == program.Input && x.Streamed) return false;
        for (int i = 0; i < k; i++)
            if (program.Ops[i].Kind is RtOpKind.PatchStage or RtOpKind.PatchGraphStage && k <= i + program.Ops[i].Args[0]) return false;
        return true;
    }

    // Whether an op after the stage's ops 0..end reads the model input (then it cannot be streamed into the stage).
    private static bool ReadAfter(PlanProgram program, int end) => ReadAfter(program, program.Input, end);

    // Whether an op after op end reads (or writes) the tensor.
    private static bool ReadAfter(PlanProgram program, int tensor, int end)
    {
        for (int k = end + 1; k < program.Ops.Count; k++)
        {
            POp op = program.Ops[k];
            if (op.Input0 == tensor || op.Input1 == tensor || op.Output == tensor || op.Scratch == tensor) return true;
        }
        return false;
    }

    // The tensors with the model input marked streamed (read band by band by the stage), when <paramref name="stream"/>.
    private static void MarkStreamed(List<PTensor> tensors, int input, bool stream)
    {
        if (!stream) return;
        PTensor t = tensors[input];
        tensors[input] = new PTensor { Id = t.Id, Name = t.Name, Type = t.Type, Shape = t.Shape, Role = t.Role, Scale = t.Scale, ZeroPoint = t.ZeroPoint, Streamed = true };
    }

    /// <summary>
    /// The last op index e such that ops 0..e can form a stage: frozen Conv2D / DepthwiseConv2D ops without
    /// masks, op 0 reading the model input, each next op reading the previous output, which nothing else reads.
    /// 0 when no stage of two ops or more exists.
    /// </summary>
    public static int LongestStage(PlanProgram program)
    {
        List<POp> ops = program.Ops;
        var readers = new int[program.Tensors.Count];
        foreach (POp op in ops)
        {
            if (op.Input0 >= 0) readers[op.Input0]++;
            if (op.Input1 >= 0 && op.Input1 != op.Input0) readers[op.Input1]++;
        }
        int end = -1;
        for (int k = 0; k < ops.Count; k++)
        {
            POp op = ops[k];
            bool frozenConv = op.Phase == OpPhase.Forward && op.Kind is RtOpKind.Conv2D or RtOpKind.DepthwiseConv2D
                && op.Scratch < 0 && op.Input1 < 0 && op.Weights?.IsParam != true && op.Bias?.IsParam != true;
            int source = k == 0 ? program.Input : ops[k - 1].Output;
            if (!frozenConv || op.Input0 != source) break;
            if (k > 0 && (readers[source] != 1 || source == program.Output)) break;
            end = k;
        }
        return end;
    }

    /// <summary>
    /// The stage ends e past <paramref name="longest"/> (the longest chain) such that ops 0..e can form a graph stage
    /// through residual blocks: frozen Conv2D / DepthwiseConv2D ops without masks and Adds, each reading the model input or
    /// an earlier op's output, every output of ops 0..e-1 read only by ops 0..e (so a block's input needed by both
    /// branches is inside), at most <see cref="PatchGraph.MaxOps"/> ops, one Add at least.
    /// </summary>
    public static List<int> GraphEnds(PlanProgram program, int longest)
    {
        List<POp> ops = program.Ops;
        var lastReader = new int[program.Tensors.Count];
        var writer = new int[program.Tensors.Count];
        Array.Fill(writer, -1);
        for (int k = 0; k < ops.Count; k++)
        {
            if (ops[k].Input0 >= 0) lastReader[ops[k].Input0] = k;
            if (ops[k].Input1 >= 0) lastReader[ops[k].Input1] = k;
        }
        var ends = new List<int>();
        bool add = false;
        for (int k = 0; k < ops.Count && k < PatchGraph.MaxOps; k++)
        {
            POp op = ops[k];
            bool frozenConv = op.Kind is RtOpKind.Conv2D or RtOpKind.DepthwiseConv2D && op.Input1 < 0 && op.Weights?.IsParam != true && op.Bias?.IsParam != true;
            bool isAdd = op.Kind == RtOpKind.Add && op.Input1 >= 0;
            if (op.Phase != OpPhase.Forward || op.Scratch >= 0 || !(frozenConv || isAdd)) break;
            if (!Inside(program, writer, op.Input0, k) || (isAdd && !Inside(program, writer, op.Input1, k))) break;
            if (k == 0 && op.Input0 != program.Input) break;
            writer[op.Output] = k;
            add |= isAdd;
            if (op.Output == program.Output) break;
            bool closed = true;
            for (int e = 0; e < k && closed; e++)
                closed = lastReader[ops[e].Output] <= k && ops[e].Output != program.Output;
            if (closed && add && k > longest) ends.Add(k);
        }
        return ends;
    }

    private static bool Inside(PlanProgram program, int[] writer, int tensor, int k) =>
        tensor == program.Input || (tensor >= 0 && writer[tensor] >= 0 && writer[tensor] < k);

    /// <summary>The program with ops 0..<paramref name="end"/> (see <see cref="GraphEnds"/>) run as one graph stage of
    /// <paramref name="rows"/> x <paramref name="cols"/> tiles.</summary>
    public static PlanProgram ApplyGraph(PlanProgram program, int end, int rows, int cols, int unpatchedArenaBytes = 0, bool streamInput = false)
    {
        List<POp> ops = program.Ops;
        var tensors = new List<PTensor>(program.Tensors);
        for (int k = 0; k < end; k++)
        {
            PTensor t = tensors[ops[k].Output];
            tensors[t.Id] = new PTensor { Id = t.Id, Name = t.Name, Type = t.Type, Shape = t.Shape, Role = t.Role, Scale = t.Scale, ZeroPoint = t.ZeroPoint, Tiled = true };
        }
        PatchGraph g = Graph(program, end);
        g.Measure(rows, cols, out long padded, out long slots);
        long macs = 0, patchedMacs = 0;
        for (int k = 0; k <= end; k++) macs += ops[k].Macs;
        int outH = g.H[end], outW = g.W[end];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
            {
                g.Ranges(PatchTiling.PartStart(outH, rows, r), PatchTiling.PartStart(outH, rows, r + 1),
                    PatchTiling.PartStart(outW, cols, c), PatchTiling.PartStart(outW, cols, c + 1));
                for (int k = 0; k <= end; k++)
                    patchedMacs += ops[k].Macs / ((long)g.H[k] * g.W[k]) * (g.Y1[k] - g.Y0[k]) * (g.X1[k] - g.X0[k]);
            }
        Graphs.Shape input = program.Tensors[program.Input].Shape;
        int bandRows = streamInput ? g.BandRows(rows, cols) : 0;
        long band = (long)input.C * bandRows * input.W;
        if (padded + slots + band > int.MaxValue) throw new TinyTrainException($"patch stage tiles of {padded + slots + band} bytes are too large for a plan");
        MarkStreamed(tensors, program.Input, streamInput);
        int tiles = tensors.Count;
        tensors.Add(new PTensor
        {
            Id = tiles, Name = $"{ops[0].Name}..{ops[end].Name}.tiles", Type = ElementType.Int8, Shape = new Graphs.Shape((int)(padded + slots + band), 1, 1),
            Role = TensorRole.Scratch, Scale = 1f, // int8 bytes of several tensors' tiles: the scale is unused
        });
        var stage = new POp
        {
            Kind = RtOpKind.PatchGraphStage, Phase = OpPhase.Forward, Name = $"patch_stage[{ops[0].Name}..{ops[end].Name}]",
            Input0 = program.Input, Output = ops[end].Output, Scratch = tiles, Args = [end + 1, rows, cols, (int)padded, (int)slots, bandRows],
            Macs = patchedMacs - macs,
        };
        var info = new PatchInfo(ops[0].Name, ops[end].Name, end + 1, rows, cols, (int)(padded + slots + band), macs, patchedMacs, unpatchedArenaBytes,
            bandRows, (int)band);
        return new PlanProgram
        {
            Name = program.Name, Tensors = tensors, Ops = [stage, .. ops], Input = program.Input, Output = program.Output,
            Trainable = program.Trainable, Patch = info, MidStages = program.MidStages,
        };
    }

    // The geometry of ops 0..end as the runtime's PatchGraph.Load reads it from the plan.
    private static PatchGraph Graph(PlanProgram program, int end)
    {
        List<POp> ops = program.Ops;
        var g = new PatchGraph { Count = end + 1 };
        Graphs.Shape x = program.Tensors[program.Input].Shape;
        (g.InC, g.InH, g.InW) = (x.C, x.H, x.W);
        for (int k = 0; k <= end; k++)
        {
            POp op = ops[k];
            bool add = op.Kind == RtOpKind.Add;
            g.IsAdd[k] = add;
            g.Kernel[k] = add ? 1 : op.Args[0];
            g.Stride[k] = add ? 1 : op.Args[1];
            g.Pad[k] = add ? 0 : op.Args[2];
            Graphs.Shape y = program.Tensors[op.Output].Shape;
            (g.C[k], g.H[k], g.W[k]) = (y.C, y.H, y.W);
            g.Source0[k] = Source(program, end, k, op.Input0);
            g.Source1[k] = add ? Source(program, end, k, op.Input1) : PatchGraph.None;
        }
        return g;
    }

    private static int Source(PlanProgram program, int end, int k, int tensor)
    {
        if (tensor == program.Input) return PatchGraph.StageInput;
        for (int i = k - 1; i >= 0; i--)
            if (program.Ops[i].Output == tensor) return i;
        throw new InvalidOperationException($"op {program.Ops[k].Name} reads a tensor outside stage 0..{end}");
    }

    /// <summary>The program with ops 0..<paramref name="end"/> run as one patch stage of <paramref name="rows"/> x <paramref name="cols"/> tiles.</summary>
    public static PlanProgram Apply(PlanProgram program, int end, int rows, int cols, int unpatchedArenaBytes = 0, bool streamInput = false,
        bool stageOverInput = false) =>
        ApplyChain(program, 0, end, rows, cols, unpatchedArenaBytes, streamInput, stageOverInput);

    /// <summary>The program with the frozen conv chain ops <paramref name="start"/>..<paramref name="end"/> run as one patch stage of
    /// <paramref name="rows"/> x <paramref name="cols"/> tiles, inserted before op <paramref name="start"/>; a stage after the first
    /// (start &gt; 0) reads a whole tensor of the step and is listed in <see cref="PlanProgram.MidStages"/>.</summary>
    /// <param name="stageOverInput">Stage the output over the dying input (PatchStage arg 6) when the geometry allows it.</param>
    public static PlanProgram ApplyChain(PlanProgram program, int start, int end, int rows, int cols, int unpatchedArenaBytes = 0, bool streamInput = false,
        bool stageOverInput = false)
    {
        List<POp> ops = program.Ops;
        var tensors = new List<PTensor>(program.Tensors);
        for (int k = start; k < end; k++)
        {
            PTensor t = tensors[ops[k].Output];
            tensors[t.Id] = new PTensor { Id = t.Id, Name = t.Name, Type = t.Type, Shape = t.Shape, Role = t.Role, Scale = t.Scale, ZeroPoint = t.ZeroPoint, Tiled = true };
        }

        // The tile buffer: the largest padded input tile and the largest output tile of any op over every tile
        // (the same walk as PatchTiling.Range, which the runtime and the loader use).
        Shape(program, end, out _, out int outH, out int outW);
        long padded = 0, output = 0, macs = 0, patchedMacs = 0;
        int bandRows = 0;
        var firstOutRow = new int[rows];
        var firstInputRow = new int[rows];
        for (int k = start; k <= end; k++) macs += ops[k].Macs;
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
            {
                int y0 = PatchTiling.PartStart(outH, rows, r), y1 = PatchTiling.PartStart(outH, rows, r + 1);
                int x0 = PatchTiling.PartStart(outW, cols, c), x1 = PatchTiling.PartStart(outW, cols, c + 1);
                for (int k = end; k >= start; k--)
                {
                    POp op = ops[k];
                    Graphs.Shape x = tensors[op.Input0].Shape, y = tensors[op.Output].Shape;
                    int kernel = op.Args[0], stride = op.Args[1], pad = op.Args[2];
                    int iy0 = PatchTiling.InputStart(y0, stride, pad), iy1 = PatchTiling.InputEnd(y1, kernel, stride, pad);
                    int ix0 = PatchTiling.InputStart(x0, stride, pad), ix1 = PatchTiling.InputEnd(x1, kernel, stride, pad);
                    padded = Math.Max(padded, (long)x.C * (iy1 - iy0) * (ix1 - ix0));
                    output = Math.Max(output, (long)y.C * (y1 - y0) * (x1 - x0));
                    patchedMacs += op.Macs / ((long)y.H * y.W) * (y1 - y0) * (x1 - x0);
                    if (k == start) bandRows = Math.Max(bandRows, Math.Min(iy1, x.H) - Math.Max(iy0, 0));
                    if (k == start && c == 0) (firstOutRow[r], firstInputRow[r]) = (PatchTiling.PartStart(outH, rows, r), Math.Max(iy0, 0));
                    // The previous op computes the part of this input inside the image.
                    y0 = Math.Max(iy0, 0);
                    y1 = Math.Min(iy1, x.H);
                    x0 = Math.Max(ix0, 0);
                    x1 = Math.Min(ix1, x.W);
                }
            }
        Graphs.Shape input = tensors[ops[start].Input0].Shape;
        bool stream = streamInput && start == 0;
        if (!stream) bandRows = 0;
        long band = (long)input.C * bandRows * input.W;
        // Staging the output over the input: every row of it on input rows no later tile reads (but the first spill rows), the
        // output's place at the input's end past the staged rows, and nothing after the stage reading the input.
        // Staged at the last input plane's start, the output goes to the input's start (below, where the next tensors go);
        // where the output is larger than the planes before the last, staged at the start and moved to the input's end.
        int spill = 0, stageBase = 0;
        if (stageOverInput && !stream && !ReadAfter(program, ops[start].Input0, end) && ops[start].Input0 != program.Output)
        {
            int outC = tensors[ops[end].Output].Shape.C, rowBytes = outC * outW;
            long outBytes = (long)outC * outH * outW, plane = (long)input.H * input.W;
            foreach (long b in new[] { (input.C - 1) * plane, 0L })
            {
                if (b > 0 && outBytes > b) continue; // the output at the input's start would overlap the staged rows
                int need = PatchTiling.SpillRows(input.C, input.H, input.W, rowBytes, outH, rows, firstOutRow, firstInputRow, b);
                long staged = (long)(outH - need) * rowBytes;
                bool fits = b > 0 ? b + staged <= input.Size : staged <= input.Size - outBytes;
                if (need < outH && fits)
                {
                    (spill, stageBase) = (need, (int)b);
                    break;
                }
            }
        }
        long spillBytes = (long)spill * tensors[ops[end].Output].Shape.C * outW;
        band += spillBytes; // the spill buffer follows the band in the tile buffer
        if (padded + output + band > int.MaxValue) throw new TinyTrainException($"patch stage tiles of {padded + output + band} bytes are too large for a plan");
        MarkStreamed(tensors, program.Input, stream);
        int tiles = tensors.Count;
        tensors.Add(new PTensor
        {
            Id = tiles, Name = $"{ops[start].Name}..{ops[end].Name}.tiles", Type = ElementType.Int8, Shape = new Graphs.Shape((int)(padded + output + band), 1, 1),
            Role = TensorRole.Scratch, Scale = 1f, // int8 bytes of several tensors' tiles: the scale is unused
        });
        var stage = new POp
        {
            Kind = RtOpKind.PatchStage, Phase = OpPhase.Forward, Name = $"patch_stage[{ops[start].Name}..{ops[end].Name}]",
            Input0 = ops[start].Input0, Output = ops[end].Output, Scratch = tiles, Args = [end - start + 1, rows, cols, (int)padded, (int)output, bandRows, spill, stageBase],
            Macs = patchedMacs - macs,
        };
        var info = new PatchInfo(ops[start].Name, ops[end].Name, end - start + 1, rows, cols, (int)(padded + output + band), macs, patchedMacs, unpatchedArenaBytes,
            bandRows, (int)(band - spillBytes), spill);
        return new PlanProgram
        {
            Name = program.Name, Tensors = tensors, Ops = [.. ops.Take(start), stage, .. ops.Skip(start)], Input = program.Input, Output = program.Output,
            Trainable = program.Trainable, Patch = start == 0 ? info : program.Patch, MidStages = start == 0 ? program.MidStages : [.. program.MidStages, info],
        };
    }

    private static void Shape(PlanProgram program, int end, out int c, out int h, out int w)
    {
        Graphs.Shape s = program.Tensors[program.Ops[end].Output].Shape;
        (c, h, w) = (s.C, s.H, s.W);
    }
}
