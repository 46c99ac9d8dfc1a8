namespace TinyTrain.Nano;

using TinyTrain.Runtime.Kernels;
using TinyTrain.Runtime.Ood;
using TinyTrain.Runtime.Plans;

/// <summary>
/// The plan executor of the nanoFramework build: src/Runtime's Execution/Executor.cs cut to what a microcontroller
/// needs (no Plan object, no probes, no Span), calling the same reference kernels, which this project links from
/// src/Runtime. It reads the plan straight from its byte[] (on a board, Flash), binds once (arena, writable params,
/// optimizer state) and then runs forward passes, training steps (bias or sparse updates, applied as soon as
/// their gradient exists) and OOD scores without allocating.
/// The plan is checked as far as a board can afford (magic, version, length, CRC-32, sections); its structure
/// is trusted as 'tinytrain compile' wrote it, and every kernel still checks its ranges before it runs.
/// </summary>
public sealed partial class NanoExecutor
{
    private const string Source = "plan";

    private readonly byte[] _image;
    private readonly byte[] _arena;
    private readonly byte[] _params;
    private readonly byte[] _state;
    private readonly int _model, _tensors, _tensorCount, _ops, _opCount, _constants, _names;
    private readonly int _forwardOps, _numClasses;
    private readonly int _inputTensor, _outputTensor;
    private readonly int _inputOffset, _inputLength, _outputOffset, _outputLength;
    private uint _rng = StochasticRounding.DefaultSeed;
    private bool _training;
    private int _label;
    private float _loss;
    private int _prediction;
    private readonly int _objective;
    private bool _skipBackward;

    /// <summary>Checks the plan image and binds it: allocates the arena, params and state, and fills the params.</summary>
    public NanoExecutor(byte[] image)
    {
        if (image == null)
        {
            throw new TinyTrainException("plan: no plan image was given; pass the bytes of a .ttplan file");
        }
        _image = image;
        CheckFile(image);

        int tableEnd = PlanFormat.HeaderSize + (int)LittleEndian.U32(image, PlanFormat.HeaderSectionCount) * PlanFormat.SectionEntrySize;
        int model = -1, tensors = -1, tensorsLength = 0, ops = -1, opsLength = 0, constants = -1, names = -1;
        for (int entry = PlanFormat.HeaderSize; entry < tableEnd; entry += PlanFormat.SectionEntrySize)
        {
            uint kind = LittleEndian.U32(image, entry);
            int offset = (int)LittleEndian.U32(image, entry + 4);
            int length = (int)LittleEndian.U32(image, entry + 8);
            if (kind == (uint)SectionKind.Model) model = offset;
            else if (kind == (uint)SectionKind.Tensors) { tensors = offset; tensorsLength = length; }
            else if (kind == (uint)SectionKind.Ops) { ops = offset; opsLength = length; }
            else if (kind == (uint)SectionKind.Constants) constants = offset;
            else if (kind == (uint)SectionKind.Names) names = offset;
        }
        if (model < 0 || tensors < 0 || ops < 0 || constants < 0 || names < 0)
        {
            throw new PlanException(PlanError.Invalid, Source, "plan: invalid: a section (model, tensors, ops, constants or names) is missing; recompile it with 'tinytrain compile'");
        }
        _model = model;
        _tensors = tensors;
        _tensorCount = tensorsLength / PlanFormat.TensorRecordSize;
        _ops = ops;
        _opCount = opsLength / PlanFormat.OpRecordSize;
        _constants = constants;
        _names = names;
        _forwardOps = LittleEndian.U16(image, model + PlanFormat.ModelForwardOps);
        _numClasses = LittleEndian.U16(image, model + PlanFormat.ModelNumClasses);
        _inputTensor = LittleEndian.U16(image, model + PlanFormat.ModelInputTensor);
        _outputTensor = LittleEndian.U16(image, model + PlanFormat.ModelOutputTensor);

        _arena = new byte[LittleEndian.U32(image, PlanFormat.HeaderArenaBytes)];
        _params = new byte[LittleEndian.U32(image, model + PlanFormat.ModelSramParamBytes)];
        _state = new byte[LittleEndian.U32(image, model + PlanFormat.ModelStateBytes)];
        TensorInfo input = Tensor(_inputTensor), output = Tensor(_outputTensor);
        _inputOffset = input.ArenaOffset;
        _inputLength = input.ByteLength;
        _outputOffset = output.ArenaOffset;
        _outputLength = output.ByteLength;
        _streamed = input.Streamed;
        _objective = FindObjective();
        Reset();
    }

    public byte[] Arena => _arena;
    /// <summary>Writable parameters (trained weights and biases): on a board, a static SRAM buffer.</summary>
    public byte[] Params => _params;
    /// <summary>Optimizer state (momentum).</summary>
    public byte[] State => _state;
    public int InputLength => _inputLength;
    public int OutputOffset => _outputOffset;
    public int OutputLength => _outputLength;
    public int NumClasses => _numClasses;
    /// <summary>True when the plan has a backward pass (a trainable set) or adapts without one (tta:norm).</summary>
    public bool CanTrain => _opCount > _forwardOps || _objective < 0;
    /// <summary>True for a plan compiled with --update tta:...: it adapts with <see cref="AdaptStep"/>, without labels.</summary>
    public bool LearnsWithoutLabels => CanTrain && _objective != 0;
    /// <summary>False when the last step's sample was filtered out (entropy above the plan's threshold): only statistics were learned.</summary>
    public bool LastStepLearned => !_skipBackward;
    /// <summary>Step size of the update rule, in real units when the plan uses QAS.</summary>
    public float LearningRate { get; set; } = 0.01f;
    /// <summary>Momentum coefficient; used only when the plan keeps momentum state.</summary>
    public float Momentum { get; set; }
    /// <summary>The class the last training step's forward pass predicted, before it learned from the label.</summary>
    public int LastPrediction => _prediction;
    public float LastLoss => _loss;

    /// <summary>Seeds the stochastic rounding of updates (0 means the default seed).</summary>
    public void Seed(uint seed)
    {
        _rng = seed == 0 ? StochasticRounding.DefaultSeed : seed;
    }

    /// <summary>Restores the trained parameters to the plan's values and clears the optimizer state.</summary>
    public void Reset()
    {
        for (int i = 0; i < _state.Length; i++)
        {
            _state[i] = 0;
        }
        for (int i = 0; i < _params.Length; i++)
        {
            _params[i] = 0; // the row buffer of trained slices too (NanoExecutor.Sliced.cs)
        }
        for (int i = 0; i < _forwardOps; i++)
        {
            OpInfo op = Op(i);
            if (op.Kind == OpKind.InitParamsRows)
            {
                InitRows(op);
            }
            else if (op.Phase == OpPhase.Init)
            {
                Array.Copy(_image, _constants + (int)op.Weights, _params, op.Arg(1), op.Arg(0));
            }
        }
    }

    // A streamed input (plan tensor flag Streamed) is not copied into the arena: the caller's frame is read band by band by
    // the first patch stage (NanoExecutor.Stages.cs), as src/Runtime's Executor does.
    private readonly bool _streamed;
    private byte[]? _frameBytes;
    private float[]? _frameFloats;
    private int _frameOffset;

    /// <summary>True when the plan streams its input: SetInput and TrySetInput keep the caller's frame, read by the next step.</summary>
    public bool StreamsInput => _streamed;

    private void RequireFrame()
    {
        if (_frameBytes == null && _frameFloats == null)
        {
            throw new TinyTrainException(Source + ": this plan streams its input and none was set; call SetInput or TrySetInput before each step");
        }
    }

    /// <summary>Copies an int8 input (as bytes) into the arena (a streamed input: keeps the frame).</summary>
    public void SetInput(byte[] input, int offset)
    {
        if (offset < 0 || offset > input.Length - _inputLength)
        {
            throw new TinyTrainException("input needs " + _inputLength + " bytes, got " + (input.Length - offset));
        }
        if (_streamed)
        {
            _frameBytes = input;
            _frameFloats = null;
            _frameOffset = offset;
            return;
        }
        Array.Copy(input, offset, _arena, _inputOffset, _inputLength);
    }

    /// <summary>
    /// Quantizes a float input into the arena, as the desktop Executor does. Returns false, and leaves the arena
    /// as it was, when any value is NaN or infinite.
    /// </summary>
    public bool TrySetInput(float[] values, int offset)
    {
        if (offset < 0 || offset > values.Length - _inputLength)
        {
            throw new TinyTrainException("input needs " + _inputLength + " values, got " + (values.Length - offset));
        }
        for (int i = 0; i < _inputLength; i++)
        {
            float v = values[offset + i];
            if (v - v != 0f)
            {
                return false; // NaN or infinite
            }
        }
        if (_streamed)
        {
            _frameBytes = null;
            _frameFloats = values;
            _frameOffset = offset;
            return true;
        }
        TensorInfo input = Tensor(_inputTensor);
        float inverse = 1f / input.Scale;
        int zeroPoint = input.ZeroPoint;
        for (int i = 0; i < _inputLength; i++)
        {
            _arena[_inputOffset + i] = PatchTile.Quantize(values[offset + i], inverse, zeroPoint);
        }
        return true;
    }

    public sbyte Output(int index)
    {
        return (sbyte)_arena[_outputOffset + index];
    }

    /// <summary>Index of the largest int8 output (the first on ties).</summary>
    public int ArgMax()
    {
        int best = 0;
        for (int i = 1; i < _outputLength; i++)
        {
            if ((sbyte)_arena[_outputOffset + i] > (sbyte)_arena[_outputOffset + best])
            {
                best = i;
            }
        }
        return best;
    }

    /// <summary>Runs the forward ops (inference).</summary>
    public void Invoke()
    {
        for (int i = 0; i < _forwardOps; i++)
        {
            OpInfo op = Op(i);
            if (op.Phase == OpPhase.Forward)
            {
                i += Run(op, i);
            }
        }
    }

    /// <summary>
    /// One training step on the input already set: forward (with the masks backward needs), the cross-entropy
    /// gradient for <paramref name="label"/>, backward, and each update applied as soon as its gradient exists.
    /// </summary>
    public float TrainStep(int label)
    {
        if (!CanTrain)
        {
            throw new TinyTrainException("plan: this plan has no trainable set; compile it with --update bias:K, sparse:... or full");
        }
        if (_objective != 0)
        {
            throw new TinyTrainException("plan: this plan learns without labels (compiled with --update tta:...); call AdaptStep, not TrainStep");
        }
        if (label < 0 || label >= _numClasses)
        {
            throw new TinyTrainException("label " + label + " is outside the model's classes 0.." + (_numClasses - 1) + "; nothing was changed");
        }
        _label = label;
        Step();
        return _loss;
    }

    /// <summary>
    /// One label-free adaptation step on the input already set (plans compiled with --update tta:...): forward with
    /// the running statistics, then the entropy gradient, backward and updates unless the sample is filtered out.
    /// Returns the entropy of the prediction (0 for plans without an entropy objective).
    /// </summary>
    public float AdaptStep()
    {
        if (!CanTrain)
        {
            throw new TinyTrainException("plan: this plan has no adaptation ops; compile it with --update tta:norm or tta:tent");
        }
        if (_objective == 0)
        {
            throw new TinyTrainException("plan: this plan learns from labels (cross-entropy); call TrainStep with the label");
        }
        _label = -1;
        _loss = 0f;
        Step();
        return _loss;
    }

    private void Step()
    {
        _training = true;
        _skipBackward = false;
        try
        {
            for (int i = 0; i < _forwardOps; i++)
            {
                OpInfo op = Op(i);
                if (op.Phase != OpPhase.Init)
                {
                    i += Run(op, i);
                }
            }
            _prediction = ArgMax();
            for (int i = _forwardOps; i < _opCount; i++)
            {
                // A filtered sample learns nothing more (its running statistics ran in the forward pass).
                if (_skipBackward)
                {
                    break;
                }
                i += Run(Op(i), i);
            }
        }
        finally
        {
            _training = false;
        }
    }

    // The objective of the plan's loss op: -1 none (statistics only), 0 cross-entropy, 1 entropy.
    private int FindObjective()
    {
        bool adapts = false;
        for (int i = 0; i < _opCount; i++)
        {
            OpInfo op = Op(i);
            if (op.Kind == OpKind.LossGradient)
            {
                return op.Arg(0);
            }
            adapts |= op.Kind == OpKind.NormStats || op.Phase == OpPhase.Update;
        }
        return adapts ? -1 : 0;
    }

    /// <summary>Maximum softmax probability of the last forward pass's logits: higher = more in-distribution.</summary>
    public float MaxSoftmaxScore()
    {
        TensorInfo y = Tensor(_outputTensor);
        return OodScores.MaxSoftmax(_arena, _outputOffset, y.ElementCount, y.Scale, y.ZeroPoint);
    }

    /// <summary>Negative free energy of the last forward pass's logits at <paramref name="temperature"/>: higher = more in-distribution.</summary>
    public float EnergyScore(float temperature)
    {
        TensorInfo y = Tensor(_outputTensor);
        return OodScores.Energy(_arena, _outputOffset, y.ElementCount, y.Scale, y.ZeroPoint, temperature);
    }

    private TensorInfo Tensor(int i)
    {
        if (i < 0 || i >= _tensorCount)
        {
            throw new PlanException(PlanError.Invalid, Source, "plan: invalid: tensor " + i + " does not exist; recompile it with 'tinytrain compile'");
        }
        return new TensorInfo(_image, _tensors + i * PlanFormat.TensorRecordSize, _names);
    }

    private OpInfo Op(int i)
    {
        return new OpInfo(_image, _ops + i * PlanFormat.OpRecordSize);
    }

    private static void CheckFile(byte[] image)
    {
        string magic = PlanFormat.MagicText;
        int length = image.Length;
        for (int i = 0; i < magic.Length && i < length; i++)
        {
            if (image[PlanFormat.HeaderMagic + i] != magic[i])
            {
                throw new PlanException(PlanError.Foreign, Source, "plan: not a TinyTrain plan (its first bytes are not the .ttplan magic); pass a file written by 'tinytrain compile'");
            }
        }
        if (length < PlanFormat.HeaderSize + PlanFormat.TrailerSize)
        {
            throw new PlanException(PlanError.Truncated, Source, "plan: truncated: " + length + " bytes is shorter than any plan; copy it again or recompile it");
        }
        int major = LittleEndian.U16(image, PlanFormat.HeaderVersionMajor);
        if (major != PlanFormat.VersionMajor)
        {
            throw new PlanException(PlanError.NewerVersion, Source, "plan: format " + major + ".x; this runtime reads " + PlanFormat.VersionMajor + ".x: recompile the plan for this runtime");
        }
        uint declared = LittleEndian.U32(image, PlanFormat.HeaderFileLength);
        if (declared != (uint)length)
        {
            throw new PlanException(declared > (uint)length ? PlanError.Truncated : PlanError.Damaged, Source,
                "plan: the file is " + length + " bytes but its header says " + declared + "; copy it again or recompile it");
        }
        int body = length - PlanFormat.TrailerSize;
        if (Crc32.Compute(image, 0, body) != LittleEndian.U32(image, body))
        {
            throw new PlanException(PlanError.Damaged, Source, "plan: checksum mismatch: the file is damaged; recompile it");
        }
        long tableEnd = PlanFormat.HeaderSize + (long)LittleEndian.U32(image, PlanFormat.HeaderSectionCount) * PlanFormat.SectionEntrySize;
        uint arena = LittleEndian.U32(image, PlanFormat.HeaderArenaBytes);
        if (tableEnd > body || arena > PlanFormat.MaxArenaBytes)
        {
            throw new PlanException(PlanError.Invalid, Source, "plan: invalid: its section table or arena size is out of range; recompile it with 'tinytrain compile'");
        }
    }

    // A forward op of a training plan writes its gradient mask (its Scratch tensor) only during a training step.
    private int MaskOffset(OpInfo op)
    {
        return _training && op.Scratch != PlanFormat.NoTensor ? Tensor(op.Scratch).ArenaOffset : -1;
    }

    private int Const(uint offset)
    {
        return offset == PlanFormat.NoConstant ? -1 : _constants + (int)offset;
    }

    private int Ref(uint offset, OpFlags flags, OpFlags inParams)
    {
        return offset == PlanFormat.NoConstant ? -1 : (flags & inParams) != 0 ? (int)offset : _constants + (int)offset;
    }

    private void Execute(OpInfo op)
    {
        if (op.Kind == OpKind.PointwiseInPlace)
        {
            PointwiseInPlace(op);
            return;
        }
        if (op.Kind == OpKind.DistillGradient)
        {
            // EcoTTA's self-distillation at a meta network's join (tta:eco).
            TensorInfo m = Tensor(op.Input0), dy = Tensor(op.Input1), dm = Tensor(op.Output);
            Distill.Gradient(_arena, m.ArenaOffset, m.ZeroPoint, _arena, dy.ArenaOffset, m.ElementCount, FloatBits.FromBits(op.Arg(0)), _arena, dm.ArenaOffset);
            return;
        }
        if ((int)op.Kind >= (int)OpKind.NormAffine && (int)op.Kind <= (int)OpKind.NormStats)
        {
            ExecuteNorm(op);
            return;
        }
        if ((int)op.Kind >= (int)OpKind.InitParams)
        {
            ExecuteTraining(op);
            return;
        }
        TensorInfo x = Tensor(op.Input0), y = Tensor(op.Output);
        OpFlags flags = op.Flags;
        byte[] wBuffer = (flags & OpFlags.WeightsInParams) != 0 ? _params : _image;
        byte[] bBuffer = (flags & OpFlags.BiasInParams) != 0 ? _params : _image;
        int w = Ref(op.Weights, flags, OpFlags.WeightsInParams), bias = Ref(op.Bias, flags, OpFlags.BiasInParams);
        int mult = Const(op.Multiplier), shift = Const(op.Shift);
        switch (op.Kind)
        {
            case OpKind.Conv2D:
            {
                if ((flags & OpFlags.WeightsSliced) != 0)
                {
                    SlicedForward(op, x, y);
                    break;
                }
                var p = new ConvParams
                {
                    InC = x.C, H = x.H, W = x.W, OutC = y.C, OH = y.H, OW = y.W,
                    Kernel = op.Arg(0), Stride = op.Arg(1), Pad = op.Arg(2), Groups = op.Arg(3),
                    InputZeroPoint = x.ZeroPoint, OutputZeroPoint = y.ZeroPoint, ActMin = op.Arg(4), ActMax = op.Arg(5),
                };
                int mask = MaskOffset(op);
                Conv2D.RunReference(p, _arena, x.ArenaOffset, wBuffer, w, bBuffer, bias, _image, mult, shift, _arena, y.ArenaOffset,
                    mask < 0 ? null : _arena, mask, mask < 0 ? 0 : op.Arg(6));
                break;
            }
            case OpKind.DepthwiseConv2D:
            {
                var p = new DepthwiseParams
                {
                    C = x.C, H = x.H, W = x.W, OH = y.H, OW = y.W,
                    Kernel = op.Arg(0), Stride = op.Arg(1), Pad = op.Arg(2),
                    InputZeroPoint = x.ZeroPoint, OutputZeroPoint = y.ZeroPoint, ActMin = op.Arg(3), ActMax = op.Arg(4),
                };
                int mask = MaskOffset(op);
                if (Overlap(x, y))
                {
                    // In place (compile --inplace-dw): the output starts below the input; one channel at a time.
                    int channels = p.C, taps = p.Kernel * p.Kernel;
                    p.C = 1;
                    for (int c = 0; c < channels; c++)
                        DepthwiseConv2D.RunReference(p, _arena, x.ArenaOffset + c * p.H * p.W, wBuffer, w + c * taps, bBuffer, bias < 0 ? -1 : bias + 4 * c,
                            _image, mult + 4 * c, shift + 4 * c, _arena, y.ArenaOffset + c * p.OH * p.OW, null, -1, 0);
                }
                else
                    DepthwiseConv2D.RunReference(p, _arena, x.ArenaOffset, wBuffer, w, bBuffer, bias, _image, mult, shift, _arena, y.ArenaOffset,
                        mask < 0 ? null : _arena, mask, mask < 0 ? 0 : op.Arg(5));
                break;
            }
            case OpKind.FullyConnected:
            {
                var p = new FullyConnectedParams
                {
                    In = x.ElementCount, Out = y.C,
                    InputZeroPoint = x.ZeroPoint, OutputZeroPoint = y.ZeroPoint, ActMin = op.Arg(0), ActMax = op.Arg(1),
                };
                int mask = MaskOffset(op);
                FullyConnected.RunReference(p, _arena, x.ArenaOffset, wBuffer, w, bBuffer, bias, _image, mult, shift, _arena, y.ArenaOffset,
                    mask < 0 ? null : _arena, mask, mask < 0 ? 0 : op.Arg(2));
                break;
            }
            case OpKind.Add:
            {
                TensorInfo x1 = Tensor(op.Input1);
                var p = new AddParams
                {
                    Count = y.ElementCount,
                    Input0ZeroPoint = x.ZeroPoint, Input0Multiplier = op.Arg(0), Input0Shift = op.Arg(1),
                    Input1ZeroPoint = x1.ZeroPoint, Input1Multiplier = op.Arg(2), Input1Shift = op.Arg(3),
                    OutputZeroPoint = y.ZeroPoint, OutputMultiplier = op.Arg(4), OutputShift = op.Arg(5), LeftShift = op.Arg(6),
                    ActMin = op.Arg(7), ActMax = op.Arg(8),
                };
                Add.RunReference(p, _arena, x.ArenaOffset, _arena, x1.ArenaOffset, _arena, y.ArenaOffset);
                break;
            }
            case OpKind.AvgPool:
            {
                var p = new PoolParams
                {
                    C = x.C, H = x.H, W = x.W, OH = y.H, OW = y.W, Kernel = op.Arg(0), Stride = op.Arg(1),
                    ActMin = op.Arg(2), ActMax = op.Arg(3),
                };
                AvgPool.RunReference(p, _arena, x.ArenaOffset, _arena, y.ArenaOffset);
                break;
            }
            case OpKind.GlobalAvgPool:
            {
                var p = new PoolParams { C = x.C, H = x.H, W = x.W, OH = 1, OW = 1, Kernel = x.H, Stride = 1, ActMin = op.Arg(0), ActMax = op.Arg(1) };
                GlobalAvgPool.RunReference(p, _arena, x.ArenaOffset, _arena, y.ArenaOffset);
                break;
            }
            default:
                throw Unsupported(op);
        }
    }

    // Backward and update ops: gradients are float32 tensors in the arena.
    private void ExecuteTraining(OpInfo op)
    {
        OpFlags flags = op.Flags;
        byte[] wBuffer = (flags & OpFlags.WeightsInParams) != 0 ? _params : _image;
        byte[] bBuffer = (flags & OpFlags.BiasInParams) != 0 ? _params : _image;
        int w = Ref(op.Weights, flags, OpFlags.WeightsInParams), bias = Ref(op.Bias, flags, OpFlags.BiasInParams);
        int scales = Const(op.Multiplier);
        bool accumulate = (flags & OpFlags.Accumulate) != 0;
        TensorInfo x = Tensor(op.Input0);
        switch (op.Kind)
        {
            case OpKind.SaveMask:
            {
                TensorInfo m = Tensor(op.Output);
                Training.SaveMask(_arena, x.ArenaOffset, x.ElementCount, op.Arg(0), op.Arg(1), _arena, m.ArenaOffset);
                break;
            }
            case OpKind.LossGradient:
            {
                TensorInfo d = Tensor(op.Output);
                int best = 0;
                for (int k = 1; k < x.ElementCount; k++)
                {
                    if ((sbyte)_arena[x.ArenaOffset + k] > (sbyte)_arena[x.ArenaOffset + best])
                    {
                        best = k;
                    }
                }
                _prediction = best;
                if (op.Arg(0) == 1)
                {
                    float threshold = FloatBits.FromBits(op.Arg(1));
                    _loss = Entropy.Gradient(_arena, x.ArenaOffset, x.ElementCount, x.Scale, x.ZeroPoint, threshold, _arena, d.ArenaOffset);
                    _skipBackward = _loss > threshold || _loss - _loss != 0f;
                    break;
                }
                _loss = Training.LossGradient(_arena, x.ArenaOffset, x.ElementCount, x.Scale, x.ZeroPoint, _label, _arena, d.ArenaOffset);
                break;
            }
            case OpKind.MaskGradient:
            {
                TensorInfo dy = Tensor(op.Input1), dz = Tensor(op.Output);
                Training.MaskGradient(_arena, x.ArenaOffset, _arena, dy.ArenaOffset, dy.ElementCount, _arena, dz.ArenaOffset);
                break;
            }
            case OpKind.GradientAdd:
            {
                TensorInfo b = Tensor(op.Input1), y = Tensor(op.Output);
                Training.GradientAdd(_arena, x.ArenaOffset, _arena, b.ArenaOffset, y.ElementCount, _arena, y.ArenaOffset);
                break;
            }
            case OpKind.Conv2DBackwardInput:
            {
                TensorInfo dx = Tensor(op.Output);
                if ((flags & OpFlags.WeightsSliced) != 0)
                {
                    SlicedBackwardInput(op, x, dx);
                    break;
                }
                var p = new ConvParams
                {
                    InC = dx.C, H = dx.H, W = dx.W, OutC = x.C, OH = x.H, OW = x.W,
                    Kernel = op.Arg(0), Stride = op.Arg(1), Pad = op.Arg(2), Groups = op.Arg(3), ActMin = -128, ActMax = 127,
                };
                Conv2D.BackwardInputReference(p, _arena, x.ArenaOffset, wBuffer, w, _image, scales, _arena, dx.ArenaOffset, accumulate);
                break;
            }
            case OpKind.DepthwiseBackwardInput:
            {
                TensorInfo dx = Tensor(op.Output);
                var p = new DepthwiseParams
                {
                    C = dx.C, H = dx.H, W = dx.W, OH = x.H, OW = x.W, Kernel = op.Arg(0), Stride = op.Arg(1), Pad = op.Arg(2), ActMin = -128, ActMax = 127,
                };
                if (Overlap(x, dx))
                {
                    int channels = p.C, taps = p.Kernel * p.Kernel;
                    p.C = 1;
                    for (int c = 0; c < channels; c++)
                        DepthwiseConv2D.BackwardInputReference(p, _arena, x.ArenaOffset + 4 * c * p.OH * p.OW, wBuffer, w + c * taps, _image, scales + 4 * c,
                            _arena, dx.ArenaOffset + 4 * c * p.H * p.W, false);
                }
                else
                    DepthwiseConv2D.BackwardInputReference(p, _arena, x.ArenaOffset, wBuffer, w, _image, scales, _arena, dx.ArenaOffset, accumulate);
                break;
            }
            case OpKind.FullyConnectedBackwardInput:
            {
                TensorInfo dx = Tensor(op.Output);
                var p = new FullyConnectedParams { In = dx.ElementCount, Out = x.ElementCount, ActMin = -128, ActMax = 127 };
                FullyConnected.BackwardInput(p, _arena, x.ArenaOffset, wBuffer, w, _image, scales, _arena, dx.ArenaOffset, accumulate);
                break;
            }
            case OpKind.Conv2DUpdate:
            {
                TensorInfo dy = Tensor(op.Input1);
                var p = new ConvParams
                {
                    InC = x.C, H = x.H, W = x.W, OutC = dy.C, OH = dy.H, OW = dy.W,
                    Kernel = op.Arg(0), Stride = op.Arg(1), Pad = op.Arg(2), Groups = op.Arg(3),
                    InputZeroPoint = x.ZeroPoint, ActMin = -128, ActMax = 127,
                };
                var rule = new UpdateRule { LearningRate = LearningRate, Momentum = Momentum, Qas = op.Arg(5) != 0 };
                if ((flags & OpFlags.WeightsSliced) != 0)
                    SlicedUpdate(p, x, dy.ArenaOffset, w, bBuffer, bias, scales, op.Arg(4), rule, op.Arg(6));
                else
                    Conv2D.Update(p, _arena, x.ArenaOffset, _arena, dy.ArenaOffset, wBuffer, w, bBuffer, bias, _image, scales, x.Scale,
                        op.Arg(4), rule, _state, op.Arg(6), ref _rng);
                break;
            }
            case OpKind.DepthwiseUpdate:
            {
                TensorInfo dy = Tensor(op.Input1);
                var p = new DepthwiseParams
                {
                    C = x.C, H = x.H, W = x.W, OH = dy.H, OW = dy.W, Kernel = op.Arg(0), Stride = op.Arg(1), Pad = op.Arg(2),
                    InputZeroPoint = x.ZeroPoint, ActMin = -128, ActMax = 127,
                };
                var rule = new UpdateRule { LearningRate = LearningRate, Momentum = Momentum, Qas = op.Arg(4) != 0 };
                DepthwiseConv2D.Update(p, _arena, x.ArenaOffset, _arena, dy.ArenaOffset, wBuffer, w, bBuffer, bias, _image, scales, x.Scale,
                    op.Arg(3), rule, _state, op.Arg(5), ref _rng);
                break;
            }
            case OpKind.FullyConnectedUpdate:
            {
                TensorInfo dy = Tensor(op.Input1);
                var p = new FullyConnectedParams { In = x.ElementCount, Out = dy.ElementCount, InputZeroPoint = x.ZeroPoint, ActMin = -128, ActMax = 127 };
                var rule = new UpdateRule { LearningRate = LearningRate, Momentum = Momentum, Qas = op.Arg(1) != 0 };
                FullyConnected.Update(p, _arena, x.ArenaOffset, _arena, dy.ArenaOffset, wBuffer, w, bBuffer, bias, _image, scales, x.Scale,
                    op.Arg(0), rule, _state, op.Arg(2), ref _rng);
                break;
            }
            case OpKind.BiasUpdate:
            {
                var rule = new UpdateRule { LearningRate = LearningRate, Momentum = Momentum, Qas = op.Arg(1) != 0 };
                Training.BiasUpdate(_arena, x.ArenaOffset, x.C, x.H * x.W, bBuffer, bias, _image, scales, FloatBits.FromBits(op.Arg(0)),
                    rule, _state, op.Arg(2), ref _rng);
                break;
            }
            case OpKind.AvgPoolBackward:
            {
                TensorInfo dx = Tensor(op.Output);
                var p = new PoolParams { C = dx.C, H = dx.H, W = dx.W, OH = x.H, OW = x.W, Kernel = op.Arg(0), Stride = op.Arg(1), ActMin = -128, ActMax = 127 };
                AvgPool.Backward(p, _arena, x.ArenaOffset, _arena, dx.ArenaOffset, accumulate);
                break;
            }
            case OpKind.GlobalAvgPoolBackward:
            {
                TensorInfo dx = Tensor(op.Output);
                var p = new PoolParams { C = dx.C, H = dx.H, W = dx.W, OH = 1, OW = 1, Kernel = dx.H, Stride = 1, ActMin = -128, ActMax = 127 };
                GlobalAvgPool.Backward(p, _arena, x.ArenaOffset, _arena, dx.ArenaOffset, accumulate);
                break;
            }
            default:
                throw Unsupported(op);
        }
    }

    // The per-channel scale/shift ops of test-time adaptation (kinds 40..43), as src/Runtime's Executor.Norm.cs runs them.
    private void ExecuteNorm(OpInfo op)
    {
        OpFlags flags = op.Flags;
        byte[] wBuffer = (flags & OpFlags.WeightsInParams) != 0 ? _params : _image;
        byte[] bBuffer = (flags & OpFlags.BiasInParams) != 0 ? _params : _image;
        int affine = Ref(op.Weights, flags, OpFlags.WeightsInParams), stats = Ref(op.Bias, flags, OpFlags.BiasInParams);
        TensorInfo x = Tensor(op.Input0);
        switch (op.Kind)
        {
            case OpKind.NormAffine:
            {
                TensorInfo y = Tensor(op.Output);
                NormAffineParams p = NormParams(x, y, op.Arg(0), op.Arg(1));
                int mask = MaskOffset(op);
                NormAffine.Forward(p, _arena, x.ArenaOffset, wBuffer, affine, bBuffer, stats, _arena, y.ArenaOffset,
                    mask < 0 ? null : _arena, mask, mask < 0 ? 0 : op.Arg(2));
                break;
            }
            case OpKind.NormAffineBackwardInput:
            {
                TensorInfo du = Tensor(op.Output);
                NormAffine.BackwardInput(x.C, x.H * x.W, _arena, x.ArenaOffset, wBuffer, affine, bBuffer, stats, _arena, du.ArenaOffset);
                break;
            }
            case OpKind.NormAffineUpdate:
            {
                TensorInfo dv = Tensor(op.Input1);
                NormAffineParams p = NormParams(x, x, -128, 127);
                NormAffine.Update(p, _arena, x.ArenaOffset, _arena, dv.ArenaOffset, wBuffer, affine, bBuffer, stats,
                    LearningRate, FloatBits.FromBits(op.Arg(0)), FloatBits.FromBits(op.Arg(1)), FloatBits.FromBits(op.Arg(2)), FloatBits.FromBits(op.Arg(3)));
                break;
            }
            case OpKind.NormStats:
            {
                NormAffineParams p = NormParams(x, x, -128, 127);
                NormAffine.Stats(p, _arena, x.ArenaOffset, wBuffer, affine, _image, Const(op.Multiplier), bBuffer, stats,
                    FloatBits.FromBits(op.Arg(0)), FloatBits.FromBits(op.Arg(1)));
                break;
            }
            default:
                throw Unsupported(op);
        }
    }

    private static NormAffineParams NormParams(TensorInfo x, TensorInfo y, int actMin, int actMax)
    {
        NormAffineParams p = new NormAffineParams();
        p.C = x.C;
        p.H = x.H;
        p.W = x.W;
        p.InputScale = x.Scale;
        p.InputZeroPoint = x.ZeroPoint;
        p.OutputScale = y.Scale;
        p.OutputZeroPoint = y.ZeroPoint;
        p.ActMin = actMin;
        p.ActMax = actMax;
        return p;
    }

    private static bool Overlap(TensorInfo a, TensorInfo b)
    {
        return a.ArenaOffset < b.ArenaOffset + b.ByteLength && b.ArenaOffset < a.ArenaOffset + a.ByteLength;
    }

    private static TinyTrainException Unsupported(OpInfo op)
    {
        return new TinyTrainException("plan: op kind " + (int)op.Kind + " is not supported by this runtime; recompile the plan with this version of TinyTrain");
    }
}
