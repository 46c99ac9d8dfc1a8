namespace TinyTrain.Runtime.Plans;

using System.Text;
using static LittleEndian;

// Structural validation: after it, every index a kernel derives from the plan (tensor bytes in
// the arena, weights and per-channel constants in the image or the params region, momentum in the
// state region, names) is in range, and every op's tensors have the types and shapes its kernel
// indexes by. It runs once at load, allocates nothing unless it throws, and reports the first
// problem it finds.
public sealed partial class Plan
{
    private const int MaxKernel = 15;
    private const int MaxStride = 8;
    private const int MaxShift = 31;
    // TFLite's int8 Add shifts (x - zp), at most 255 in size, left before requantizing; beyond 23 the int32 overflows.
    private const int MaxAddLeftShift = 23;

    private static Sections ReadSections(byte[] b, string source)
    {
        int end = b.Length - PlanFormat.TrailerSize;
        uint count = U32(b, PlanFormat.HeaderSectionCount);
        long tableEnd = PlanFormat.HeaderSize + (long)count * PlanFormat.SectionEntrySize;
        if (tableEnd > end)
            throw Invalid(source, $"its section table ({count} entries) runs past the end of the file");

        var s = new Sections
        {
            ModelOffset = -1, TensorsOffset = -1, OpsOffset = -1, ConstantsOffset = -1, NamesOffset = -1,
        };
        for (int i = 0; i < (int)count; i++)
        {
            int entry = PlanFormat.HeaderSize + i * PlanFormat.SectionEntrySize;
            uint kind = U32(b, entry);
            uint offset = U32(b, entry + 4);
            uint length = U32(b, entry + 8);
            if (offset < tableEnd || offset + (long)length > end)
                throw Invalid(source, $"section {i} ({SectionName(kind)}) spans bytes [{offset}, {offset + (long)length}), outside the room between the section table (ends at {tableEnd}) and the checksum (at {end})");
            if (kind < (uint)SectionKind.Model || kind > (uint)SectionKind.Names)
                continue; // unknown kinds are skipped: a newer minor version may add sections
            s.Get((int)kind, out int seen, out _);
            if (seen >= 0)
                throw Invalid(source, $"the section table lists the {SectionName(kind)} section twice");
            if (offset % 4 != 0)
                throw Invalid(source, $"the {SectionName(kind)} section starts at byte {offset}, which is not 4-byte aligned");
            s.Set((int)kind, (int)offset, (int)length);
        }

        for (int kind = 1; kind <= 5; kind++)
        {
            s.Get(kind, out int offset, out int length);
            if (offset < 0)
                throw Invalid(source, $"it has no {SectionName((uint)kind)} section");
            for (int other = kind + 1; other <= 5; other++)
            {
                s.Get(other, out int o, out int l);
                if (o >= 0 && length > 0 && l > 0 && offset < o + l && o < offset + length)
                    throw Invalid(source, $"its {SectionName((uint)kind)} and {SectionName((uint)other)} sections overlap");
            }
        }

        if (s.ModelLength < PlanFormat.ModelRecordSize)
            throw Invalid(source, $"its Model section is {s.ModelLength} bytes, shorter than the {PlanFormat.ModelRecordSize}-byte model record");
        uint nameLength = U32(b, s.ModelOffset + PlanFormat.ModelNameLength);
        if (nameLength > (uint)(s.ModelLength - PlanFormat.ModelRecordSize))
            throw Invalid(source, $"its model name ({nameLength} bytes) runs past the end of the Model section");
        if (s.TensorsLength % PlanFormat.TensorRecordSize != 0)
            throw Invalid(source, $"its Tensors section is {s.TensorsLength} bytes, not a whole number of {PlanFormat.TensorRecordSize}-byte records");
        int tensorCount = s.TensorsLength / PlanFormat.TensorRecordSize;
        if (tensorCount < 1 || tensorCount >= PlanFormat.NoTensor)
            throw Invalid(source, $"it has {tensorCount} tensors; a plan has 1 to {PlanFormat.NoTensor - 1}");
        if (s.OpsLength % PlanFormat.OpRecordSize != 0)
            throw Invalid(source, $"its Ops section is {s.OpsLength} bytes, not a whole number of {PlanFormat.OpRecordSize}-byte records");
        int opCount = s.OpsLength / PlanFormat.OpRecordSize;
        if (opCount >= NoOp)
            throw Invalid(source, $"it has {opCount} ops; a plan has at most {NoOp - 1}");
        return s;
    }

    private void Validate()
    {
        uint arena = U32(_image, PlanFormat.HeaderArenaBytes);
        if (arena > PlanFormat.MaxArenaBytes)
            throw Invalid(_source, $"its arena is {arena} bytes, more than the {PlanFormat.MaxArenaBytes} a plan may ask for");
        for (int i = 0; i < _tensorCount; i++)
            ValidateTensor(i, arena);
        ValidateModel();
        int patchUntil = -1; // the last inner op of the patch stage being read, if any
        for (int j = 0; j < _opCount; j++)
        {
            if (j > patchUntil)
                patchUntil = CheckTiledNames(j);
            ValidateOp(j);
        }
        ValidatePatchStages();
    }

    private void ValidateTensor(int i, uint arena)
    {
        byte[] b = _image;
        int r = _tensors + i * PlanFormat.TensorRecordSize;
        uint nameOffset = U32(b, r + PlanFormat.TensorNameOffset);
        uint nameLength = U32(b, r + PlanFormat.TensorNameLength);
        if (nameOffset + (long)nameLength > _namesLength)
            throw Invalid(_source, $"tensor {i}: its name (bytes {nameOffset}..{nameOffset + (long)nameLength}) lies outside the {_namesLength}-byte Names section");

        int type = b[r + PlanFormat.TensorType];
        int size = ElementSize(type);
        if (size < 0)
            throw Invalid(_source, $"{TensorLabel(i)}: unknown element type {type}");
        int role = b[r + PlanFormat.TensorRole];
        if (role > (int)TensorRole.Gradient)
            throw Invalid(_source, $"{TensorLabel(i)}: unknown role {role}");

        uint c = U32(b, r + PlanFormat.TensorC), h = U32(b, r + PlanFormat.TensorH), w = U32(b, r + PlanFormat.TensorW);
        if (c == 0 || h == 0 || w == 0)
            throw Invalid(_source, $"{TensorLabel(i)}: shape ({c},{h},{w}) has an empty dimension");
        // Multiplied step by step so that no product can overflow a long.
        long n = c;
        if (n <= int.MaxValue) n *= h;
        if (n <= int.MaxValue) n *= w;
        if (n > int.MaxValue)
            throw Invalid(_source, $"{TensorLabel(i)}: shape ({c},{h},{w}) has more elements than a plan allows ({int.MaxValue})");
        long bytes = size == 0 ? (n + 7) / 8 : n * size;
        uint byteLength = U32(b, r + PlanFormat.TensorByteLength);
        if (byteLength != bytes)
            throw Invalid(_source, $"{TensorLabel(i)}: byte length {byteLength} does not match its shape ({c},{h},{w}) of {ElementTypeName(type)} ({bytes} bytes)");
        uint offset = U32(b, r + PlanFormat.TensorArenaOffset);
        int tensorFlags = U16(b, r + PlanFormat.TensorFlags);
        if ((tensorFlags & ~(PlanFormat.TensorFlagTiled | PlanFormat.TensorFlagStreamed)) != 0)
            throw Invalid(_source, $"{TensorLabel(i)}: flags {tensorFlags} set bits this runtime does not know (only {PlanFormat.TensorFlagTiled}, tiled, and {PlanFormat.TensorFlagStreamed}, streamed)");
        if (tensorFlags == PlanFormat.TensorFlagStreamed)
        {
            // ValidateStreamedInput checks who reads it.
            if (i != InputTensor)
                throw Invalid(_source, $"{TensorLabel(i)}: is marked streamed, but only the model input may be streamed");
            if (type != (int)ElementType.Int8 || offset != 0)
                throw Invalid(_source, $"{TensorLabel(i)}: a streamed tensor must be int8 at arena offset 0 (it is never in the arena), not {ElementTypeName(type)} at {offset}");
        }
        else if (tensorFlags == (PlanFormat.TensorFlagTiled | PlanFormat.TensorFlagStreamed))
            throw Invalid(_source, $"{TensorLabel(i)}: is marked both tiled and streamed; a tensor is one or the other");
        else if (tensorFlags != 0)
        {
            // A tiled tensor exists only inside a patch stage's tile buffer (int8) or a channel stage's plane buffer
            // (float32); ValidatePatchStages checks who names it.
            if ((type != (int)ElementType.Int8 && type != (int)ElementType.Float32) || offset != 0)
                throw Invalid(_source, $"{TensorLabel(i)}: a tiled tensor must be int8 or float32 at arena offset 0 (it never exists whole), not {ElementTypeName(type)} at {offset}");
        }
        else if (offset + bytes > arena)
            throw Invalid(_source, $"{TensorLabel(i)}: occupies arena bytes [{offset}, {offset + bytes}), outside the {arena}-byte arena");
        if (size == 4 && offset % 4 != 0)
            throw Invalid(_source, $"{TensorLabel(i)}: a {ElementTypeName(type)} tensor at arena offset {offset} is not 4-byte aligned");

        float scale = F32(b, r + PlanFormat.TensorScale);
        if (!(scale >= 0) || float.IsInfinity(scale) || (type == (int)ElementType.Int8 && scale == 0))
            throw Invalid(_source, $"{TensorLabel(i)}: scale {scale} is not a finite positive number");
        int zeroPoint = I32(b, r + PlanFormat.TensorZeroPoint);
        if (type == (int)ElementType.Int8 && (zeroPoint < -128 || zeroPoint > 127))
            throw Invalid(_source, $"{TensorLabel(i)}: zero point {zeroPoint} is outside int8's -128..127");
        int first = U16(b, r + PlanFormat.TensorFirstOp), last = U16(b, r + PlanFormat.TensorLastOp);
        if ((first != NoOp && first >= _opCount) || (last != NoOp && last >= _opCount))
            throw Invalid(_source, $"{TensorLabel(i)}: lifetime ops {first}..{last} are not among the plan's {_opCount} ops");
    }

    private void ValidateModel()
    {
        uint boardOffset = U32(_image, _model + PlanFormat.ModelBoardOffset), boardLength = U32(_image, _model + PlanFormat.ModelBoardLength);
        if (boardLength > 0 && boardOffset + (long)boardLength > _namesLength)
            throw Invalid(_source, $"the board name (bytes {boardOffset}..{boardOffset + (long)boardLength}) lies outside the {_namesLength}-byte Names section");
        int input = InputTensor, output = OutputTensor;
        if (input >= _tensorCount)
            throw Invalid(_source, $"the model input is tensor {input}, but the plan has {_tensorCount} tensors");
        if (output >= _tensorCount)
            throw Invalid(_source, $"the model output is tensor {output}, but the plan has {_tensorCount} tensors");
        if (TypeOf(input) != (int)ElementType.Int8)
            throw Invalid(_source, $"the model input {TensorLabel(input)} is {ElementTypeName(TypeOf(input))}, not int8");
        if (TypeOf(output) != (int)ElementType.Int8)
            throw Invalid(_source, $"the model output {TensorLabel(output)} is {ElementTypeName(TypeOf(output))}, not int8");
        if (ForwardOpCount > _opCount)
            throw Invalid(_source, $"the model has {ForwardOpCount} forward ops, but the plan has {_opCount} ops");
        int classes = NumClasses;
        TensorInfo y = Tensor(output);
        if (classes < 1 || classes != y.ElementCount)
            throw Invalid(_source, $"the model has {classes} classes, but its output {TensorLabel(output)} holds {y.ElementCount} values");
        // The executor allocates both regions at bind, beside the arena.
        if (SramParamBytes > PlanFormat.MaxArenaBytes)
            throw Invalid(_source, $"its params region is {SramParamBytes} bytes, more than the {PlanFormat.MaxArenaBytes} a plan may ask for");
        if (StateBytes > PlanFormat.MaxArenaBytes)
            throw Invalid(_source, $"its state region is {StateBytes} bytes, more than the {PlanFormat.MaxArenaBytes} a plan may ask for");
    }

    private void ValidateOp(int j)
    {
        byte[] b = _image;
        int r = _ops + j * PlanFormat.OpRecordSize;
        int kind = U16(b, r + PlanFormat.OpKindField);
        if (!IsKnownKind(kind))
            throw Invalid(_source, $"op {j}: unknown kind {kind}");
        int phase = b[r + PlanFormat.OpPhase];
        if (phase > (int)OpPhase.Init)
            throw Invalid(_source, $"{OpLabel(j)}: unknown phase {phase}");
        // Ops [0, ForwardOpCount) run before the loss (Invoke runs only the Forward ones); the rest after it.
        bool beforeLoss = phase is (int)OpPhase.Forward or (int)OpPhase.Save or (int)OpPhase.Init;
        if (j < ForwardOpCount && !beforeLoss)
            throw Invalid(_source, $"{OpLabel(j)}: is one of the {ForwardOpCount} inference ops, but its phase is {(OpPhase)phase}");
        if (j >= ForwardOpCount && beforeLoss)
            throw Invalid(_source, $"{OpLabel(j)}: comes after the {ForwardOpCount} inference ops, but its phase is {(OpPhase)phase}");
        int expected = PhaseOf(kind);
        if (phase != expected)
            throw Invalid(_source, $"{OpLabel(j)}: its phase is {(OpPhase)phase}, but {(OpKind)kind} ops run in phase {(OpPhase)expected}");
        int flags = b[r + PlanFormat.OpFlags], allowed = AllowedFlags(kind);
        if ((flags & ~allowed) != 0)
            throw Invalid(_source, $"{OpLabel(j)}: flags {flags} set bits that {(OpKind)kind} ops do not use (they allow {(OpFlags)allowed})");

        if (IsNormKind(kind))
            ValidateNormOp(j, r, kind, flags);
        else if (kind == (int)OpKind.DistillGradient)
            ValidateDistillOp(j, r);
        else if (kind <= (int)OpKind.GlobalAvgPool)
            ValidateForwardOp(j, r, kind, flags);
        else if (kind == (int)OpKind.PointwiseInPlace)
            ValidatePointwiseInPlace(j, r, flags);
        else if (kind is (int)OpKind.PatchStage or (int)OpKind.PatchGraphStage or (int)OpKind.ChannelStage)
            return; // checked by ValidatePatchStages, once its inner ops have been
        else if (kind == (int)OpKind.InitParams)
            ValidateInitParams(j, r);
        else if (kind == (int)OpKind.InitParamsRows)
            ValidateInitParamsRows(j, r);
        else
            ValidateTrainingOp(j, r, kind, flags);
    }

    private void ValidateForwardOp(int j, int r, int kind, int flags)
    {
        byte[] b = _image;
        int in0 = U16(b, r + PlanFormat.OpInput0), in1 = U16(b, r + PlanFormat.OpInput1);
        int output = U16(b, r + PlanFormat.OpOutput), scratch = U16(b, r + PlanFormat.OpScratch);
        RequireTensor(j, "input 0", in0, ElementType.Int8);
        if (kind == (int)OpKind.Add)
            RequireTensor(j, "input 1", in1, ElementType.Int8);
        else
            RequireOneInput(j, in1);
        RequireTensor(j, "output", output, ElementType.Int8);
        CheckScratch(j, scratch);
        int modelInput = InputTensor;
        if (output == modelInput || scratch == modelInput)
            throw Invalid(_source, $"{OpLabel(j)}: writes the model input {TensorLabel(modelInput)}");

        if (!(kind == (int)OpKind.DepthwiseConv2D && scratch == PlanFormat.NoTensor && ChannelShifted(in0, output)))
            CheckPlacement(j, in0, "input 0", output, kind == (int)OpKind.Add, ForwardInPlaceRule);
        if (kind == (int)OpKind.Add)
            CheckPlacement(j, in1, "input 1", output, true, ForwardInPlaceRule);

        TensorInfo x = Tensor(in0), y = Tensor(output);
        switch ((OpKind)kind)
        {
            case OpKind.Conv2D:
            case OpKind.DepthwiseConv2D:
            {
                bool depthwise = kind == (int)OpKind.DepthwiseConv2D;
                int k = Arg(r, 0), stride = Arg(r, 1), pad = Arg(r, 2);
                int groups = depthwise ? x.C : Arg(r, 3);
                CheckWindow(j, k, stride, pad);
                if (depthwise && y.C != x.C)
                    throw Invalid(_source, $"{OpLabel(j)}: depthwise input has {x.C} channels but output has {y.C}");
                if (groups < 1 || x.C % groups != 0 || y.C % groups != 0)
                    throw Invalid(_source, $"{OpLabel(j)}: groups {groups} does not divide input channels {x.C} and output channels {y.C}");
                CheckOutputSize(j, x, y, k, stride, pad, "input", "output");
                CheckActivation(j, r, depthwise ? 3 : 4);
                bool sliced = (flags & (int)OpFlags.WeightsSliced) != 0;
                if (sliced)
                {
                    CheckSliced(j, r, flags, x.C, y.C, 7, 8, true);
                    if (scratch != PlanFormat.NoTensor && y.H * y.W % 8 != 0)
                        throw Invalid(_source, $"{OpLabel(j)}: keeps a trained slice of its weights and writes a mask, but its planes ({y.H * y.W} pixels) do not start on whole mask bytes");
                }
                CheckChannelConstants(j, r, flags, y.C, sliced ? (long)y.C * Arg(r, 7) : Multiply(Multiply(y.C, x.C / groups), k * k));
                CheckMask(j, r, scratch, in0, output, depthwise ? 5 : 6);
                break;
            }
            case OpKind.FullyConnected:
                if (y.H != 1 || y.W != 1)
                    throw Invalid(_source, $"{OpLabel(j)}: output shape ({y.C},{y.H},{y.W}) is not (OC,1,1)");
                CheckActivation(j, r, 0);
                CheckChannelConstants(j, r, flags, y.C, (long)y.C * x.ElementCount);
                CheckMask(j, r, scratch, in0, output, 2);
                break;
            case OpKind.Add:
            {
                TensorInfo x1 = Tensor(in1);
                if (!SameShape(x, x1) || !SameShape(x, y))
                    throw Invalid(_source, $"{OpLabel(j)}: shapes ({x.C},{x.H},{x.W}) + ({x1.C},{x1.H},{x1.W}) -> ({y.C},{y.H},{y.W}) are not all equal");
                for (int a = 0; a < 6; a += 2)
                {
                    if (Arg(r, a) < 0)
                        throw Invalid(_source, $"{OpLabel(j)}: multiplier arg {a} is {Arg(r, a)}, negative");
                    CheckShift(j, Arg(r, a + 1), "shift arg", a + 1);
                }
                int leftShift = Arg(r, 6);
                if (leftShift < 0 || leftShift > MaxAddLeftShift)
                    throw Invalid(_source, $"{OpLabel(j)}: left shift {leftShift} is outside 0..{MaxAddLeftShift}");
                CheckActivation(j, r, 7);
                CheckNoConstants(j, r);
                break;
            }
            case OpKind.AvgPool:
            {
                int k = Arg(r, 0), stride = Arg(r, 1);
                CheckWindow(j, k, stride, 0);
                if (y.C != x.C)
                    throw Invalid(_source, $"{OpLabel(j)}: input has {x.C} channels but output has {y.C}");
                CheckOutputSize(j, x, y, k, stride, 0, "input", "output");
                CheckSameQuantization(j, x, y);
                CheckActivation(j, r, 2);
                CheckNoConstants(j, r);
                break;
            }
            default: // GlobalAvgPool
                if (y.C != x.C || y.H != 1 || y.W != 1)
                    throw Invalid(_source, $"{OpLabel(j)}: output shape ({y.C},{y.H},{y.W}) is not ({x.C},1,1)");
                CheckSameQuantization(j, x, y);
                CheckActivation(j, r, 0);
                CheckNoConstants(j, r);
                break;
        }
    }

    // Copies args[0] bytes from Constants at Weights to the params region at args[1]; touches no tensor.
    private void ValidateInitParams(int j, int r)
    {
        for (int f = PlanFormat.OpInput0; f <= PlanFormat.OpScratch; f += 2)
        {
            int t = U16(_image, r + f);
            if (t != PlanFormat.NoTensor)
                throw Invalid(_source, $"{OpLabel(j)}: touches no tensors, but its {TensorFieldName(f)} is tensor {t}");
        }
        int length = Arg(r, 0), target = Arg(r, 1);
        if (length < 0)
            throw Invalid(_source, $"{OpLabel(j)}: copy length (arg 0) is {length}, negative");
        CheckConstant(j, "weights", U32(_image, r + PlanFormat.OpWeights), length, 1, true);
        long region = SramParamBytes;
        if (target < 0 || target + (long)length > region)
            throw Invalid(_source, $"{OpLabel(j)}: params offset (arg 1) {target} with length {length} lies outside the {region}-byte params region");
        CheckNoConstant(j, r, PlanFormat.OpBias, "bias");
        CheckNoConstant(j, r, PlanFormat.OpMultiplier, "multipliers");
        CheckNoConstant(j, r, PlanFormat.OpShift, "shifts");
    }

    // Masks, loss, gradients and updates: each kernel call of Executor.ExecuteTraining gets tensors of
    // the types and counts it indexes by, weights and scales in range, and outputs apart from inputs.
    private void ValidateTrainingOp(int j, int r, int kind, int flags)
    {
        byte[] b = _image;
        int in0 = U16(b, r + PlanFormat.OpInput0), in1 = U16(b, r + PlanFormat.OpInput1);
        int output = U16(b, r + PlanFormat.OpOutput);
        CheckScratch(j, U16(b, r + PlanFormat.OpScratch));
        bool update = kind is (int)OpKind.Conv2DUpdate or (int)OpKind.DepthwiseUpdate or (int)OpKind.FullyConnectedUpdate or (int)OpKind.BiasUpdate;
        if (update)
        {
            if (output != PlanFormat.NoTensor)
                throw Invalid(_source, $"{OpLabel(j)}: writes parameters in place, not a tensor, but names tensor {output} as its output");
            if (kind == (int)OpKind.BiasUpdate)
                ValidateBiasUpdate(j, r, flags, in0, in1);
            else
                ValidateUpdate(j, r, kind, flags, in0, in1);
            return;
        }
        RequireTensor(j, "output", output, kind == (int)OpKind.SaveMask ? ElementType.Bits : ElementType.Float32);
        int modelInput = InputTensor;
        if (output == modelInput || U16(b, r + PlanFormat.OpScratch) == modelInput)
            throw Invalid(_source, $"{OpLabel(j)}: writes the model input {TensorLabel(modelInput)}");
        TensorInfo y = Tensor(output);
        switch ((OpKind)kind)
        {
            case OpKind.SaveMask:
            {
                RequireTensor(j, "input 0", in0, ElementType.Int8);
                RequireOneInput(j, in1);
                TensorInfo x = Tensor(in0);
                if (y.ElementCount != x.ElementCount)
                    throw Invalid(_source, $"{OpLabel(j)}: output holds {y.ElementCount} bits, but input 0 {TensorLabel(in0)} holds {x.ElementCount} values");
                // Exclusive bounds: -129 and 128 mean none.
                int lower = Arg(r, 0), upper = Arg(r, 1);
                if (lower < -129 || upper > 128 || lower >= upper)
                    throw Invalid(_source, $"{OpLabel(j)}: mask bounds (args 0, 1) {lower}..{upper} are not within -129..128 with lower < upper");
                CheckNoConstants(j, r);
                CheckPlacement(j, in0, "input 0", output, false, TrainingInPlaceRule);
                break;
            }
            case OpKind.LossGradient:
            {
                RequireTensor(j, "input 0", in0, ElementType.Int8);
                RequireOneInput(j, in1);
                TensorInfo x = Tensor(in0);
                int classes = NumClasses;
                if (x.ElementCount != classes)
                    throw Invalid(_source, $"{OpLabel(j)}: input 0 {TensorLabel(in0)} holds {x.ElementCount} logits, but the model has {classes} classes");
                if (y.C != classes || y.H != 1 || y.W != 1)
                    throw Invalid(_source, $"{OpLabel(j)}: output shape ({y.C},{y.H},{y.W}) is not ({classes},1,1)");
                if (Arg(r, 0) != 0 && Arg(r, 0) != 1)
                    throw Invalid(_source, $"{OpLabel(j)}: objective (arg 0) is {Arg(r, 0)}; only 0 (softmax cross-entropy) and 1 (entropy) are known");
                if (Arg(r, 0) == 1 && !(BitConverter.Int32BitsToSingle(Arg(r, 1)) > 0))
                    throw Invalid(_source, $"{OpLabel(j)}: the entropy filter threshold (arg 1) {BitConverter.Int32BitsToSingle(Arg(r, 1))} is not a positive number");
                CheckNoConstants(j, r);
                CheckPlacement(j, in0, "input 0", output, false, TrainingInPlaceRule);
                break;
            }
            case OpKind.MaskGradient:
            {
                RequireTensor(j, "input 0", in0, ElementType.Bits);
                RequireTensor(j, "input 1", in1, ElementType.Float32);
                TensorInfo mask = Tensor(in0), dy = Tensor(in1);
                if (mask.ElementCount != dy.ElementCount || y.ElementCount != dy.ElementCount)
                    throw Invalid(_source, $"{OpLabel(j)}: mask of {mask.ElementCount} bits, dy of {dy.ElementCount} and output of {y.ElementCount} values are not all equal");
                CheckNoConstants(j, r);
                CheckPlacement(j, in0, "input 0", output, false, TrainingInPlaceRule);
                CheckPlacement(j, in1, "input 1", output, true, TrainingInPlaceRule);
                break;
            }
            case OpKind.GradientAdd:
            {
                RequireTensor(j, "input 0", in0, ElementType.Float32);
                RequireTensor(j, "input 1", in1, ElementType.Float32);
                TensorInfo x0 = Tensor(in0), x1 = Tensor(in1);
                if (x0.ElementCount != y.ElementCount || x1.ElementCount != y.ElementCount)
                    throw Invalid(_source, $"{OpLabel(j)}: counts {x0.ElementCount} + {x1.ElementCount} -> {y.ElementCount} are not all equal");
                CheckNoConstants(j, r);
                CheckPlacement(j, in0, "input 0", output, true, TrainingInPlaceRule);
                CheckPlacement(j, in1, "input 1", output, true, TrainingInPlaceRule);
                break;
            }
            default:
                ValidateBackwardInput(j, r, kind, flags, in0, in1, output);
                break;
        }
    }

    // dy (input 0) -> dx (output), both float32: the transposed convolutions and the pool backwards.
    private void ValidateBackwardInput(int j, int r, int kind, int flags, int in0, int in1, int output)
    {
        RequireTensor(j, "input 0", in0, ElementType.Float32);
        RequireOneInput(j, in1);
        TensorInfo dy = Tensor(in0), dx = Tensor(output);
        switch ((OpKind)kind)
        {
            case OpKind.Conv2DBackwardInput:
            case OpKind.DepthwiseBackwardInput:
            {
                bool depthwise = kind == (int)OpKind.DepthwiseBackwardInput;
                int k = Arg(r, 0), stride = Arg(r, 1), pad = Arg(r, 2);
                int groups = depthwise ? dx.C : Arg(r, 3);
                CheckWindow(j, k, stride, pad);
                if (depthwise && dy.C != dx.C)
                    throw Invalid(_source, $"{OpLabel(j)}: depthwise dy has {dy.C} channels but dx has {dx.C}");
                if (groups < 1 || dx.C % groups != 0 || dy.C % groups != 0)
                    throw Invalid(_source, $"{OpLabel(j)}: groups {groups} does not divide dx channels {dx.C} and dy channels {dy.C}");
                CheckOutputSize(j, dx, dy, k, stride, pad, "dx", "dy");
                bool sliced = (flags & (int)OpFlags.WeightsSliced) != 0;
                if (sliced)
                {
                    CheckSliced(j, r, flags, dx.C, dy.C, 4, 5, true);
                    if ((flags & (int)OpFlags.Accumulate) != 0)
                        throw Invalid(_source, $"{OpLabel(j)}: keeps a trained slice of its weights, so it must overwrite its output (no flag Accumulate)");
                }
                CheckScaledWeights(j, r, flags, dy.C, sliced ? (long)dy.C * Arg(r, 4) : Multiply(Multiply(dy.C, dx.C / groups), k * k), false);
                break;
            }
            case OpKind.FullyConnectedBackwardInput:
                if (dy.H != 1 || dy.W != 1)
                    throw Invalid(_source, $"{OpLabel(j)}: dy shape ({dy.C},{dy.H},{dy.W}) is not (OUT,1,1)");
                CheckScaledWeights(j, r, flags, dy.C, (long)dy.C * dx.ElementCount, false);
                break;
            case OpKind.AvgPoolBackward:
            {
                int k = Arg(r, 0), stride = Arg(r, 1);
                CheckWindow(j, k, stride, 0);
                if (dy.C != dx.C)
                    throw Invalid(_source, $"{OpLabel(j)}: dy has {dy.C} channels but dx has {dx.C}");
                CheckOutputSize(j, dx, dy, k, stride, 0, "dx", "dy");
                CheckNoConstants(j, r);
                break;
            }
            default: // GlobalAvgPoolBackward
                if (dy.C != dx.C || dy.H != 1 || dy.W != 1)
                    throw Invalid(_source, $"{OpLabel(j)}: dy shape ({dy.C},{dy.H},{dy.W}) is not ({dx.C},1,1)");
                CheckNoConstants(j, r);
                break;
        }
        if (!(kind == (int)OpKind.DepthwiseBackwardInput && (flags & (int)OpFlags.Accumulate) == 0 && ChannelShifted(in0, output)))
            CheckPlacement(j, in0, "input 0", output, false, TrainingInPlaceRule);
    }

    // In-place depthwise: with output planes at least as large as the input's, the input starts
    // Pout + (C - 1)(Pout - Pin) bytes above the output (one plane when they are equal), so that the executor,
    // channel by channel in ascending order, writes each output plane over input planes it has already read.
    private bool ChannelShifted(int input, int output)
    {
        TensorInfo x = Tensor(input), y = Tensor(output);
        if (x.Tiled || y.Tiled || x.C != y.C || x.Type != y.Type) return false;
        long inPlane = x.ByteLength / x.C, outPlane = y.ByteLength / y.C;
        return x.ByteLength % x.C == 0 && y.ByteLength % y.C == 0 && outPlane >= inPlane
            && y.ArenaOffset + outPlane + (y.C - 1) * (outPlane - inPlane) == x.ArenaOffset;
    }

    // x (input 0, the forward input, int8) and dy (input 1, float32, the forward output's shape); the
    // trained weights and biases live in the params region, their momentum in the state region.
    private void ValidateBiasUpdate(int j, int r, int flags, int in0, int in1)
    {
        RequireTensor(j, "input 0", in0, ElementType.Float32);
        RequireOneInput(j, in1);
        TensorInfo dy = Tensor(in0);
        if (U32(_image, r + PlanFormat.OpWeights) != PlanFormat.NoConstant)
            throw Invalid(_source, $"{OpLabel(j)}: trains only a bias, but names weights");
        if (U32(_image, r + PlanFormat.OpBias) == PlanFormat.NoConstant)
            throw Invalid(_source, $"{OpLabel(j)}: has no bias to train");
        CheckScaledWeights(j, r, flags, dy.C, 0, true);
        float inputScale = BitConverter.Int32BitsToSingle(Arg(r, 0));
        if (!(inputScale > 0) || float.IsInfinity(inputScale))
            throw Invalid(_source, $"{OpLabel(j)}: input scale (arg 0) {inputScale} is not a finite positive number");
        int qas = Arg(r, 1);
        if (qas != 0 && qas != 1)
            throw Invalid(_source, $"{OpLabel(j)}: qas (arg 1) is {qas}, not 0 or 1");
        int state = Arg(r, 2);
        if (state != -1 && (state < 0 || state % 4 != 0 || state + 4L * dy.C > StateBytes))
            throw Invalid(_source, $"{OpLabel(j)}: state offset (arg 2) {state} for {dy.C} momentum floats is not -1 or a 4-byte aligned place inside the {StateBytes}-byte state region");
    }

    private void ValidateUpdate(int j, int r, int kind, int flags, int in0, int in1)
    {
        RequireTensor(j, "input 0", in0, ElementType.Int8);
        RequireTensor(j, "input 1", in1, ElementType.Float32);
        TensorInfo x = Tensor(in0), dy = Tensor(in1);
        int channels = dy.C, trainChannels, available, tcArg;
        long weightBytes, trainedWeights;
        switch ((OpKind)kind)
        {
            case OpKind.Conv2DUpdate:
            case OpKind.DepthwiseUpdate:
            {
                bool depthwise = kind == (int)OpKind.DepthwiseUpdate;
                int k = Arg(r, 0), stride = Arg(r, 1), pad = Arg(r, 2);
                int groups = depthwise ? x.C : Arg(r, 3);
                CheckWindow(j, k, stride, pad);
                if (depthwise && dy.C != x.C)
                    throw Invalid(_source, $"{OpLabel(j)}: depthwise x has {x.C} channels but dy has {dy.C}");
                if (groups < 1 || x.C % groups != 0 || dy.C % groups != 0)
                    throw Invalid(_source, $"{OpLabel(j)}: groups {groups} does not divide x channels {x.C} and dy channels {dy.C}");
                CheckOutputSize(j, x, dy, k, stride, pad, "x", "dy");
                tcArg = depthwise ? 3 : 4;
                trainChannels = Arg(r, tcArg);
                available = depthwise ? x.C : x.C / groups;
                weightBytes = Multiply(Multiply(dy.C, depthwise ? 1 : available), k * k);
                // Depthwise trains whole filters of the first channels; a conv the first channels of every filter.
                trainedWeights = depthwise ? Multiply(trainChannels, k * k) : Multiply(Multiply(dy.C, trainChannels), k * k);
                break;
            }
            default: // FullyConnectedUpdate
                if (dy.H != 1 || dy.W != 1)
                    throw Invalid(_source, $"{OpLabel(j)}: dy shape ({dy.C},{dy.H},{dy.W}) is not (OUT,1,1)");
                tcArg = 0;
                trainChannels = Arg(r, 0);
                available = x.ElementCount;
                weightBytes = (long)dy.C * x.ElementCount;
                trainedWeights = Multiply(dy.C, trainChannels);
                break;
        }
        int qasArg = tcArg + 1, stateArg = tcArg + 2; // args: ..., trainChannels, qas, stateOffset
        if (trainChannels < 0 || trainChannels > available)
            throw Invalid(_source, $"{OpLabel(j)}: trainChannels (arg {tcArg}) is {trainChannels}, outside 0..{available}");
        int qas = Arg(r, qasArg);
        if (qas != 0 && qas != 1)
            throw Invalid(_source, $"{OpLabel(j)}: qas (arg {qasArg}) is {qas}, not 0 or 1");

        uint weights = U32(_image, r + PlanFormat.OpWeights), bias = U32(_image, r + PlanFormat.OpBias);
        bool hasWeights = weights != PlanFormat.NoConstant, hasBias = bias != PlanFormat.NoConstant;
        if (hasWeights != (trainChannels > 0))
            throw Invalid(_source, hasWeights
                ? $"{OpLabel(j)}: names weights to train, but trainChannels (arg {tcArg}) is 0"
                : $"{OpLabel(j)}: trains {trainChannels} channels (arg {tcArg}), but has no weights");
        if ((flags & (int)OpFlags.WeightsSliced) != 0)
        {
            if (kind != (int)OpKind.Conv2DUpdate || !hasWeights)
                throw Invalid(_source, $"{OpLabel(j)}: keeps a trained slice of its weights (flag WeightsSliced), but is not a Conv2DUpdate that trains weights");
            CheckSliced(j, r, flags, x.C, dy.C, 4, 0, false);
            weightBytes = (long)dy.C * trainChannels;
        }
        CheckScaledWeights(j, r, flags, channels, weightBytes, true);
        long biasBytes = 4L * channels;
        if (hasWeights && hasBias && weights < bias + biasBytes && bias < weights + weightBytes)
            throw Invalid(_source, $"{OpLabel(j)}: weights at params bytes [{weights}, {weights + weightBytes}) overlap bias at [{bias}, {bias + biasBytes})");

        int state = Arg(r, stateArg);
        if (state == -1)
            return;
        long floats = (hasWeights ? trainedWeights : 0) + (hasBias ? channels : 0);
        long region = StateBytes;
        if (state < 0 || state % 4 != 0 || state + 4 * floats > region)
            throw Invalid(_source, $"{OpLabel(j)}: state offset (arg {stateArg}) {state} for {floats} momentum floats is not -1 or a 4-byte aligned place inside the {region}-byte state region");
    }

    private void RequireTensor(int j, string field, int t, ElementType type)
    {
        if (t >= _tensorCount)
            throw Invalid(_source, $"{OpLabel(j)}: {field} is tensor {t}, but the plan has {_tensorCount} tensors");
        if (TypeOf(t) != (int)type)
            throw Invalid(_source, $"{OpLabel(j)}: {field} {TensorLabel(t)} is {ElementTypeName(TypeOf(t))}, not {ElementTypeName((int)type)}");
    }

    private void RequireOneInput(int j, int in1)
    {
        if (in1 != PlanFormat.NoTensor)
            throw Invalid(_source, $"{OpLabel(j)}: takes one input, but names tensor {in1} as input 1");
    }

    // A forward conv / fully connected op of a training plan may write its gradient mask (Bits, one bit per
    // output) into its Scratch tensor; the mode arg says how (1 ReLU, 2 ReLU6) and is 0 without a mask.
    private void CheckMask(int j, int r, int scratch, int input, int output, int modeArg)
    {
        int mode = Arg(r, modeArg);
        if (scratch == PlanFormat.NoTensor)
        {
            if (mode != 0)
                throw Invalid(_source, $"{OpLabel(j)}: mask mode {mode} but no mask tensor");
            return;
        }
        if (mode != 1 && mode != 2)
            throw Invalid(_source, $"{OpLabel(j)}: mask mode {mode} is not 1 (ReLU) or 2 (ReLU6)");
        RequireTensor(j, "mask", scratch, ElementType.Bits);
        TensorInfo m = Tensor(scratch), y = Tensor(output);
        if (m.ElementCount != y.ElementCount)
            throw Invalid(_source, $"{OpLabel(j)}: mask {TensorLabel(scratch)} holds {m.ElementCount} bits for {y.ElementCount} outputs");
        CheckMaskApart(j, scratch, m, input);
        CheckMaskApart(j, scratch, m, output);
    }

    private void CheckMaskApart(int j, int scratch, TensorInfo m, int other)
    {
        TensorInfo t = Tensor(other);
        if (m.ArenaOffset < t.ArenaOffset + t.ByteLength && t.ArenaOffset < m.ArenaOffset + m.ByteLength)
            throw Invalid(_source, $"{OpLabel(j)}: mask {TensorLabel(scratch)} overlaps {TensorLabel(other)} in the arena");
    }

    private void CheckScratch(int j, int scratch)
    {
        if (scratch != PlanFormat.NoTensor && scratch >= _tensorCount)
            throw Invalid(_source, $"{OpLabel(j)}: scratch is tensor {scratch}, but the plan has {_tensorCount} tensors");
    }

    private const string ForwardInPlaceRule = "only an Add may write over an input, and exactly";
    private const string TrainingInPlaceRule = "only a MaskGradient (over its dy) or a GradientAdd may write over an input, and exactly";

    // Kernels read inputs after writing outputs, so an output may not overlap an input; an
    // elementwise op may write exactly over one (in place).
    private void CheckPlacement(int j, int input, string field, int output, bool inPlaceAllowed, string rule)
    {
        TensorInfo x = Tensor(input), y = Tensor(output);
        if (x.Tiled || y.Tiled || x.Streamed)
            return; // a patch stage's tiles, or a streamed input (not in the arena): ValidatePatchStage checks its tile buffer instead
        int x0 = x.ArenaOffset, x1 = x0 + x.ByteLength, y0 = y.ArenaOffset, y1 = y0 + y.ByteLength;
        if (x0 < y1 && y0 < x1 && !(inPlaceAllowed && x0 == y0 && x1 == y1))
            throw Invalid(_source, $"{OpLabel(j)}: output at arena bytes [{y0}, {y1}) overlaps {field} {TensorLabel(input)} at [{x0}, {x1}); {rule}");
    }

    private void CheckWindow(int j, int k, int stride, int pad)
    {
        if (k < 1 || k > MaxKernel)
            throw Invalid(_source, $"{OpLabel(j)}: kernel {k} is outside 1..{MaxKernel}");
        if (stride < 1 || stride > MaxStride)
            throw Invalid(_source, $"{OpLabel(j)}: stride {stride} is outside 1..{MaxStride}");
        if (pad < 0 || pad >= k)
            throw Invalid(_source, $"{OpLabel(j)}: padding {pad} is outside 0..{k - 1} for kernel {k}");
    }

    // OH == (H + 2*pad - k) / stride + 1, and likewise for W; the window must fit the padded input.
    // Backward ops check the same relation with x = dx and y = dy.
    private void CheckOutputSize(int j, TensorInfo x, TensorInfo y, int k, int stride, int pad, string xName, string yName)
    {
        long spanH = (long)x.H + 2 * pad - k, spanW = (long)x.W + 2 * pad - k;
        if (spanH < 0 || spanW < 0 || y.H != spanH / stride + 1 || y.W != spanW / stride + 1)
            throw Invalid(_source, $"{OpLabel(j)}: {yName} ({y.C},{y.H},{y.W}) does not follow from {xName} ({x.C},{x.H},{x.W}) with kernel {k}, stride {stride}, padding {pad}");
    }

    private void CheckActivation(int j, int r, int arg)
    {
        int min = Arg(r, arg), max = Arg(r, arg + 1);
        if (min < -128 || max > 127 || min > max)
            throw Invalid(_source, $"{OpLabel(j)}: activation range {min}..{max} is not within -128..127");
    }

    // The message is built only when thrown: validation allocates nothing for a good plan.
    private void CheckShift(int j, int shift, string what, int index)
    {
        if (shift < -MaxShift || shift > MaxShift)
            throw Invalid(_source, $"{OpLabel(j)}: {what} {index} is {shift}, outside -{MaxShift}..{MaxShift}");
    }

    private void CheckSameQuantization(int j, TensorInfo x, TensorInfo y)
    {
        if (BitConverter.SingleToInt32Bits(x.Scale) != BitConverter.SingleToInt32Bits(y.Scale) || x.ZeroPoint != y.ZeroPoint)
            throw Invalid(_source, $"{OpLabel(j)}: output quantization (scale {y.Scale}, zero point {y.ZeroPoint}) differs from the input's ({x.Scale}, {x.ZeroPoint})");
    }

    // Weights (int8, weightBytes) are required; bias is optional; both in Constants or, per the flags, in
    // params (a trained layer); multiplier and shift (int32 per channel) are required and in Constants.
    private void CheckChannelConstants(int j, int r, int flags, int channels, long weightBytes)
    {
        long perChannel = 4L * channels;
        CheckRef(j, "weights", U32(_image, r + PlanFormat.OpWeights), weightBytes, 1, true, (flags & (int)OpFlags.WeightsInParams) != 0);
        CheckRef(j, "bias", U32(_image, r + PlanFormat.OpBias), perChannel, 4, false, (flags & (int)OpFlags.BiasInParams) != 0);
        uint multiplier = U32(_image, r + PlanFormat.OpMultiplier);
        CheckConstant(j, "multipliers", multiplier, perChannel, 4, true);
        uint shift = U32(_image, r + PlanFormat.OpShift);
        CheckConstant(j, "shifts", shift, perChannel, 4, true);
        for (int c = 0; c < channels; c++)
        {
            int m = I32(_image, _constants + (int)multiplier + 4 * c);
            if (m < 0)
                throw Invalid(_source, $"{OpLabel(j)}: multiplier of channel {c} is {m}, negative");
            CheckShift(j, I32(_image, _constants + (int)shift + 4 * c), "shift of channel", c);
        }
    }

    // Weights and biases of training ops: int8 weights (weightBytes) in Constants or params, float32 weight
    // scales per channel (the Multiplier field) in Constants, no shifts. An update writes what it trains,
    // so its weights and bias are optional but, when given, must be in params; a backward op has no bias.
    private void CheckScaledWeights(int j, int r, int flags, int channels, long weightBytes, bool update)
    {
        uint weights = U32(_image, r + PlanFormat.OpWeights), bias = U32(_image, r + PlanFormat.OpBias);
        bool weightsInParams = (flags & (int)OpFlags.WeightsInParams) != 0, biasInParams = (flags & (int)OpFlags.BiasInParams) != 0;
        if (update && weights != PlanFormat.NoConstant && !weightsInParams)
            throw Invalid(_source, $"{OpLabel(j)}: updates its weights in place, so they must be in the params region (flag WeightsInParams), not in Constants");
        if (update && bias != PlanFormat.NoConstant && !biasInParams)
            throw Invalid(_source, $"{OpLabel(j)}: updates its bias in place, so it must be in the params region (flag BiasInParams), not in Constants");
        CheckRef(j, "weights", weights, weightBytes, 1, !update, weightsInParams);
        if (update)
            CheckRef(j, "bias", bias, 4L * channels, 4, false, biasInParams);
        else
            CheckNoConstant(j, r, PlanFormat.OpBias, "bias");
        uint scales = U32(_image, r + PlanFormat.OpMultiplier);
        CheckConstant(j, "weight scales", scales, 4L * channels, 4, true);
        for (int c = 0; c < channels; c++)
        {
            float s = F32(_image, _constants + (int)scales + 4 * c);
            if (!(s > 0) || float.IsInfinity(s))
                throw Invalid(_source, $"{OpLabel(j)}: weight scale of channel {c} is {s}, not a finite positive number");
        }
        CheckNoConstant(j, r, PlanFormat.OpShift, "shifts");
    }

    // A weights or bias field: an offset into the params region when its flag is set, else into Constants.
    private void CheckRef(int j, string field, uint offset, long bytes, int alignment, bool required, bool inParams)
    {
        if (!inParams)
        {
            CheckConstant(j, field, offset, bytes, alignment, required);
            return;
        }
        if (offset == PlanFormat.NoConstant)
            throw Invalid(_source, $"{OpLabel(j)}: its flags place its {field} in the params region, but it has no {field}");
        long region = SramParamBytes;
        if (offset > region || bytes > region - offset)
            throw Invalid(_source, $"{OpLabel(j)}: {field} ({bytes} bytes at params offset {offset}) run past the {region}-byte params region");
        if (offset % alignment != 0)
            throw Invalid(_source, $"{OpLabel(j)}: {field} at params offset {offset} are not {alignment}-byte aligned");
    }

    private void CheckConstant(int j, string field, uint offset, long bytes, int alignment, bool required)
    {
        if (offset == PlanFormat.NoConstant)
        {
            if (required)
                throw Invalid(_source, $"{OpLabel(j)}: has no {field}");
            return;
        }
        if (offset > _constantsLength || bytes > _constantsLength - offset)
            throw Invalid(_source, $"{OpLabel(j)}: {field} ({bytes} bytes at constant offset {offset}) run past the {_constantsLength}-byte Constants section");
        if (offset % alignment != 0)
            throw Invalid(_source, $"{OpLabel(j)}: {field} at constant offset {offset} are not {alignment}-byte aligned");
    }

    private void CheckNoConstants(int j, int r)
    {
        for (int f = PlanFormat.OpWeights; f <= PlanFormat.OpShift; f += 4)
        {
            if (U32(_image, r + f) != PlanFormat.NoConstant)
                throw Invalid(_source, $"{OpLabel(j)}: takes no constants, but its record names one at offset {U32(_image, r + f)}");
        }
    }

    private void CheckNoConstant(int j, int r, int field, string name)
    {
        uint offset = U32(_image, r + field);
        if (offset != PlanFormat.NoConstant)
            throw Invalid(_source, $"{OpLabel(j)}: takes no {name}, but its record names one at offset {offset}");
    }

    private static bool IsKnownKind(int kind) =>
        (kind >= (int)OpKind.Conv2D && kind <= (int)OpKind.GlobalAvgPool) || (kind >= (int)OpKind.InitParams && kind <= (int)OpKind.BiasUpdate) || kind == (int)OpKind.PatchStage || kind == (int)OpKind.PatchGraphStage || kind == (int)OpKind.ChannelStage || kind == (int)OpKind.PointwiseInPlace || kind == (int)OpKind.InitParamsRows || IsNormKind(kind)
        || kind == (int)OpKind.DistillGradient;

    private static int PhaseOf(int kind) => kind switch
    {
        _ when IsNormKind(kind) => NormPhase(kind),
        <= (int)OpKind.GlobalAvgPool => (int)OpPhase.Forward,
        (int)OpKind.InitParams or (int)OpKind.InitParamsRows => (int)OpPhase.Init,
        (int)OpKind.PatchStage or (int)OpKind.PatchGraphStage => (int)OpPhase.Forward,
        (int)OpKind.ChannelStage => (int)OpPhase.Backward,
        (int)OpKind.PointwiseInPlace => (int)OpPhase.Forward,
        (int)OpKind.SaveMask => (int)OpPhase.Save,
        (int)OpKind.Conv2DUpdate or (int)OpKind.DepthwiseUpdate or (int)OpKind.FullyConnectedUpdate or (int)OpKind.BiasUpdate => (int)OpPhase.Update,
        _ => (int)OpPhase.Backward,
    };

    // The flag bits an op kind gives meaning to (Executor reads the others' flags but they change nothing).
    private static int AllowedFlags(int kind) => kind switch
    {
        (int)OpKind.Conv2D or (int)OpKind.Conv2DUpdate => (int)(OpFlags.WeightsInParams | OpFlags.BiasInParams | OpFlags.WeightsSliced),
        (int)OpKind.DepthwiseConv2D or (int)OpKind.FullyConnected or (int)OpKind.PointwiseInPlace
            or (int)OpKind.DepthwiseUpdate or (int)OpKind.FullyConnectedUpdate
            => (int)(OpFlags.WeightsInParams | OpFlags.BiasInParams),
        (int)OpKind.Conv2DBackwardInput => (int)(OpFlags.WeightsInParams | OpFlags.Accumulate | OpFlags.WeightsSliced),
        (int)OpKind.DepthwiseBackwardInput or (int)OpKind.FullyConnectedBackwardInput
            => (int)(OpFlags.WeightsInParams | OpFlags.Accumulate),
        (int)OpKind.AvgPoolBackward or (int)OpKind.GlobalAvgPoolBackward => (int)OpFlags.Accumulate,
        (int)OpKind.BiasUpdate => (int)OpFlags.BiasInParams,
        _ when IsNormKind(kind) => NormFlags,
        _ => 0,
    };

    private static string TensorFieldName(int field) => field switch
    {
        PlanFormat.OpInput0 => "input 0",
        PlanFormat.OpInput1 => "input 1",
        PlanFormat.OpOutput => "output",
        _ => "scratch",
    };

    // Saturates instead of overflowing, so that a huge size fails the range check it feeds.
    private static long Multiply(long a, long b) => b != 0 && a > long.MaxValue / b ? long.MaxValue : a * b;

    private int Arg(int r, int k) => I32(_image, r + PlanFormat.OpArgs + 4 * k);

    private int TypeOf(int t) => _image[_tensors + t * PlanFormat.TensorRecordSize + PlanFormat.TensorType];

    private static bool SameShape(TensorInfo a, TensorInfo b) => a.C == b.C && a.H == b.H && a.W == b.W;

    private static int ElementSize(int type) => type switch
    {
        (int)ElementType.Int8 => 1,
        (int)ElementType.Int32 => 4,
        (int)ElementType.Float32 => 4,
        (int)ElementType.Bits => 0,
        _ => -1,
    };

    private static string ElementTypeName(int type) => type switch
    {
        (int)ElementType.Int8 => "int8",
        (int)ElementType.Int32 => "int32",
        (int)ElementType.Float32 => "float32",
        (int)ElementType.Bits => "bits",
        _ => $"type {type}",
    };

    private static string SectionName(uint kind) => kind switch
    {
        (uint)SectionKind.Model => "Model",
        (uint)SectionKind.Tensors => "Tensors",
        (uint)SectionKind.Ops => "Ops",
        (uint)SectionKind.Constants => "Constants",
        (uint)SectionKind.Names => "Names",
        _ => $"kind {kind}",
    };

    // "tensor 3 'conv1'": the name only when its bytes were already checked to lie inside Names.
    private string TensorLabel(int t)
    {
        int r = _tensors + t * PlanFormat.TensorRecordSize;
        uint offset = U32(_image, r + PlanFormat.TensorNameOffset), length = U32(_image, r + PlanFormat.TensorNameLength);
        if (offset + (long)length > _namesLength)
            return $"tensor {t}";
        string name = Encoding.UTF8.GetString(_image, _names + (int)offset, (int)length);
        return $"tensor {t} '{name.Replace('\n', ' ').Replace('\r', ' ')}'";
    }

    // "op 2 (DepthwiseConv2D -> tensor 3 'dw')": called only for ops whose kind is known.
    private string OpLabel(int j)
    {
        int r = _ops + j * PlanFormat.OpRecordSize;
        var kind = (OpKind)U16(_image, r + PlanFormat.OpKindField);
        int output = U16(_image, r + PlanFormat.OpOutput);
        return output < _tensorCount ? $"op {j} ({kind} -> {TensorLabel(output)})" : $"op {j} ({kind})";
    }

    private static PlanException Invalid(string source, string detail) =>
        new(PlanError.Invalid, source, $"{source}: invalid plan: {detail}; recompile it with this version of TinyTrain");
}
