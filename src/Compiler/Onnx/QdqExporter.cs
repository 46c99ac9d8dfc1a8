using System.Buffers.Binary;
using Google.Protobuf;
using Onnx;
using TinyTrain.Runtime.Plans;
using PlanImage = TinyTrain.Runtime.Plans.Plan;
using PlanOpKind = TinyTrain.Runtime.Plans.OpKind;

namespace TinyTrain.Compiler.Onnx;

/// <summary>
/// Writes an int8 plan's inference pass as an ONNX QDQ model (opset 13), so that ONNX Runtime runs
/// it with its own int8 kernels and can referee ours. Input "input" int8 (1, C, H, W); outputs
/// "logits_int8" int8 (1, classes) and "logits" float (1, classes), its dequantized value.
///
/// Every op becomes DequantizeLinear on its inputs, the float op, an optional Relu/Clip for a
/// clamp tighter than int8 saturation, and QuantizeLinear to the output tensor's scale and zero
/// point. Weights stay int8 and biases int32, each behind a per-channel DequantizeLinear.
///
/// Activations between the input and the logits are held as uint8 = int8 + 128 with zero point + 128
/// (the same real values, bit for bit). On x86, ORT runs uint8 activations with int8 weights: it
/// rewrites int8 Q/DQ pairs to uint8 itself, but cannot at an int8 graph input or output, which left
/// the first conv and the classifier in float. Written as uint8 (the layout ORT's own quantizer writes
/// by default), every op fuses into QLinearConv / QLinearAdd / QLinearAveragePool /
/// QLinearGlobalAveragePool / QGemm, and only the input and the logits are converted.
/// </summary>
public static class QdqExporter
{
    public const string InputName = "input";
    public const string Int8OutputName = "logits_int8";
    public const string OutputName = "logits";

    public static void Export(PlanImage plan, string path)
    {
        ModelProto model = ToModel(plan);
        try
        {
            using FileStream file = File.Create(path);
            model.WriteTo(file);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new TinyTrainException($"{path}: cannot write the ONNX model: {ex.Message}", ex);
        }
    }

    public static void Export(PlanImage plan, Stream stream) => ToModel(plan).WriteTo(stream);

    public static byte[] ToBytes(PlanImage plan) => ToModel(plan).ToByteArray();

    /// <summary>
    /// The per-output-channel weight scales the quantizer used, recovered from the plan: the plan keeps
    /// only M[c] and shift[c] with M * 2^(shift - 31) = s_x * s_w[c] / s_y, so s_w[c] = real * s_y / s_x.
    /// </summary>
    public static double[] WeightScales(PlanImage plan, OpInfo op)
    {
        TensorInfo x = plan.Tensor(op.Input0), y = plan.Tensor(op.Output);
        var scales = new double[y.C];
        int multipliers = plan.ConstantsOffset + (int)op.Multiplier, shifts = plan.ConstantsOffset + (int)op.Shift;
        for (int c = 0; c < scales.Length; c++)
        {
            int m = BinaryPrimitives.ReadInt32LittleEndian(plan.Image.AsSpan(multipliers + 4 * c));
            int shift = BinaryPrimitives.ReadInt32LittleEndian(plan.Image.AsSpan(shifts + 4 * c));
            double real = Math.ScaleB((double)m, shift - 31);
            scales[c] = real * y.Scale / x.Scale;
        }
        return scales;
    }

    internal static ModelProto ToModel(PlanImage plan)
    {
        GraphProto g = new Writer(plan).Write();
        TensorInfo input = plan.Tensor(plan.InputTensor);
        var model = new ModelProto
        {
            IrVersion = OnnxFormat.IrVersion,
            ProducerName = "TinyTrain",
            ProducerVersion = typeof(QdqExporter).Assembly.GetName().Version?.ToString() ?? "0",
            DocString = $"TinyTrain int8 plan '{plan.ModelName}' as QDQ: input int8 (1, {input.C}, {input.H}, {input.W}), {plan.NumClasses} logits",
            Graph = g,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = OnnxFormat.Opset });
        model.MetadataProps.Add(new StringStringEntryProto { Key = OnnxFormat.ModelNameKey, Value = plan.ModelName });
        return model;
    }

    private sealed class Writer
    {
        private const int Int8 = (int)TensorProto.Types.DataType.Int8;
        private const int UInt8 = (int)TensorProto.Types.DataType.Uint8;

        private readonly PlanImage _plan;
        private readonly GraphProto _g;
        private readonly HashSet<string> _names = new(StringComparer.Ordinal) { InputName, Int8OutputName, OutputName };
        private readonly string?[] _value;   // per plan tensor: the ONNX uint8 value holding it
        private readonly int[] _rank;        // 4 for (1, C, H, W), 2 for (1, C*H*W)
        private readonly string?[] _scale, _zeroPoint;   // per plan tensor: its scalar quantization initializers
        private readonly Dictionary<(int Tensor, int Rank), string> _reshaped = new();

        public Writer(PlanImage plan)
        {
            _plan = plan;
            _g = new GraphProto { Name = plan.ModelName };
            _value = new string?[plan.TensorCount];
            _rank = new int[plan.TensorCount];
            _scale = new string?[plan.TensorCount];
            _zeroPoint = new string?[plan.TensorCount];
        }

        public GraphProto Write()
        {
            int input = _plan.InputTensor, output = _plan.OutputTensor;
            TensorInfo x = Int8Tensor(input, "the model input");
            _g.Input.Add(ValueInfo(InputName, Int8, 1, x.C, x.H, x.W));
            string inputFloat = Unique(InputName + ".float");
            Add("DequantizeLinear", InputName + ".dequantize", new[] { InputName, Scale(input), Int8ZeroPoint(input) }, inputFloat);
            _value[input] = Unique(InputName + ".uint8");
            Add("QuantizeLinear", InputName + ".quantize", new[] { inputFloat, Scale(input), ZeroPoint(input) }, _value[input]!);
            _rank[input] = 4;

            // The inference pass; in a training plan it also holds Init and Save ops, which are not inference.
            // A patch stage is how its inner ops run, not an op of the model: they are exported as they are.
            for (int i = 0; i < _plan.ForwardOpCount; i++)
                if (_plan.Op(i).Phase == OpPhase.Forward && _plan.Op(i).Kind is not (PlanOpKind.PatchStage or PlanOpKind.PatchGraphStage))
                    WriteOp(i, _plan.Op(i));

            if (_value[output] is null)
                throw new TinyTrainException($"{_plan.Source}: no forward op writes the output tensor '{_plan.Tensor(output).Name()}'; the plan cannot be exported");
            // Back to int8 on the way out, flattened to (1, classes) where the logits are held as (1, C, H, W).
            string logits = Dequantize(Int8OutputName, output, _rank[output]);
            if (_rank[output] != 2)
            {
                string flat = Unique(Int8OutputName + ".flat");
                Add("Flatten", Int8OutputName + ".flatten", new[] { logits }, flat).Attribute.Add(Int("axis", 1));
                logits = flat;
            }
            string zeroPoint = Int8ZeroPoint(output);
            Add("QuantizeLinear", Int8OutputName + ".quantize", new[] { logits, Scale(output), zeroPoint }, Int8OutputName);
            Add("DequantizeLinear", OutputName, new[] { Int8OutputName, Scale(output), zeroPoint }, OutputName);
            int classes = _plan.Tensor(output).ElementCount;
            _g.Output.Add(ValueInfo(Int8OutputName, Int8, 1, classes));
            _g.Output.Add(ValueInfo(OutputName, OnnxFormat.Float, 1, classes));
            return _g;
        }

        private void WriteOp(int index, OpInfo op)
        {
            TensorInfo y = Int8Tensor(op.Output, $"the output of op {index}");
            string name = y.Name();
            string yFloat = Unique(name + ".float");
            int rank = 4;
            switch (op.Kind)
            {
                case PlanOpKind.Conv2D:
                case PlanOpKind.DepthwiseConv2D:
                {
                    bool depthwise = op.Kind == PlanOpKind.DepthwiseConv2D;
                    TensorInfo x = Int8Tensor(op.Input0, $"the input of op '{name}'");
                    int kernel = op.Arg(0), stride = op.Arg(1), pad = op.Arg(2), groups = depthwise ? x.C : op.Arg(3);
                    var inputs = new List<string> { Dequantize(name, op.Input0, 4) };
                    inputs.AddRange(WeightsAndBias(name, op, new long[] { y.C, x.C / groups, kernel, kernel }));
                    NodeProto conv = Add("Conv", name, inputs, yFloat);
                    conv.Attribute.Add(Ints("kernel_shape", kernel, kernel));
                    conv.Attribute.Add(Ints("strides", stride, stride));
                    conv.Attribute.Add(Ints("pads", pad, pad, pad, pad));
                    conv.Attribute.Add(Ints("dilations", 1, 1));
                    conv.Attribute.Add(Int("group", groups));
                    yFloat = Activation(name, yFloat, op.Output, depthwise ? op.Arg(3) : op.Arg(4), depthwise ? op.Arg(4) : op.Arg(5));
                    break;
                }
                case PlanOpKind.FullyConnected:
                {
                    TensorInfo x = Int8Tensor(op.Input0, $"the input of op '{name}'");
                    // y = x W^T + b: Gemm with transB = 1 takes the plan's (Out, In) weight as it is.
                    var inputs = new List<string> { Dequantize(name, op.Input0, 2) };
                    inputs.AddRange(WeightsAndBias(name, op, new long[] { y.C, x.ElementCount }));
                    NodeProto gemm = Add("Gemm", name, inputs, yFloat);
                    gemm.Attribute.Add(Float("alpha", 1f));
                    gemm.Attribute.Add(Float("beta", 1f));
                    gemm.Attribute.Add(Int("transB", 1));
                    yFloat = Activation(name, yFloat, op.Output, op.Arg(0), op.Arg(1));
                    rank = 2;
                    break;
                }
                case PlanOpKind.Add:
                {
                    Int8Tensor(op.Input0, $"input 0 of op '{name}'");
                    Int8Tensor(op.Input1, $"input 1 of op '{name}'");
                    rank = _rank[op.Input0] == _rank[op.Input1] ? _rank[op.Input0] : 4;
                    Add("Add", name, new[] { Dequantize(name, op.Input0, rank), Dequantize(name, op.Input1, rank) }, yFloat);
                    yFloat = Activation(name, yFloat, op.Output, op.Arg(7), op.Arg(8));
                    break;
                }
                case PlanOpKind.AvgPool:
                {
                    Int8Tensor(op.Input0, $"the input of op '{name}'");
                    NodeProto pool = Add("AveragePool", name, new[] { Dequantize(name, op.Input0, 4) }, yFloat);
                    pool.Attribute.Add(Ints("kernel_shape", op.Arg(0), op.Arg(0)));
                    pool.Attribute.Add(Ints("strides", op.Arg(1), op.Arg(1)));
                    pool.Attribute.Add(Ints("pads", 0, 0, 0, 0));
                    yFloat = Activation(name, yFloat, op.Output, op.Arg(2), op.Arg(3));
                    break;
                }
                case PlanOpKind.GlobalAvgPool:
                {
                    Int8Tensor(op.Input0, $"the input of op '{name}'");
                    Add("GlobalAveragePool", name, new[] { Dequantize(name, op.Input0, 4) }, yFloat);
                    yFloat = Activation(name, yFloat, op.Output, op.Arg(0), op.Arg(1));
                    break;
                }
                default:
                    throw new TinyTrainException($"{_plan.Source}: op '{name}' has kind {(int)op.Kind}, which the QDQ exporter does not know");
            }
            string q = Unique(name);
            Add("QuantizeLinear", name + ".quantize", new[] { yFloat, Scale(op.Output), ZeroPoint(op.Output) }, q);
            _value[op.Output] = q;
            _rank[op.Output] = rank;
        }

        // Int8 weights (OC, ...) and int32 bias, each through a per-channel DequantizeLinear (axis 0).
        private List<string> WeightsAndBias(string name, OpInfo op, long[] weightDims)
        {
            TensorInfo x = _plan.Tensor(op.Input0);
            int channels = (int)weightDims[0];
            long count = 1;
            foreach (long d in weightDims) count *= d;
            if (op.Weights == PlanFormat.NoConstant || op.Multiplier == PlanFormat.NoConstant || op.Shift == PlanFormat.NoConstant)
                throw new TinyTrainException($"{_plan.Source}: op '{name}' has no weights or requantization constants; the plan is malformed");
            OpFlags flags = op.Flags;
            // A trained slice's whole initial weight is in Constants at args[8] (OpFlags.WeightsSliced).
            int at = (flags & OpFlags.WeightsSliced) != 0 ? Locate(name, "weights", (uint)op.Arg(8), false, count)
                : Locate(name, "weights", op.Weights, (flags & OpFlags.WeightsInParams) != 0, count);
            double[] weightScale = WeightScales(_plan, op);

            var wScale = new float[channels];
            for (int c = 0; c < channels; c++) wScale[c] = (float)weightScale[c];
            string w = Initializer(name + ".weight", Int8, weightDims, ByteString.CopyFrom(_plan.Image, at, (int)count));
            string ws = FloatInitializer(name + ".weight_scale", new long[] { channels }, wScale);
            string wz = Initializer(name + ".weight_zero_point", Int8, new long[] { channels }, ByteString.CopyFrom(new byte[channels]));
            NodeProto dqw = Add("DequantizeLinear", name + ".weight_dequantize", new[] { w, ws, wz }, Unique(name + ".weight_float"));
            dqw.Attribute.Add(Int("axis", 0));
            var inputs = new List<string> { dqw.Output[0] };

            if (op.Bias == PlanFormat.NoConstant) return inputs;
            // The bias is int32 at scale s_x * s_w[c], so that ORT's QLinearConv can add it to the accumulator as it is.
            var bScale = new float[channels];
            for (int c = 0; c < channels; c++) bScale[c] = (float)(x.Scale * weightScale[c]);
            int biasAt = Locate(name, "bias", op.Bias, (flags & OpFlags.BiasInParams) != 0, 4L * channels);
            string b = Initializer(name + ".bias", OnnxFormat.Int32, new long[] { channels }, ByteString.CopyFrom(_plan.Image, biasAt, 4 * channels));
            string bs = FloatInitializer(name + ".bias_scale", new long[] { channels }, bScale);
            string bz = Initializer(name + ".bias_zero_point", OnnxFormat.Int32, new long[] { channels }, ByteString.CopyFrom(new byte[4 * channels]));
            NodeProto dqb = Add("DequantizeLinear", name + ".bias_dequantize", new[] { b, bs, bz }, Unique(name + ".bias_float"));
            dqb.Attribute.Add(Int("axis", 0));
            inputs.Add(dqb.Output[0]);
            return inputs;
        }

        /// <summary>
        /// Where <paramref name="length"/> bytes an op field points at lie in the image. In a training plan a
        /// trained layer's weights and bias live in the params region (SRAM), which InitParams ops fill from
        /// Constants at bind; the export takes those initial values, the ones the file holds.
        /// </summary>
        private int Locate(string name, string what, uint offset, bool inParams, long length)
        {
            long at = offset;
            if (inParams)
            {
                at = -1;
                for (int j = 0; j < _plan.OpCount && at < 0; j++)
                {
                    OpInfo init = _plan.Op(j);
                    if (init.Kind != PlanOpKind.InitParams) continue;
                    long start = init.Arg(1), size = init.Arg(0);
                    if (offset >= start && offset + length <= start + size) at = init.Weights + (offset - start);
                }
                if (at < 0)
                    throw new TinyTrainException($"{_plan.Source}: op '{name}': its {what} live in the params region, but no InitParams op fills them; the plan is malformed");
            }
            if (at + length > _plan.ConstantsLength)
                throw new TinyTrainException($"{_plan.Source}: op '{name}': its {what} run past the constants; the plan is malformed");
            return _plan.ConstantsOffset + (int)at;
        }

        /// <summary>
        /// The runtime clamps the requantized output to [actMin, actMax]; QuantizeLinear already saturates
        /// to [-128, 127], so only a tighter bound needs a node: Relu when the floor is the zero point,
        /// else Clip at the bounds' real values.
        /// </summary>
        private string Activation(string name, string yFloat, int output, int actMin, int actMax)
        {
            TensorInfo y = _plan.Tensor(output);
            if (actMin <= -128 && actMax >= 127) return yFloat;
            string clamped = Unique(name + ".clamped");
            if (actMax >= 127 && actMin == y.ZeroPoint)
            {
                Add("Relu", name + ".relu", new[] { yFloat }, clamped);
                return clamped;
            }
            int lo = Math.Max(actMin, -128), hi = Math.Min(actMax, 127);
            string min = FloatInitializer(name + ".clip_min", Array.Empty<long>(), new[] { (lo - y.ZeroPoint) * y.Scale });
            string max = FloatInitializer(name + ".clip_max", Array.Empty<long>(), new[] { (hi - y.ZeroPoint) * y.Scale });
            Add("Clip", name + ".clip", new[] { yFloat, min, max }, clamped);
            return clamped;
        }

        // A DequantizeLinear of its own for each consumer: ORT's QDQ fusion matches node units one by one.
        private string Dequantize(string consumer, int tensor, int rank)
        {
            string x = Value(tensor, rank);
            string xName = _plan.Tensor(tensor).Name();
            string output = Unique($"{consumer}.{xName}.float");
            Add("DequantizeLinear", $"{consumer}.{xName}.dequantize", new[] { x, Scale(tensor), ZeroPoint(tensor) }, output);
            return output;
        }

        // The int8 value of a tensor at the rank an op needs, flattened or reshaped (once) where it differs.
        private string Value(int tensor, int rank)
        {
            string value = _value[tensor] ?? throw new TinyTrainException(
                $"{_plan.Source}: tensor '{_plan.Tensor(tensor).Name()}' is read before any op writes it; the plan is malformed");
            if (_rank[tensor] == rank) return value;
            if (_reshaped.TryGetValue((tensor, rank), out string? done)) return done;
            // DQ -> Flatten/Reshape -> Q, as ORT's own quantizer writes it: ORT drops the pair and keeps an
            // int8 reshape, whereas a bare int8 Flatten would block its int8 -> uint8 conversion.
            string to = Unique($"{value}.{(rank == 2 ? "flat" : "4d")}");
            string from = Dequantize(to, tensor, _rank[tensor]);
            string reshaped = Unique(to + ".float");
            if (rank == 2)
            {
                Add("Flatten", to, new[] { from }, reshaped).Attribute.Add(Int("axis", 1));
            }
            else
            {
                TensorInfo t = _plan.Tensor(tensor);
                var dims = new long[] { 1, t.C, t.H, t.W };
                string shape = Unique(to + ".shape");
                _g.Initializer.Add(new TensorProto { Name = shape, DataType = OnnxFormat.Int64, Dims = { 4 }, Int64Data = { dims } });
                Add("Reshape", to, new[] { from, shape }, reshaped);
            }
            Add("QuantizeLinear", to + ".quantize", new[] { reshaped, Scale(tensor), ZeroPoint(tensor) }, to);
            _reshaped[(tensor, rank)] = to;
            return to;
        }

        private string Scale(int tensor)
        {
            TensorInfo t = _plan.Tensor(tensor);
            return _scale[tensor] ??= FloatInitializer(t.Name() + ".scale", Array.Empty<long>(), new[] { t.Scale });
        }

        // Activations inside the graph are uint8: the plan's int8 value + 128, with zero point + 128.
        private string ZeroPoint(int tensor)
        {
            TensorInfo t = _plan.Tensor(tensor);
            return _zeroPoint[tensor] ??= Initializer(t.Name() + ".zero_point", UInt8, Array.Empty<long>(),
                ByteString.CopyFrom((byte)(t.ZeroPoint + 128)));
        }

        // The plan's own int8 zero point, for the graph's int8 input and outputs.
        private string Int8ZeroPoint(int tensor)
        {
            TensorInfo t = _plan.Tensor(tensor);
            return Initializer(t.Name() + ".zero_point_int8", Int8, Array.Empty<long>(), ByteString.CopyFrom((byte)(sbyte)t.ZeroPoint));
        }

        private TensorInfo Int8Tensor(int index, string what)
        {
            if (index == PlanFormat.NoTensor)
                throw new TinyTrainException($"{_plan.Source}: {what} is missing; the plan is malformed");
            TensorInfo t = _plan.Tensor(index);
            if (t.Type != ElementType.Int8)
                throw new TinyTrainException($"{_plan.Source}: {what}, tensor '{t.Name()}', is {t.Type}; only int8 tensors can be exported as QDQ");
            return t;
        }

        private NodeProto Add(string opType, string name, IEnumerable<string> inputs, string output)
        {
            var n = new NodeProto { OpType = opType, Name = name };
            n.Input.Add(inputs);
            n.Output.Add(output);
            _g.Node.Add(n);
            return n;
        }

        private string FloatInitializer(string name, long[] dims, float[] data)
        {
            var bytes = new byte[data.Length * 4];
            for (int i = 0; i < data.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), data[i]);
            return Initializer(name, OnnxFormat.Float, dims, ByteString.CopyFrom(bytes));
        }

        // Raw data is little-endian, as the plan's constants are, so weights and biases are copied as they lie.
        private string Initializer(string name, int dataType, long[] dims, ByteString raw)
        {
            name = Unique(name);
            var t = new TensorProto { Name = name, DataType = dataType, RawData = raw };
            t.Dims.Add(dims);
            _g.Initializer.Add(t);
            return name;
        }

        private string Unique(string wanted)
        {
            if (_names.Add(wanted)) return wanted;
            for (int k = 1; ; k++)
                if (_names.Add($"{wanted}_{k}")) return $"{wanted}_{k}";
        }

        private static ValueInfoProto ValueInfo(string name, int elementType, params int[] dims)
        {
            var shape = new TensorShapeProto();
            foreach (int d in dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
            return new ValueInfoProto
            {
                Name = name,
                Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = elementType, Shape = shape } },
            };
        }

        private static AttributeProto Int(string name, long value)
            => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

        private static AttributeProto Float(string name, float value)
            => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

        private static AttributeProto Ints(string name, params long[] values)
        {
            var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
            a.Ints.Add(values);
            return a;
        }
    }
}
