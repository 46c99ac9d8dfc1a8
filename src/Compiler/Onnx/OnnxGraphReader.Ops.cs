using Onnx;

namespace TinyTrain.Compiler.Onnx;

using TinyTrain.Compiler.Graphs;

// One method per ONNX op type TinyTrain reads. Each checks what our ops cannot express and
// either adds a node, binds its output to an existing value (ops that change nothing), or
// records a constant (shape arithmetic that PyTorch exports around Reshape).
internal sealed partial class OnnxGraphReader
{
    private const string Supported =
        "Conv, BatchNormalization, Relu, Clip, Add, AveragePool, GlobalAveragePool, Flatten, Reshape, Gemm, MatMul, " +
        "Identity, Dropout, Constant, Shape, Gather, Unsqueeze, Squeeze, Concat";

    private void Convert()
    {
        string domain = _node.Domain;
        if (domain.Length > 0 && domain != "ai.onnx")
            throw Fail($"node '{_name}' has op type '{domain}.{_node.OpType}', which TinyTrain does not support (supported: {Supported})");
        switch (_node.OpType)
        {
            case "Conv": Conv(); break;
            case "BatchNormalization": BatchNormalization(); break;
            case "Relu": Unary(OpKind.Relu); break;
            case "Clip": Clip(); break;
            case "Add": Add(); break;
            case "AveragePool": AveragePool(); break;
            case "GlobalAveragePool": GlobalAveragePool(); break;
            case "Flatten": Flatten(); break;
            case "Reshape": Reshape(); break;
            case "Gemm": Gemm(); break;
            case "MatMul": MatMul(); break;
            case "Identity": Identity(); break;
            case "Dropout": Dropout(); break;
            case "Constant": ConstantNode(); break;
            case "Shape": ShapeOf(); break;
            case "Gather": Gather(); break;
            case "Unsqueeze": Unsqueeze(squeeze: false); break;
            case "Squeeze": Unsqueeze(squeeze: true); break;
            case "Concat": Concat(); break;
            default:
                throw Fail($"node '{_name}' has op type '{_node.OpType}', which TinyTrain does not support (supported: {Supported})");
        }
    }

    // x is (N,C,H,W), w is (OC, C/group, K, K), b is (OC).
    private void Conv()
    {
        Value x = Activation(0, rank: 4);
        Shape xs = NodeOf(x).Shape;
        OnnxConstant w = FloatConstant(1, "weight");
        if (w.Dims.Length != 4)
            throw NodeFail($"has weight '{_node.Input[1]}' of shape {w.DimsText}; a 2-D convolution's weight is [out channels, in channels / group, k, k]");
        if (w.Dims[2] != w.Dims[3])
            throw NodeFail($"has a {w.Dims[2]}x{w.Dims[3]} kernel; TinyTrain supports square kernels only");
        int group = Small(Int("group", 1), "group", 1, MaxDim);
        int k = Small(w.Dims[2], "kernel size", 1, MaxDim);
        long[]? kernelShape = Ints("kernel_shape");
        if (kernelShape is not null && (kernelShape.Length != 2 || kernelShape[0] != k || kernelShape[1] != k))
            throw NodeFail($"has kernel_shape [{string.Join(", ", kernelShape)}], which does not match its weight '{_node.Input[1]}' of shape {w.DimsText}");
        int outChannels = Small(w.Dims[0], "output channel count", 1, MaxDim);
        if (xs.C % group != 0 || outChannels % group != 0 || w.Dims[1] != xs.C / group)
            throw NodeFail($"has weight '{_node.Input[1]}' of shape {w.DimsText}; for an input of {xs.C} channels and group {group} it must be [{outChannels}, {(xs.C % group == 0 ? xs.C / group : (double)xs.C / group)}, {k}, {k}]");
        CheckDilations();
        int stride = Stride();
        int padding = ConvPadding(xs, k, stride);
        Tensor? bias = null;
        if (HasInput(2))
        {
            OnnxConstant b = FloatConstant(2, "bias");
            if (b.Count != outChannels)
                throw NodeFail($"has bias '{_node.Input[2]}' of shape {b.DimsText}; it must hold {outChannels} values, one per output channel");
            bias = new Tensor(new[] { outChannels }, (float[])b.Floats!.Clone());
        }
        int h = GraphBuilder.ConvOut(xs.H, k, stride, padding), wOut = GraphBuilder.ConvOut(xs.W, k, stride, padding);
        if (h < 1 || wOut < 1)
            throw NodeFail($"has a {k}x{k} kernel that does not fit its {xs.H}x{xs.W} input (padding {padding})");
        Bind(new Node
        {
            Id = _nodes.Count,
            Name = _name,
            Kind = OpKind.Conv2d,
            Inputs = new[] { x.Node },
            Shape = new Shape(outChannels, h, wOut),
            Kernel = k,
            Stride = stride,
            Padding = padding,
            Groups = group,
            Weight = new Tensor(new[] { outChannels, xs.C / group, k, k }, (float[])w.Floats!.Clone()),
            Bias = bias,
        }, 4);
    }

    private void BatchNormalization()
    {
        Value x = Activation(0, rank: 0);
        Shape xs = NodeOf(x).Shape;
        if (Int("training_mode", 0) != 0)
            throw NodeFail("is in training mode; export the model in eval mode (model.eval() in PyTorch)");
        if (Int("spatial", 1) != 1)
            throw NodeFail("has spatial = 0 (statistics per position); TinyTrain supports per-channel BatchNorm only");
        for (int i = 1; i < _node.Output.Count; i++)
            if (_node.Output[i].Length > 0 && _uses.ContainsKey(_node.Output[i]))
                throw NodeFail($"uses its training output '{_node.Output[i]}'; export the model in eval mode (model.eval() in PyTorch)");
        string[] roles = { "scale", "bias (B)", "running mean", "running variance" };
        var parameters = new Tensor[4];
        for (int i = 0; i < 4; i++)
        {
            OnnxConstant p = FloatConstant(i + 1, roles[i]);
            if (p.Count != xs.C)
                throw NodeFail($"has {roles[i]} '{_node.Input[i + 1]}' of shape {p.DimsText}; it must hold {xs.C} values, one per channel");
            parameters[i] = new Tensor(new[] { xs.C }, (float[])p.Floats!.Clone());
        }
        // ONNX's momentum weighs the old running value, ours (PyTorch's) the new batch; rounding
        // to 6 places gives back the value a person chose (0.1, not 0.100000024).
        float momentum = (float)Math.Round(1.0 - Float("momentum", 0.9f), 6);
        Bind(new Node
        {
            Id = _nodes.Count,
            Name = _name,
            Kind = OpKind.BatchNorm,
            Inputs = new[] { x.Node },
            Shape = xs,
            Epsilon = Float("epsilon", 1e-5f),
            Momentum = momentum,
            Weight = parameters[0],
            Bias = parameters[1],
            RunningMean = parameters[2],
            RunningVar = parameters[3],
        }, x.Rank);
    }

    private void Unary(OpKind kind)
    {
        Value x = Activation(0, rank: 0);
        Bind(new Node { Id = _nodes.Count, Name = _name, Kind = kind, Inputs = new[] { x.Node }, Shape = NodeOf(x).Shape }, x.Rank);
    }

    // Opset < 11 gives min and max as attributes, later opsets as optional inputs.
    private void Clip()
    {
        float min = Float("min", float.NegativeInfinity), max = Float("max", float.PositiveInfinity);
        if (HasInput(1)) min = ScalarConstant(1, "min");
        if (HasInput(2)) max = ScalarConstant(2, "max");
        if (min == 0f && max == 6f)
            Unary(OpKind.Relu6);
        else if (min == 0f && max >= float.MaxValue)
            Unary(OpKind.Relu);
        else
            throw NodeFail($"clips to [{min}, {max}]; TinyTrain supports Clip only as ReLU [0, inf) or ReLU6 [0, 6]");
    }

    private void Add()
    {
        if (_node.Input.Count != 2 || !HasInput(0) || !HasInput(1))
            throw NodeFail($"has {_node.Input.Count} inputs; Add takes two");
        bool aIsValue = _values.TryGetValue(_node.Input[0], out Value a);
        bool bIsValue = _values.TryGetValue(_node.Input[1], out Value b);
        if (aIsValue && bIsValue)
        {
            Shape sa = NodeOf(a).Shape, sb = NodeOf(b).Shape;
            if (sa != sb || a.Rank != b.Rank)
                throw NodeFail($"adds '{_node.Input[0]}' ({ShapeText(a)}) and '{_node.Input[1]}' ({ShapeText(b)}); TinyTrain adds tensors of one shape only (no broadcasting)");
            Bind(new Node { Id = _nodes.Count, Name = _name, Kind = OpKind.Add, Inputs = new[] { a.Node, b.Node }, Shape = sa }, a.Rank);
            return;
        }
        if (!aIsValue && !bIsValue)
            throw NodeFail("adds two constants; fold them before exporting");
        // MatMul + Add(bias) is how PyTorch exports some linear layers.
        Value v = aIsValue ? a : b;
        int constantIndex = aIsValue ? 1 : 0;
        string valueName = _node.Input[aIsValue ? 0 : 1];
        Node linear = NodeOf(v);
        if (!_awaitingBias.Contains(v.Node) || _uses.GetValueOrDefault(valueName) != 1)
            throw NodeFail($"adds the constant '{_node.Input[constantIndex]}'; TinyTrain supports adding a constant only as the bias right after a MatMul");
        OnnxConstant c = FloatConstant(constantIndex, "bias");
        int outFeatures = linear.Shape.C;
        bool rowShaped = c.Dims.Length == 1 || (c.Dims.Length == 2 && c.Dims[0] == 1);
        if (c.Count != outFeatures || !rowShaped)
            throw NodeFail($"adds bias '{_node.Input[constantIndex]}' of shape {c.DimsText} to a MatMul with {outFeatures} outputs; it must be [{outFeatures}]");
        linear.Bias = new Tensor(new[] { outFeatures }, (float[])c.Floats!.Clone());
        _awaitingBias.Remove(v.Node);
        Alias(v);
    }

    private void AveragePool()
    {
        Value x = Activation(0, rank: 4);
        Shape xs = NodeOf(x).Shape;
        long[]? kernel = Ints("kernel_shape");
        if (kernel is null || kernel.Length != 2 || kernel[0] != kernel[1])
            throw NodeFail($"has kernel_shape {(kernel is null ? "missing" : $"[{string.Join(", ", kernel)}]")}; TinyTrain supports square 2-D pooling windows only");
        int k = Small(kernel[0], "kernel size", 1, MaxDim);
        int stride = Stride();
        CheckDilations();
        string autoPad = Text("auto_pad", "NOTSET");
        if (autoPad is not ("NOTSET" or "VALID" or ""))
            throw NodeFail($"has auto_pad {autoPad}; TinyTrain's average pool does not pad: export with explicit pads of 0");
        long[]? pads = Ints("pads");
        if (pads is not null && pads.Any(p => p != 0))
            throw NodeFail($"has pads [{string.Join(", ", pads)}]; TinyTrain's average pool does not pad: pad with a Conv instead, or remove the padding");
        if (Int("ceil_mode", 0) != 0 && ((xs.H - k) % stride != 0 || (xs.W - k) % stride != 0))
            throw NodeFail("has ceil_mode = 1 with a window that does not tile the input; TinyTrain rounds pooled sizes down: export with ceil_mode = 0");
        int h = GraphBuilder.ConvOut(xs.H, k, stride, 0), w = GraphBuilder.ConvOut(xs.W, k, stride, 0);
        if (h < 1 || w < 1)
            throw NodeFail($"has a {k}x{k} window larger than its {xs.H}x{xs.W} input");
        Bind(new Node
        {
            Id = _nodes.Count,
            Name = _name,
            Kind = OpKind.AvgPool,
            Inputs = new[] { x.Node },
            Shape = new Shape(xs.C, h, w),
            Kernel = k,
            Stride = stride,
        }, 4);
    }

    private void GlobalAveragePool()
    {
        Value x = Activation(0, rank: 4);
        Bind(new Node { Id = _nodes.Count, Name = _name, Kind = OpKind.GlobalAvgPool, Inputs = new[] { x.Node }, Shape = new Shape(NodeOf(x).Shape.C, 1, 1) }, 4);
    }

    private void Flatten()
    {
        Value x = Activation(0, rank: 0);
        long axis = Int("axis", 1);
        if (axis < 0) axis += x.Rank;
        if (axis != 1)
            throw NodeFail($"flattens from axis {Int("axis", 1)}; TinyTrain flattens (N, ...) to (N, features) only (axis 1)");
        FlattenTo2D(x);
    }

    private void FlattenTo2D(Value x)
    {
        Shape xs = NodeOf(x).Shape;
        // The exporter's own Flatten before a Gemm has no node in the graph it came from.
        if (_node.DocString == OnnxFormat.ImplicitReshape && xs.H == 1 && xs.W == 1)
        {
            Alias(x with { Rank = 2 });
            return;
        }
        Bind(new Node { Id = _nodes.Count, Name = _name, Kind = OpKind.Flatten, Inputs = new[] { x.Node }, Shape = new Shape(xs.Size, 1, 1) }, 2);
    }

    // Reshape is accepted where it is a flatten to (N, features), or changes nothing about the data.
    private void Reshape()
    {
        Value x = Activation(0, rank: 0);
        Shape xs = NodeOf(x).Shape;
        long[] target = IntConstant(1, "shape").Ints!;
        bool allowZero = Int("allowzero", 0) != 0;
        long[] inDims = x.Rank == 4 ? new long[] { OnnxConstant.Batch, xs.C, xs.H, xs.W } : new long[] { OnnxConstant.Batch, xs.Size };
        string targetText = $"[{string.Join(", ", target.Select(d => d == OnnxConstant.Batch ? "N" : d.ToString()))}]";
        var dims = new long[target.Length];
        int inferred = -1;
        for (int i = 0; i < target.Length; i++)
        {
            long d = target[i];
            if (d == 0 && !allowZero)
                d = i < inDims.Length ? inDims[i] : throw NodeFail($"reshapes to {targetText}, copying a dimension the input does not have");
            if (d == -1)
            {
                if (inferred >= 0) throw NodeFail($"reshapes to {targetText}, with more than one -1");
                inferred = i;
            }
            else if (d != OnnxConstant.Batch && (d < 1 || d > MaxSize))
                throw NodeFail($"reshapes to {targetText}; TinyTrain supports only a flatten to (N, features)");
            dims[i] = d;
        }
        // The batch dimension must stay first and whole: N, 0 (copied N), 1 with a batch of 1, or -1 with all else fixed.
        bool batchFirst = dims.Length >= 2 && (dims[0] == OnnxConstant.Batch || (dims[0] == 1 && _batchIsOne) || inferred == 0);
        long rest = 1;
        for (int i = 1; i < dims.Length && batchFirst; i++)
        {
            if (dims[i] == OnnxConstant.Batch) batchFirst = false;
            else if (i != inferred) rest *= dims[i];
        }
        if (!batchFirst || rest < 1 || rest > xs.Size || xs.Size % rest != 0 || (inferred == 0 && rest != xs.Size))
            throw NodeFail($"reshapes to {targetText}; TinyTrain supports only a flatten to (N, features), keeping the batch first");
        if (inferred > 0) dims[inferred] = xs.Size / rest;
        else if (rest != xs.Size)
            throw NodeFail($"reshapes {xs.Size} values per sample to {targetText}; the sizes do not match");

        if (dims.Length == 2)
        {
            if (x.Rank == 2) Alias(x);
            else FlattenTo2D(x);
        }
        else if (dims.Length == 4 && (dims[1] == xs.C && dims[2] == xs.H && dims[3] == xs.W || (dims[2] == 1 && dims[3] == 1 && xs.H == 1 && xs.W == 1)))
            Alias(x with { Rank = 4 });
        else
            throw NodeFail($"reshapes {ShapeText(x)} to {targetText}; TinyTrain supports only a flatten to (N, features)");
    }

    // y = x W^T + b with x (N, In); ONNX's B is W (transB = 1) or W^T (transB = 0).
    private void Gemm()
    {
        Value x = Activation(0, rank: 2);
        if (Int("transA", 0) != 0)
            throw NodeFail("has transA = 1; TinyTrain's linear layer takes the activations untransposed");
        if (Float("alpha", 1f) != 1f || (HasInput(2) && Float("beta", 1f) != 1f))
            throw NodeFail($"has alpha = {Float("alpha", 1f)}, beta = {Float("beta", 1f)}; TinyTrain supports Gemm with alpha = beta = 1 (a linear layer)");
        bool transB = Int("transB", 0) != 0;
        Node linear = LinearFrom(x, FloatConstant(1, "weight B"), transB);
        if (HasInput(2))
        {
            OnnxConstant c = FloatConstant(2, "bias C");
            int outFeatures = linear.Shape.C;
            bool rowShaped = c.Dims.Length <= 1 || (c.Dims.Length == 2 && c.Dims[0] == 1);
            if (!rowShaped || (c.Count != outFeatures && c.Count != 1))
                throw NodeFail($"has bias C '{_node.Input[2]}' of shape {c.DimsText}; it must be [{outFeatures}]");
            var bias = new float[outFeatures];
            if (c.Count == 1) Array.Fill(bias, c.Floats![0]);
            else c.Floats!.CopyTo(bias, 0);
            linear.Bias = new Tensor(new[] { outFeatures }, bias);
        }
        Bind(linear, 2);
    }

    private void MatMul()
    {
        Value x = Activation(0, rank: 2);
        Node linear = LinearFrom(x, FloatConstant(1, "weight"), transposed: false);
        Bind(linear, 2);
        _awaitingBias.Add(linear.Id);
    }

    private Node LinearFrom(Value x, OnnxConstant b, bool transposed)
    {
        int inFeatures = NodeOf(x).Shape.Size;
        string role = _node.OpType == "Gemm" ? "weight B" : "weight";
        long expectedIn = b.Dims.Length == 2 ? b.Dims[transposed ? 1 : 0] : -1;
        if (b.Dims.Length != 2 || expectedIn != inFeatures || b.Dims[transposed ? 0 : 1] < 1)
            throw NodeFail($"has {role} '{_node.Input[1]}' of shape {b.DimsText}; for {inFeatures} input features it must be {(transposed ? $"[out, {inFeatures}]" : $"[{inFeatures}, out]")}");
        int outFeatures = Small(b.Dims[transposed ? 0 : 1], "output feature count", 1, int.MaxValue);
        float[] w = (float[])b.Floats!.Clone();
        if (!transposed)
        {
            // B is (In, Out); our weight is (Out, In).
            w = new float[w.Length];
            for (int i = 0; i < inFeatures; i++)
                for (int o = 0; o < outFeatures; o++) w[o * inFeatures + i] = b.Floats![i * outFeatures + o];
        }
        return new Node
        {
            Id = _nodes.Count,
            Name = _name,
            Kind = OpKind.Linear,
            Inputs = new[] { x.Node },
            Shape = new Shape(outFeatures, 1, 1),
            Weight = new Tensor(new[] { outFeatures, inFeatures }, w),
        };
    }

    private void Identity()
    {
        string input = HasInput(0) ? _node.Input[0] : throw NodeFail("has no input");
        if (_values.TryGetValue(input, out Value v)) Alias(v);
        else _constants[_node.Output[0]] = Constant(input)!;
    }

    // Inference ignores dropout; its mask output must not feed anything.
    private void Dropout()
    {
        if (_node.Output.Count > 1 && _node.Output[1].Length > 0 && _uses.ContainsKey(_node.Output[1]))
            throw NodeFail($"uses its mask output '{_node.Output[1]}'; TinyTrain imports models for inference, where dropout does nothing");
        Alias(Activation(0, rank: 0));
    }

    private void ConstantNode()
    {
        AttributeProto? a = _node.Attribute.Count == 1 ? _node.Attribute[0] : null;
        OnnxConstant value = a?.Name switch
        {
            "value" when a.T is not null => OnnxConstant.Read(a.T, $"node '{_name}' (Constant): its value", Fail),
            "value_float" => OnnxConstant.Scalar(a.F),
            "value_floats" => OnnxConstant.Vector(a.Floats.ToArray()),
            "value_int" => OnnxConstant.Scalar(a.I),
            "value_ints" => OnnxConstant.Vector(a.Ints.ToArray()),
            _ => throw NodeFail($"has attribute '{a?.Name}'; TinyTrain reads Constant nodes holding a float or int64 tensor"),
        };
        _constants[_node.Output[0]] = value;
    }

    // Shape arithmetic: (N, C, H, W) with N kept symbolic, so that x.view(x.size(0), -1) folds.
    private void ShapeOf()
    {
        Value x = Activation(0, rank: 0);
        Shape xs = NodeOf(x).Shape;
        long[] dims = x.Rank == 4 ? new long[] { OnnxConstant.Batch, xs.C, xs.H, xs.W } : new long[] { OnnxConstant.Batch, xs.Size };
        long start = Int("start", 0), end = Int("end", dims.Length);
        if (start < 0) start += dims.Length;
        if (end < 0) end += dims.Length;
        start = Math.Clamp(start, 0, dims.Length);
        end = Math.Clamp(end, start, dims.Length);
        _constants[_node.Output[0]] = OnnxConstant.Vector(dims[(int)start..(int)end]);
    }

    private void Gather()
    {
        OnnxConstant data = IntConstant(0, "data");
        OnnxConstant indices = IntConstant(1, "indices");
        if (data.Dims.Length != 1 || Int("axis", 0) != 0)
            throw NodeFail("gathers from a tensor that is not a 1-D shape; TinyTrain folds Gather only in shape arithmetic");
        var result = new long[indices.Count];
        for (int i = 0; i < result.Length; i++)
        {
            long index = indices.Ints![i];
            if (index < 0) index += data.Count;
            if (index < 0 || index >= data.Count)
                throw NodeFail($"gathers index {indices.Ints[i]} from a shape of {data.Count} values");
            result[i] = data.Ints![index];
        }
        _constants[_node.Output[0]] = new OnnxConstant((long[])indices.Dims.Clone(), null, result);
    }

    private void Unsqueeze(bool squeeze)
    {
        OnnxConstant data = IntConstant(0, "data");
        long[]? axes = HasInput(1) ? IntConstant(1, "axes").Ints : Ints("axes");
        var dims = new List<long>(data.Dims);
        if (squeeze && axes is null)
        {
            dims.RemoveAll(d => d == 1);
        }
        else if (squeeze)
        {
            foreach (long axis in axes!.Select(a => a < 0 ? a + data.Dims.Length : a).OrderDescending())
            {
                if (axis < 0 || axis >= dims.Count || dims[(int)axis] != 1)
                    throw NodeFail($"squeezes axis {axis} of a tensor of shape {data.DimsText}");
                dims.RemoveAt((int)axis);
            }
        }
        else
        {
            int rank = data.Dims.Length + (axes?.Length ?? 0);
            foreach (long axis in (axes ?? throw NodeFail("has no axes")).Select(a => a < 0 ? a + rank : a).Order())
            {
                if (axis < 0 || axis > dims.Count)
                    throw NodeFail($"unsqueezes axis {axis} of a tensor of shape {data.DimsText}");
                dims.Insert((int)axis, 1);
            }
        }
        _constants[_node.Output[0]] = new OnnxConstant(dims.ToArray(), null, data.Ints);
    }

    private void Concat()
    {
        var result = new List<long>();
        for (int i = 0; i < _node.Input.Count; i++)
        {
            OnnxConstant part = IntConstant(i, "part");
            if (part.Dims.Length != 1)
                throw NodeFail("concatenates tensors that are not 1-D shapes; TinyTrain folds Concat only in shape arithmetic");
            result.AddRange(part.Ints!);
        }
        _constants[_node.Output[0]] = OnnxConstant.Vector(result.ToArray());
    }

    // Strides, dilations and padding shared by Conv and AveragePool.

    private int Stride()
    {
        long[] strides = Ints("strides") ?? new long[] { 1, 1 };
        if (strides.Length != 2 || strides[0] != strides[1])
            throw NodeFail($"has strides [{string.Join(", ", strides)}]; TinyTrain supports the same stride in height and width");
        return Small(strides[0], "stride", 1, MaxDim);
    }

    private void CheckDilations()
    {
        long[]? dilations = Ints("dilations");
        if (dilations is not null && dilations.Any(d => d != 1))
            throw NodeFail($"has dilations [{string.Join(", ", dilations)}]; TinyTrain supports undilated convolutions only");
    }

    private int ConvPadding(Shape xs, int k, int stride)
    {
        string autoPad = Text("auto_pad", "NOTSET");
        long[]? pads = Ints("pads");
        switch (autoPad)
        {
            case "NOTSET" or "":
                break;
            case "VALID":
                return 0;
            case "SAME_UPPER" or "SAME_LOWER":
                return SamePadding(xs, k, stride, autoPad);
            default:
                throw NodeFail($"has auto_pad '{autoPad}', which ONNX does not define");
        }
        if (pads is null) return 0;
        if (pads.Length != 4)
            throw NodeFail($"has pads [{string.Join(", ", pads)}]; a 2-D convolution has 4 pads");
        if (pads[0] != pads[2] || pads[1] != pads[3])
            throw NodeFail($"has asymmetric pads [{string.Join(", ", pads)}] (top, left, bottom, right); TinyTrain pads both sides equally: export with symmetric padding, or pad the input before the model");
        if (pads[0] != pads[1])
            throw NodeFail($"pads height by {pads[0]} and width by {pads[1]}; TinyTrain uses one padding for both");
        return Small(pads[0], "padding", 0, MaxDim);
    }

    // SAME gives an output of ceil(in / stride); the total padding must split evenly to be ours.
    private int SamePadding(Shape xs, int k, int stride, string autoPad)
    {
        long totalH = Math.Max(((xs.H + stride - 1) / stride - 1) * (long)stride + k - xs.H, 0);
        long totalW = Math.Max(((xs.W + stride - 1) / stride - 1) * (long)stride + k - xs.W, 0);
        if (totalH % 2 != 0 || totalW % 2 != 0 || totalH != totalW)
            throw NodeFail($"has auto_pad {autoPad}, which pads this {xs.H}x{xs.W} input unevenly; TinyTrain pads every side equally: export with explicit symmetric pads");
        return (int)(totalH / 2);
    }

    // Inputs and constants.

    private bool HasInput(int i) => i < _node.Input.Count && _node.Input[i].Length > 0;

    /// <summary>An input computed from the model input; rank 0 accepts either rank.</summary>
    private Value Activation(int i, int rank)
    {
        if (!HasInput(i))
            throw NodeFail($"has no input {i}");
        string name = _node.Input[i];
        if (!_values.TryGetValue(name, out Value v))
            throw NodeFail($"reads the constant '{name}' as its input {i}; TinyTrain needs it to be computed from the model input");
        if (rank != 0 && v.Rank != rank)
            throw NodeFail(rank == 2
                ? $"reads '{name}' ({ShapeText(v)}), but needs (N, features): add a Flatten before it"
                : $"reads '{name}' ({ShapeText(v)}), but needs (N, C, H, W)");
        return v;
    }

    private OnnxConstant FloatConstant(int i, string role)
    {
        OnnxConstant c = RequiredConstant(i, role);
        if (c.Floats is null)
            throw NodeFail($"has {role} '{_node.Input[i]}' of an integer type; TinyTrain needs float32 weights");
        return c;
    }

    private float ScalarConstant(int i, string role)
    {
        OnnxConstant c = FloatConstant(i, role);
        if (c.Count != 1)
            throw NodeFail($"has {role} '{_node.Input[i]}' of shape {c.DimsText}; it must be a single value");
        return c.Floats![0];
    }

    private OnnxConstant IntConstant(int i, string role)
    {
        OnnxConstant c = RequiredConstant(i, role);
        if (c.Ints is null)
            throw NodeFail($"has {role} '{_node.Input[i]}' of type float; it must be int64");
        return c;
    }

    private OnnxConstant RequiredConstant(int i, string role)
    {
        if (!HasInput(i))
            throw NodeFail($"has no {role} input");
        string name = _node.Input[i];
        if (_values.ContainsKey(name))
            throw NodeFail($"computes its {role} '{name}' from the model input; TinyTrain needs it to be an initializer (a constant)");
        return Constant(name) ?? throw NodeFail($"reads '{name}', which is neither an initializer nor the output of an earlier node; the file is missing that tensor");
    }

    private OnnxConstant? Constant(string name)
    {
        if (_constants.TryGetValue(name, out OnnxConstant? c)) return c;
        if (!_initializers.TryGetValue(name, out TensorProto? t)) return null;
        c = OnnxConstant.Read(t, $"initializer '{name}'", Fail);
        _constants[name] = c;
        return c;
    }

    // Attributes.

    private AttributeProto? Attr(string name)
    {
        foreach (AttributeProto a in _node.Attribute)
            if (a.Name == name) return a;
        return null;
    }

    private long Int(string name, long fallback) => Attr(name) switch
    {
        null => fallback,
        { Type: AttributeProto.Types.AttributeType.Int or AttributeProto.Types.AttributeType.Undefined } a => a.I,
        var a => throw NodeFail($"has attribute '{name}' of type {a.Type}; ONNX defines it as an int"),
    };

    private float Float(string name, float fallback) => Attr(name) switch
    {
        null => fallback,
        { Type: AttributeProto.Types.AttributeType.Float or AttributeProto.Types.AttributeType.Undefined } a => a.F,
        var a => throw NodeFail($"has attribute '{name}' of type {a.Type}; ONNX defines it as a float"),
    };

    private long[]? Ints(string name) => Attr(name) switch
    {
        null => null,
        { Type: AttributeProto.Types.AttributeType.Ints or AttributeProto.Types.AttributeType.Undefined } a => a.Ints.ToArray(),
        var a => throw NodeFail($"has attribute '{name}' of type {a.Type}; ONNX defines it as a list of ints"),
    };

    private string Text(string name, string fallback) => Attr(name) switch
    {
        null => fallback,
        { Type: AttributeProto.Types.AttributeType.String or AttributeProto.Types.AttributeType.Undefined } a => a.S.ToStringUtf8(),
        var a => throw NodeFail($"has attribute '{name}' of type {a.Type}; ONNX defines it as a string"),
    };

    private int Small(long value, string what, int min, int max)
    {
        if (value < min || value > max)
            throw NodeFail($"has {what} {value}, outside {min}..{max}");
        return (int)value;
    }

    private string ShapeText(Value v)
    {
        Shape s = NodeOf(v).Shape;
        return v.Rank == 2 ? $"N x {s.Size}" : $"N x {s.C} x {s.H} x {s.W}";
    }
}
