namespace TinyTrain.Runtime.Plans;

using TinyTrain.Runtime.Execution;
using static LittleEndian;

// Validation of patch stages (OpKind.PatchStage): the stage's inner ops form a chain of frozen
// convolutions from its input to its output, the tensors between them are tiled (and named by no
// other op), and its tile buffer is in the arena, apart from the stage's input and output, and as
// large as the largest tile the executor builds in it.
public sealed partial class Plan
{
    private const int MaxPatchGrid = 64;

    private void ValidatePatchStage(int j, int r)
    {
        ValidateStageFields(j, r, Arg(r, 6) != 0);
        byte[] b = _image;
        int in0 = U16(b, r + PlanFormat.OpInput0), output = U16(b, r + PlanFormat.OpOutput), scratch = U16(b, r + PlanFormat.OpScratch);

        int n = Arg(r, 0), rows = Arg(r, 1), cols = Arg(r, 2), paddedBytes = Arg(r, 3), outputBytes = Arg(r, 4);
        if (n < 1 || n >= ForwardOpCount - j)
            throw Invalid(_source, $"{OpLabel(j)}: runs {n} ops (arg 0), but only {ForwardOpCount - j - 1} inference ops follow it");
        TensorInfo y = Tensor(output);
        if (rows < 1 || cols < 1 || rows > MaxPatchGrid || cols > MaxPatchGrid || rows > y.H || cols > y.W)
            throw Invalid(_source, $"{OpLabel(j)}: a {rows}x{cols} grid (args 1, 2) does not tile its ({y.C},{y.H},{y.W}) output; rows and columns are 1..{MaxPatchGrid} and at most its size");
        int previous = in0;
        for (int k = 0; k < n; k++)
        {
            int i = j + 1 + k, ri = _ops + i * PlanFormat.OpRecordSize;
            int kind = U16(b, ri + PlanFormat.OpKindField);
            if (kind != (int)OpKind.Conv2D && kind != (int)OpKind.DepthwiseConv2D)
                throw Invalid(_source, $"{OpLabel(j)}: its op {k} ({OpLabel(i)}) is not a Conv2D or DepthwiseConv2D; a patch stage runs only those");
            if (U16(b, ri + PlanFormat.OpScratch) != PlanFormat.NoTensor)
                throw Invalid(_source, $"{OpLabel(j)}: its op {k} ({OpLabel(i)}) writes a gradient mask; a patch stage runs only frozen layers");
            if (U16(b, ri + PlanFormat.OpInput0) != previous)
                throw Invalid(_source, $"{OpLabel(j)}: its op {k} ({OpLabel(i)}) does not read {TensorLabel(previous)}, the tensor before it in the stage");
            previous = U16(b, ri + PlanFormat.OpOutput);
            bool last = k == n - 1;
            if (last ? previous != output : !Tensor(previous).Tiled)
                throw Invalid(_source, last
                    ? $"{OpLabel(j)}: its last op ({OpLabel(i)}) writes {TensorLabel(previous)}, not the stage output {TensorLabel(output)}"
                    : $"{OpLabel(j)}: its op {k} ({OpLabel(i)}) writes {TensorLabel(previous)}, which is not tiled; inside a stage only tiles exist");
        }

        CheckBand(j, r, in0, PatchTiling.BandRows(this, j));
        PatchTiling.BufferBytes(this, j, out long needPadded, out long needOutput);
        long spillBytes = CheckStaged(j, r, in0, output, n);
        if (paddedBytes < needPadded || outputBytes < needOutput || (long)paddedBytes + outputBytes + BandBytes(j, r) + spillBytes > Tensor(scratch).ByteLength)
            throw Invalid(_source, $"{OpLabel(j)}: its tile buffer holds {paddedBytes} + {outputBytes} bytes (args 3, 4) + a {BandBytes(j, r)}-byte band + " +
                $"{spillBytes} spill bytes in a {Tensor(scratch).ByteLength}-byte tensor, but its tiles need {needPadded} + {needOutput}; recompile the plan");
    }

    // A stage that stages its output over its dying input (arg 6 = spill rows, see PatchTile.Stage): every staged row lands on
    // input rows no later tile reads, nothing after the stage reads the input, and the output lies apart from the input or at
    // its end, past the staged rows. Returns the spill buffer's bytes (0 when arg 6 is 0).
    private long CheckStaged(int j, int r, int in0, int output, int n)
    {
        int spill = Arg(r, 6);
        if (spill == 0) return 0;
        TensorInfo x = Tensor(in0), y = Tensor(output);
        int rows = Arg(r, 1);
        if (x.Streamed || spill < 0 || spill >= y.H)
            throw Invalid(_source, $"{OpLabel(j)}: stages its output with {spill} spill rows (arg 6), but {(x.Streamed ? "its input is streamed" : $"its output has {y.H} rows")}; recompile the plan");
        var firstOut = new int[rows];
        var firstIn = new int[rows];
        PatchTiling.RowStarts(this, j, firstOut, firstIn);
        long stageBase = Arg(r, 7), staged = (long)(y.H - spill) * y.C * y.W;
        if (stageBase < 0 || stageBase + staged > x.ByteLength)
            throw Invalid(_source, $"{OpLabel(j)}: stages {staged} bytes of output at byte {stageBase} (arg 7) of its {x.ByteLength}-byte input; recompile the plan");
        int need = PatchTiling.SpillRows(x.C, x.H, x.W, y.C * y.W, y.H, rows, firstOut, firstIn, stageBase);
        if (spill < need)
            throw Invalid(_source, $"{OpLabel(j)}: stages its output with {spill} spill rows (arg 6), but rows below {need} would land on input rows a later tile reads; recompile the plan");
        // The output lies apart from the input, or inside it apart from the staged bytes (the move at the end must not read
        // bytes it has already written).
        long at = (long)y.ArenaOffset - x.ArenaOffset;
        bool apart = at >= x.ByteLength || -at >= y.ByteLength;
        bool inside = at >= 0 && at + y.ByteLength <= x.ByteLength && (at + y.ByteLength <= stageBase || at >= stageBase + staged);
        if (!apart && !inside)
            throw Invalid(_source, $"{OpLabel(j)}: its output {TensorLabel(output)} overlaps its input {TensorLabel(in0)} or the {staged} bytes staged in it at byte {stageBase}");
        for (int i = j + n + 1; i < _opCount; i++)
        {
            int ri = _ops + i * PlanFormat.OpRecordSize;
            for (int f = PlanFormat.OpInput0; f <= PlanFormat.OpScratch; f += 2)
                if (U16(_image, ri + f) == in0)
                    throw Invalid(_source, $"{OpLabel(i)}: names {TensorLabel(in0)}, which {OpLabel(j)} overwrites while staging its output");
        }
        return (long)spill * y.C * y.W;
    }

    // A stage's band (arg 5, rows; see PlanFormat.TensorFlagStreamed): bytes after its tiles for a streamed input, 0 otherwise.
    private long BandBytes(int j, int r)
    {
        TensorInfo x = Tensor(U16(_image, r + PlanFormat.OpInput0));
        int rows = Arg(r, 5);
        return (long)x.C * rows * x.W; // CheckBand has checked 0 <= rows <= H
    }

    // Only a stage reading the streamed model input has a band, and it holds the rows each row of tiles reads.
    private void CheckBand(int j, int r, int in0, int needRows)
    {
        int rows = Arg(r, 5);
        if (!Tensor(in0).Streamed)
        {
            if (rows != 0)
                throw Invalid(_source, $"{OpLabel(j)}: has a {rows}-row band (arg 5) but its input {TensorLabel(in0)} is not streamed; recompile the plan");
            return;
        }
        if (rows < needRows || rows > Tensor(in0).H)
            throw Invalid(_source, $"{OpLabel(j)}: its band holds {rows} rows (arg 5) of the streamed input {TensorLabel(in0)}, but a row of tiles reads {needRows}; recompile the plan");
    }

    // A streamed model input: read by the plan's first op only, a patch stage (and the stage's own inner ops).
    private void ValidateStreamedInput()
    {
        int input = InputTensor; // ValidateTensor refused a streamed tensor that is not the input
        if (!Tensor(input).Streamed) return;
        int first = 0;
        while (first < _opCount && Op(first).Phase == OpPhase.Init) first++;
        OpInfo stage = first < _opCount ? Op(first) : default;
        if (first >= _opCount || stage.Kind is not (OpKind.PatchStage or OpKind.PatchGraphStage) || stage.Input0 != input)
            throw Invalid(_source, $"the model input {TensorLabel(input)} is streamed, but the plan's first op is not a patch stage reading it; recompile the plan");
        int inner = first + stage.Arg(0);
        for (int j = 0; j < _opCount; j++)
        {
            if (j >= first && j <= inner) continue;
            int r = _ops + j * PlanFormat.OpRecordSize;
            for (int f = PlanFormat.OpInput0; f <= PlanFormat.OpScratch; f += 2)
                if (U16(_image, r + f) == input)
                    throw Invalid(_source, $"{OpLabel(j)}: names the streamed model input {TensorLabel(input)}, which only the first patch stage reads; recompile the plan");
        }
    }

    // A patch stage through residual blocks (OpKind.PatchGraphStage): its inner ops are frozen window ops and Adds, each
    // reading the stage input or an earlier inner op's tiled output, every tiled output read by a later inner op, the last
    // writing the stage output; its tile buffer holds the padded area and the slots PatchGraph.Measure places.
    private void ValidatePatchGraphStage(int j, int r)
    {
        ValidateStageFields(j, r);
        byte[] b = _image;
        int output = U16(b, r + PlanFormat.OpOutput), scratch = U16(b, r + PlanFormat.OpScratch);
        int n = Arg(r, 0), rows = Arg(r, 1), cols = Arg(r, 2), paddedBytes = Arg(r, 3), slotBytes = Arg(r, 4);
        if (n < 1 || n > PatchGraph.MaxOps || n >= ForwardOpCount - j)
            throw Invalid(_source, $"{OpLabel(j)}: runs {n} ops (arg 0), but a graph stage runs 1..{PatchGraph.MaxOps} and only {ForwardOpCount - j - 1} inference ops follow it");
        TensorInfo y = Tensor(output);
        if (rows < 1 || cols < 1 || rows > MaxPatchGrid || cols > MaxPatchGrid || rows > y.H || cols > y.W)
            throw Invalid(_source, $"{OpLabel(j)}: a {rows}x{cols} grid (args 1, 2) does not tile its ({y.C},{y.H},{y.W}) output; rows and columns are 1..{MaxPatchGrid} and at most its size");
        var g = new PatchGraph();
        PatchGraphLoader.Load(g, this, j);
        for (int k = 0; k < n; k++)
        {
            int i = j + 1 + k, ri = _ops + i * PlanFormat.OpRecordSize;
            int kind = U16(b, ri + PlanFormat.OpKindField);
            if (kind != (int)OpKind.Conv2D && kind != (int)OpKind.DepthwiseConv2D && kind != (int)OpKind.Add)
                throw Invalid(_source, $"{OpLabel(j)}: its op {k} ({OpLabel(i)}) is not a Conv2D, DepthwiseConv2D or Add; a graph stage runs only those");
            if (U16(b, ri + PlanFormat.OpScratch) != PlanFormat.NoTensor)
                throw Invalid(_source, $"{OpLabel(j)}: its op {k} ({OpLabel(i)}) writes a gradient mask; a patch stage runs only frozen layers");
            if (g.Source0[k] == int.MinValue || g.Source1[k] == int.MinValue)
            {
                int t = g.Source0[k] == int.MinValue ? U16(b, ri + PlanFormat.OpInput0) : U16(b, ri + PlanFormat.OpInput1);
                throw Invalid(_source, $"{OpLabel(j)}: its op {k} ({OpLabel(i)}) reads {TensorLabel(t)}, which is neither the stage input nor written by an earlier op of the stage");
            }
            int written = U16(b, ri + PlanFormat.OpOutput);
            bool last = k == n - 1;
            if (last ? written != output : !Tensor(written).Tiled)
                throw Invalid(_source, last
                    ? $"{OpLabel(j)}: its last op ({OpLabel(i)}) writes {TensorLabel(written)}, not the stage output {TensorLabel(output)}"
                    : $"{OpLabel(j)}: its op {k} ({OpLabel(i)}) writes {TensorLabel(written)}, which is not tiled; inside a stage only tiles exist");
            for (int e = 0; e < k; e++)
                if (U16(b, _ops + (j + 1 + e) * PlanFormat.OpRecordSize + PlanFormat.OpOutput) == written)
                    throw Invalid(_source, $"{OpLabel(j)}: its op {k} ({OpLabel(i)}) writes {TensorLabel(written)}, which an earlier op of the stage writes too");
        }
        for (int k = 0; k < n - 1; k++)
        {
            bool read = false;
            for (int e = k + 1; e < n; e++)
                read |= g.Source0[e] == k || g.Source1[e] == k;
            if (!read)
                throw Invalid(_source, $"{OpLabel(j)}: its op {k} ({OpLabel(j + 1 + k)}) writes a tile that no later op of the stage reads");
        }

        CheckBand(j, r, U16(b, r + PlanFormat.OpInput0), g.BandRows(rows, cols));
        if (Arg(r, 6) != 0)
            throw Invalid(_source, $"{OpLabel(j)}: stages its output (arg 6 = {Arg(r, 6)}), which only a chain stage (PatchStage) does; recompile the plan");
        g.Measure(rows, cols, out long needPadded, out long needSlots);
        if (paddedBytes < needPadded || slotBytes < needSlots || (long)paddedBytes + slotBytes + BandBytes(j, r) > Tensor(scratch).ByteLength)
            throw Invalid(_source, $"{OpLabel(j)}: its tile buffer holds {paddedBytes} + {slotBytes} bytes (args 3, 4) + a {BandBytes(j, r)}-byte band in a " +
                $"{Tensor(scratch).ByteLength}-byte tensor, but its tiles need {needPadded} + {needSlots}; recompile the plan");
    }

    // The fields every patch stage shares: an int8 input, output and tile buffer, whole and apart, no constants.
    private void ValidateStageFields(int j, int r, bool staged = false)
    {
        byte[] b = _image;
        int in0 = U16(b, r + PlanFormat.OpInput0), in1 = U16(b, r + PlanFormat.OpInput1);
        int output = U16(b, r + PlanFormat.OpOutput), scratch = U16(b, r + PlanFormat.OpScratch);
        RequireTensor(j, "input 0", in0, ElementType.Int8);
        RequireOneInput(j, in1);
        RequireTensor(j, "output", output, ElementType.Int8);
        RequireTensor(j, "tile buffer (scratch)", scratch, ElementType.Int8);
        for (uint f = PlanFormat.OpWeights; f <= PlanFormat.OpShift; f += 4)
            if (U32(b, r + (int)f) != PlanFormat.NoConstant)
                throw Invalid(_source, $"{OpLabel(j)}: a patch stage takes no constants, but its record names one at field {f}");
        if (output == InputTensor)
            throw Invalid(_source, $"{OpLabel(j)}: writes the model input {TensorLabel(InputTensor)}");
        if (Tensor(in0).Tiled || Tensor(output).Tiled || Tensor(scratch).Tiled)
            throw Invalid(_source, $"{OpLabel(j)}: its input, output and tile buffer must exist whole in the arena, not as tiles");
        CheckApart(j, scratch, output, "output");
        if (Tensor(in0).Streamed) return; // not in the arena: the stage reads it band by band
        CheckApart(j, scratch, in0, "input");
        if (!staged) CheckApart(j, output, in0, "input"); // a staged output may end the input's buffer (CheckStaged)
    }

    // Only the inner ops of a patch stage or a channel stage may name a tiled tensor: an op outside every stage that names
    // one is refused. Returns the last inner op of the stage op j starts, or j - 1.
    private int CheckTiledNames(int j)
    {
        int r = _ops + j * PlanFormat.OpRecordSize;
        int kind = U16(_image, r + PlanFormat.OpKindField);
        if (kind == (int)OpKind.ChannelStage)
            CheckChannelStageCount(j, r);
        if (kind is (int)OpKind.PatchStage or (int)OpKind.PatchGraphStage or (int)OpKind.ChannelStage)
            return j + Math.Max(0, Arg(r, 0));
        for (int f = PlanFormat.OpInput0; f <= PlanFormat.OpScratch; f += 2)
        {
            int t = U16(_image, r + f);
            if (t < _tensorCount && Tensor(t).Tiled)
                throw Invalid(_source, $"{OpLabel(j)}: its {TensorFieldName(f)} {TensorLabel(t)} is tiled, but only the ops of a patch stage or a channel stage may name a tiled tensor");
        }
        return j - 1;
    }

    // Each stage, once its inner ops have been checked one by one; the model's input and output are whole.
    private void ValidatePatchStages()
    {
        if (Tensor(InputTensor).Tiled || Tensor(OutputTensor).Tiled)
            throw Invalid(_source, "the model input and output must exist whole in the arena, but one is marked tiled");
        ValidateStreamedInput();
        for (int j = 0; j < _opCount; j++)
        {
            int r = _ops + j * PlanFormat.OpRecordSize;
            int kind = U16(_image, r + PlanFormat.OpKindField);
            if (kind == (int)OpKind.PatchStage)
                ValidatePatchStage(j, r);
            else if (kind == (int)OpKind.PatchGraphStage)
                ValidatePatchGraphStage(j, r);
            else if (kind == (int)OpKind.ChannelStage)
                ValidateChannelStage(j, r);
        }
    }

    private void CheckApart(int j, int a, int other, string what)
    {
        TensorInfo x = Tensor(a), t = Tensor(other);
        if (x.ArenaOffset < t.ArenaOffset + t.ByteLength && t.ArenaOffset < x.ArenaOffset + x.ByteLength)
            throw Invalid(_source, $"{OpLabel(j)}: {TensorLabel(a)} overlaps its {what} {TensorLabel(other)} in the arena");
    }
}
