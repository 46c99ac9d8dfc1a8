namespace TinyTrain.Runtime.Plan;

using System.Text;
using static LittleEndian;

// Structural validation: after it, every index a kernel derives from the plan (tensor bytes in
// the arena, weights and per-channel constants in the image, names) is in range. It runs once
// at load, allocates nothing unless it throws, and reports the first problem it finds.
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
        for (int j = 0; j < _opCount; j++)
            ValidateOp(j);
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
        if (offset + bytes > arena)
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
    }

    private void ValidateOp(int j)
    {
        byte[] b = _image;
        int r = _ops + j * PlanFormat.OpRecordSize;
        int kind = U16(b, r + PlanFormat.OpKindField);
        if (kind < (int)OpKind.Conv2D || kind > (int)OpKind.GlobalAvgPool)
            throw Invalid(_source, $"op {j}: unknown kind {kind}");
        int phase = b[r + PlanFormat.OpPhase];
        if (phase > (int)OpPhase.Update)
            throw Invalid(_source, $"{OpLabel(j)}: unknown phase {phase}");
        if (j < ForwardOpCount && phase != (int)OpPhase.Forward)
            throw Invalid(_source, $"{OpLabel(j)}: is one of the {ForwardOpCount} inference ops, but its phase is {(OpPhase)phase}");

        int in0 = U16(b, r + PlanFormat.OpInput0), in1 = U16(b, r + PlanFormat.OpInput1);
        int output = U16(b, r + PlanFormat.OpOutput), scratch = U16(b, r + PlanFormat.OpScratch);
        RequireInt8(j, "input 0", in0);
        if (kind == (int)OpKind.Add)
            RequireInt8(j, "input 1", in1);
        else if (in1 != PlanFormat.NoTensor)
            throw Invalid(_source, $"{OpLabel(j)}: takes one input, but names tensor {in1} as input 1");
        RequireInt8(j, "output", output);
        if (scratch != PlanFormat.NoTensor && scratch >= _tensorCount)
            throw Invalid(_source, $"{OpLabel(j)}: scratch is tensor {scratch}, but the plan has {_tensorCount} tensors");
        int modelInput = InputTensor;
        if (output == modelInput || scratch == modelInput)
            throw Invalid(_source, $"{OpLabel(j)}: writes the model input {TensorLabel(modelInput)}");

        CheckPlacement(j, in0, "input 0", output, kind == (int)OpKind.Add);
        if (kind == (int)OpKind.Add)
            CheckPlacement(j, in1, "input 1", output, true);

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
                CheckOutputSize(j, x, y, k, stride, pad);
                CheckActivation(j, r, depthwise ? 3 : 4);
                CheckChannelConstants(j, r, y.C, Multiply(Multiply(y.C, x.C / groups), k * k));
                break;
            }
            case OpKind.FullyConnected:
                if (y.H != 1 || y.W != 1)
                    throw Invalid(_source, $"{OpLabel(j)}: output shape ({y.C},{y.H},{y.W}) is not (OC,1,1)");
                CheckActivation(j, r, 0);
                CheckChannelConstants(j, r, y.C, (long)y.C * x.ElementCount);
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
                CheckOutputSize(j, x, y, k, stride, 0);
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

    private void RequireInt8(int j, string field, int t)
    {
        if (t >= _tensorCount)
            throw Invalid(_source, $"{OpLabel(j)}: {field} is tensor {t}, but the plan has {_tensorCount} tensors");
        if (TypeOf(t) != (int)ElementType.Int8)
            throw Invalid(_source, $"{OpLabel(j)}: {field} {TensorLabel(t)} is {ElementTypeName(TypeOf(t))}, not int8");
    }

    // Kernels read inputs after writing outputs, so an output may not overlap an input; an Add,
    // element by element, may write exactly over one (in place).
    private void CheckPlacement(int j, int input, string field, int output, bool inPlaceAllowed)
    {
        TensorInfo x = Tensor(input), y = Tensor(output);
        int x0 = x.ArenaOffset, x1 = x0 + x.ByteLength, y0 = y.ArenaOffset, y1 = y0 + y.ByteLength;
        if (x0 < y1 && y0 < x1 && !(inPlaceAllowed && x0 == y0 && x1 == y1))
            throw Invalid(_source, $"{OpLabel(j)}: output at arena bytes [{y0}, {y1}) overlaps {field} {TensorLabel(input)} at [{x0}, {x1}); only an Add may write over an input, and exactly");
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
    private void CheckOutputSize(int j, TensorInfo x, TensorInfo y, int k, int stride, int pad)
    {
        long spanH = (long)x.H + 2 * pad - k, spanW = (long)x.W + 2 * pad - k;
        if (spanH < 0 || spanW < 0 || y.H != spanH / stride + 1 || y.W != spanW / stride + 1)
            throw Invalid(_source, $"{OpLabel(j)}: output ({y.C},{y.H},{y.W}) does not follow from input ({x.C},{x.H},{x.W}) with kernel {k}, stride {stride}, padding {pad}");
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

    // Weights (int8, weightBytes) are required; bias is optional; multiplier and shift (int32 per channel) are required.
    private void CheckChannelConstants(int j, int r, int channels, long weightBytes)
    {
        long perChannel = 4L * channels;
        CheckConstant(j, "weights", U32(_image, r + PlanFormat.OpWeights), weightBytes, 1, true);
        CheckConstant(j, "bias", U32(_image, r + PlanFormat.OpBias), perChannel, 4, false);
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
