namespace TinyTrain.Runtime.Execution;

using TinyTrain.Runtime.Kernels;
using TinyTrain.Runtime.Plans;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

/// <summary>
/// Runs a plan inside one arena: a single byte buffer of exactly the plan's size. Bind (this
/// constructor) allocates the arena; Invoke allocates nothing: op records are read from the plan
/// image, kernel parameters are built on the stack, weights are read in place from the image.
/// </summary>
public sealed partial class Executor
{
    private readonly PlanImage _plan;
    private readonly byte[] _arena;
    private readonly byte[] _params;
    private readonly byte[] _state;
    private readonly byte[] _image;
    private uint _rng = 0x9E3779B9;
    private bool _training;
    private int _label;
    private float _loss;
    private int _prediction;
    private bool _skipBackward;
    private readonly int _objective;
    private readonly int _constants;
    private readonly byte _paint;
    private readonly int _inputOffset, _inputLength, _outputOffset, _outputLength;
    // A streamed input (plan tensor flag Streamed) is not copied into the arena: the caller's frame, int8 bytes or floats, is
    // read band by band by the first patch stage (Executor.Patch.cs).
    private readonly bool _streamed;
    private byte[]? _frameBytes;
    private float[]? _frameFloats;
    private int _frameOffset;

    /// <param name="paint">The arena is filled with this byte at bind, so that the high-water mark can be
    /// measured afterwards the way embedded developers measure stacks: the highest byte no longer painted.</param>
    public Executor(PlanImage plan, byte paint = 0xA5)
    {
        _plan = plan;
        _image = plan.Image;
        _constants = plan.ConstantsOffset;
        _arena = new byte[plan.ArenaBytes];
        _paint = paint;
        if (paint != 0) Array.Fill(_arena, paint);
        _params = new byte[plan.SramParamBytes];
        _state = new byte[plan.StateBytes];
        Reset();
        TensorInfo input = plan.Tensor(plan.InputTensor), output = plan.Tensor(plan.OutputTensor);
        _inputOffset = input.ArenaOffset;
        _inputLength = input.ByteLength;
        _outputOffset = output.ArenaOffset;
        _outputLength = output.ByteLength;
        _streamed = input.Streamed;
        _objective = FindObjective(plan);
    }

    public PlanImage Plan => _plan;
    /// <summary>The arena. Exposed for tests and the emulator; on a board it is a static buffer.</summary>
    public byte[] Arena => _arena;
    public int InputOffset => _inputOffset;
    public int InputLength => _inputLength;
    public int OutputOffset => _outputOffset;
    public int OutputLength => _outputLength;

    /// <summary>
    /// Bytes of the arena used so far, measured: one past the highest byte that no longer holds the paint.
    /// A byte written with a value equal to the paint is missed, so ArenaProbe measures with two paints.
    /// </summary>
    public int HighWaterMark()
    {
        for (int i = _arena.Length - 1; i >= 0; i--)
            if (_arena[i] != _paint) return i + 1;
        return 0;
    }

    /// <summary>True when the plan streams its input (compile --stream-input on): SetInput and TrySetInput then keep a
    /// reference to the caller's frame, which the next Invoke, TrainStep or AdaptStep reads band by band; the caller must not
    /// change it before that step is done.</summary>
    public bool StreamsInput => _streamed;

    /// <summary>Copies an int8 input (as bytes) into the arena (a streamed input: keeps the frame, see <see cref="StreamsInput"/>).</summary>
    public void SetInput(byte[] input, int offset)
    {
        if (offset < 0 || offset > input.Length - _inputLength)
            throw new TinyTrainException($"input needs {_inputLength} bytes, got {input.Length - offset}");
        if (_streamed)
        {
            (_frameBytes, _frameFloats, _frameOffset) = (input, null, offset);
            return;
        }
        Array.Copy(input, offset, _arena, _inputOffset, _inputLength);
    }

    /// <summary>
    /// Quantizes a float input (the model's input layout) into the arena. Returns false, and leaves the
    /// arena as it was, when any value is NaN or infinite: such a sample must never reach training.
    /// </summary>
    public bool TrySetInput(float[] values, int offset)
    {
        if (offset < 0 || offset > values.Length - _inputLength)
            throw new TinyTrainException($"input needs {_inputLength} values, got {values.Length - offset}");
        for (int i = 0; i < _inputLength; i++)
        {
            float v = values[offset + i];
            if (!float.IsFinite(v)) return false;
        }
        if (_streamed)
        {
            (_frameBytes, _frameFloats, _frameOffset) = (null, values, offset);
            return true;
        }
        TensorInfo input = _plan.Tensor(_plan.InputTensor);
        float inverse = 1f / input.Scale;
        int zeroPoint = input.ZeroPoint;
        for (int i = 0; i < _inputLength; i++)
            _arena[_inputOffset + i] = PatchTile.Quantize(values[offset + i], inverse, zeroPoint);
        return true;
    }

    /// <summary>True when every int8 value of the input set last is the same (a covered lens, a dead sensor).</summary>
    public bool InputIsConstant()
    {
        if (!_streamed)
        {
            for (int i = 1; i < _inputLength; i++)
                if (_arena[_inputOffset + i] != _arena[_inputOffset]) return false;
            return true;
        }
        RequireFrame();
        if (_frameBytes is not null)
        {
            for (int i = 1; i < _inputLength; i++)
                if (_frameBytes[_frameOffset + i] != _frameBytes[_frameOffset]) return false;
            return true;
        }
        TensorInfo input = _plan.Tensor(_plan.InputTensor);
        float inverse = 1f / input.Scale;
        byte first = PatchTile.Quantize(_frameFloats![_frameOffset], inverse, input.ZeroPoint);
        for (int i = 1; i < _inputLength; i++)
            if (PatchTile.Quantize(_frameFloats[_frameOffset + i], inverse, input.ZeroPoint) != first) return false;
        return true;
    }

    private void RequireFrame()
    {
        if (_frameBytes is null && _frameFloats is null)
            throw new TinyTrainException($"{_plan.Source}: this plan streams its input and none was set; call SetInput or TrySetInput before each step");
    }

    public sbyte Output(int index) => (sbyte)_arena[_outputOffset + index];

    /// <summary>Index of the largest int8 output (the first on ties).</summary>
    public int ArgMax()
    {
        int best = 0;
        for (int i = 1; i < _outputLength; i++)
            if ((sbyte)_arena[_outputOffset + i] > (sbyte)_arena[_outputOffset + best]) best = i;
        return best;
    }

    /// <summary>True when the plan has a backward pass (a trainable set).</summary>
    public bool CanTrain => _plan.OpCount > _plan.ForwardOpCount || _objective < 0;
    /// <summary>True for test-time adaptation plans (compile --update tta:...): they learn with AdaptStep, from no label.</summary>
    public bool LearnsWithoutLabels => CanTrain && _objective != 0;
    /// <summary>Writable parameters (trained weights and biases); on a board, a static SRAM buffer.</summary>
    public byte[] Params => _params;
    public byte[] State => _state;
    /// <summary>Step size of the update rule, in real units when the plan uses QAS.</summary>
    public float LearningRate { get; set; } = 0.01f;
    /// <summary>Momentum coefficient; used only when the plan keeps momentum state (compile --momentum).</summary>
    public float Momentum { get; set; }
    /// <summary>
    /// For tests and tools, never on a device: when set, every update op first reports the gradients it
    /// is about to apply (op index, weight gradient of the trained channels, bias gradient; real units).
    /// </summary>
    public Action<int, float[], float[]>? GradientProbe { get; set; }

    /// <summary>
    /// The class the last training step's forward pass predicted, before it learned from the label:
    /// a device scores and learns with one forward pass (the arena reuses the input's bytes, so a
    /// separate Invoke before TrainStep would need the input set again).
    /// </summary>
    public int LastPrediction => _prediction;

    /// <summary>Loss of the last training step.</summary>
    public float LastLoss => _loss;

    /// <summary>Seeds the stochastic rounding of updates (never 0).</summary>
    public void Seed(uint seed) => _rng = seed == 0 ? 0x9E3779B9 : seed;

    /// <summary>Restores the trained parameters to the plan's (Flash) values and clears optimizer state.</summary>
    public void Reset()
    {
        Array.Clear(_state);
        Array.Clear(_params); // the row buffer of trained slices too (Executor.Sliced.cs)
        for (int i = 0; i < _plan.ForwardOpCount; i++)
        {
            OpInfo op = _plan.Op(i);
            if (op.Kind == OpKind.InitParamsRows)
                InitRows(op);
            else if (op.Phase == OpPhase.Init)
                Array.Copy(_image, _constants + (int)op.Weights, _params, op.Arg(1), op.Arg(0));
        }
    }

    /// <summary>Runs the forward ops (inference).</summary>
    public void Invoke()
    {
        int end = _plan.ForwardOpCount;
        for (int i = 0; i < end; i++)
        {
            OpInfo op = _plan.Op(i);
            if (op.Phase == OpPhase.Forward) Execute(op, i);
            i += InnerOps(op);
        }
    }

    /// <summary>
    /// One training step on the input already set: forward (with the masks backward needs), loss
    /// gradient for <paramref name="label"/>, backward, and each update applied as soon as its
    /// gradient exists. Returns the loss. Allocates nothing.
    /// </summary>
    public float TrainStep(int label)
    {
        if (!CanTrain)
            throw new TinyTrainException($"{_plan.Source}: this plan has no trainable set; compile it with --update bias:K, sparse:... or full");
        if (_objective != 0)
            throw new TinyTrainException($"{_plan.Source}: this plan learns without labels (compiled with --update tta:...); call AdaptStep, not TrainStep");
        if (label < 0 || label >= _plan.NumClasses)
            throw new TinyTrainException($"label {label} is outside the model's classes 0..{_plan.NumClasses - 1}; nothing was changed");
        _label = label;
        Step();
        return _loss;
    }

    /// <summary>
    /// One label-free adaptation step on the input already set (plans compiled with --update tta:...): forward,
    /// then the plan's adaptation ops (running statistics; the entropy gradient, backward and updates unless the
    /// sample is filtered out). LastPrediction is the class the forward pass predicted. Returns the entropy of the
    /// prediction (0 for plans without an entropy objective). Allocates nothing.
    /// </summary>
    public float AdaptStep()
    {
        if (!CanTrain)
            throw new TinyTrainException($"{_plan.Source}: this plan has no adaptation ops; compile it with --update tta:norm, tta:tent or tta:eco");
        if (_objective == 0)
            throw new TinyTrainException($"{_plan.Source}: this plan learns from labels (cross-entropy); call TrainStep with the label");
        _label = -1;
        _loss = 0f;
        Step();
        return _loss;
    }

    /// <summary>False when the last step's sample was filtered out (entropy above the plan's threshold): nothing was learned from it but statistics.</summary>
    public bool LastStepLearned => !_skipBackward;

    private void Step()
    {
        _training = true;
        _skipBackward = false;
        try
        {
            int forward = _plan.ForwardOpCount, count = _plan.OpCount;
            for (int i = 0; i < forward; i++)
            {
                OpInfo op = _plan.Op(i);
                if (op.Phase != OpPhase.Init) Execute(op, i);
                i += InnerOps(op);
            }
            _prediction = ArgMax();
            for (int i = forward; i < count; i++)
            {
                OpInfo op = _plan.Op(i);
                // A filtered sample learns nothing more (running statistics ran in the forward pass).
                if (_skipBackward) break;
                Execute(op, i);
                i += InnerOps(op);
            }
        }
        finally
        {
            _training = false;
        }
    }

    // The objective of the plan's loss op: -1 none, 0 cross-entropy, 1 entropy.
    private static int FindObjective(PlanImage plan)
    {
        bool adapts = false;
        for (int i = 0; i < plan.OpCount; i++)
        {
            OpInfo op = plan.Op(i);
            if (op.Kind == OpKind.LossGradient) return op.Arg(0);
            adapts |= op.Kind == OpKind.NormStats || op.Phase == OpPhase.Update;
        }
        return adapts ? -1 : 0;
    }

    /// <summary>Runs ops [first, end) of the plan (forward ops only for Init-free ranges; for tests and tools).</summary>
    public void Run(int first, int end)
    {
        for (int i = first; i < end; i++)
        {
            OpInfo op = _plan.Op(i);
            if (op.Phase != OpPhase.Init) Execute(op, i);
            i += InnerOps(op);
        }
    }

    private void Execute(OpInfo op, int index)
    {
        if (op.Kind == OpKind.PatchStage)
        {
            RunPatchStage(op, index);
            return;
        }
        if (op.Kind == OpKind.PatchGraphStage)
        {
            RunPatchGraphStage(op, index);
            return;
        }
        if (op.Kind == OpKind.ChannelStage)
        {
            RunChannelStage(op, index);
            return;
        }
        if (op.Kind == OpKind.PointwiseInPlace)
        {
            PointwiseInPlace(op);
            return;
        }
        if (op.Kind == OpKind.DistillGradient)
        {
            TensorInfo m = _plan.Tensor(op.Input0), dy = _plan.Tensor(op.Input1), dm = _plan.Tensor(op.Output);
            Distill.Gradient(_arena, m.ArenaOffset, m.ZeroPoint, _arena, dy.ArenaOffset, m.ElementCount, F(op.Arg(0)), _arena, dm.ArenaOffset);
            return;
        }
        if ((int)op.Kind >= (int)OpKind.NormAffine)
        {
            ExecuteNorm(op, index);
            return;
        }
        if ((int)op.Kind >= (int)OpKind.InitParams)
        {
            ExecuteTraining(op, index);
            return;
        }
        TensorInfo x = _plan.Tensor(op.Input0), y = _plan.Tensor(op.Output);
        OpFlags flags = op.Flags;
        byte[] wBuffer = (flags & OpFlags.WeightsInParams) != 0 ? _params : _image;
        byte[] bBuffer = (flags & OpFlags.BiasInParams) != 0 ? _params : _image;
        int w = Ref(op.Weights, flags, OpFlags.WeightsInParams), bias = Ref(op.Bias, flags, OpFlags.BiasInParams);
        int mult = Const(op.Multiplier), shift = Const(op.Shift);
        switch (op.Kind)
        {
            case OpKind.Conv2D when (flags & OpFlags.WeightsSliced) != 0:
                SlicedForward(op, x, y);
                break;
            case OpKind.Conv2D:
            {
                var p = new ConvParams
                {
                    InC = x.C, H = x.H, W = x.W, OutC = y.C, OH = y.H, OW = y.W,
                    Kernel = op.Arg(0), Stride = op.Arg(1), Pad = op.Arg(2), Groups = op.Arg(3),
                    InputZeroPoint = x.ZeroPoint, OutputZeroPoint = y.ZeroPoint, ActMin = op.Arg(4), ActMax = op.Arg(5),
                };
                int mask = MaskOffset(op);
                Conv2D.Run(p, _arena, x.ArenaOffset, wBuffer, w, bBuffer, bias, _image, mult, shift, _arena, y.ArenaOffset,
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
                if (y.ArenaOffset < x.ArenaOffset + x.ByteLength && x.ArenaOffset < y.ArenaOffset + y.ByteLength)
                    DepthwiseInPlace(p, x.ArenaOffset, wBuffer, w, bBuffer, bias, mult, shift, y.ArenaOffset);
                else
                    DepthwiseConv2D.Run(p, _arena, x.ArenaOffset, wBuffer, w, bBuffer, bias, _image, mult, shift, _arena, y.ArenaOffset,
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
                FullyConnected.Run(p, _arena, x.ArenaOffset, wBuffer, w, bBuffer, bias, _image, mult, shift, _arena, y.ArenaOffset,
                    mask < 0 ? null : _arena, mask, mask < 0 ? 0 : op.Arg(2));
                break;
            }
            case OpKind.Add:
            {
                TensorInfo x1 = _plan.Tensor(op.Input1);
                var p = new AddParams
                {
                    Count = y.ElementCount,
                    Input0ZeroPoint = x.ZeroPoint, Input0Multiplier = op.Arg(0), Input0Shift = op.Arg(1),
                    Input1ZeroPoint = x1.ZeroPoint, Input1Multiplier = op.Arg(2), Input1Shift = op.Arg(3),
                    OutputZeroPoint = y.ZeroPoint, OutputMultiplier = op.Arg(4), OutputShift = op.Arg(5), LeftShift = op.Arg(6),
                    ActMin = op.Arg(7), ActMax = op.Arg(8),
                };
                Add.Run(p, _arena, x.ArenaOffset, _arena, x1.ArenaOffset, _arena, y.ArenaOffset);
                break;
            }
            case OpKind.AvgPool:
            {
                var p = new PoolParams
                {
                    C = x.C, H = x.H, W = x.W, OH = y.H, OW = y.W, Kernel = op.Arg(0), Stride = op.Arg(1),
                    ActMin = op.Arg(2), ActMax = op.Arg(3),
                };
                AvgPool.Run(p, _arena, x.ArenaOffset, _arena, y.ArenaOffset);
                break;
            }
            case OpKind.GlobalAvgPool:
            {
                var p = new PoolParams { C = x.C, H = x.H, W = x.W, OH = 1, OW = 1, Kernel = x.H, Stride = 1, ActMin = op.Arg(0), ActMax = op.Arg(1) };
                GlobalAvgPool.Run(p, _arena, x.ArenaOffset, _arena, y.ArenaOffset);
                break;
            }
            default:
                throw new TinyTrainException($"{_plan.Source}: op kind {(int)op.Kind} is not supported by this runtime");
        }
    }

    // A forward op of a training plan writes its gradient mask (its Scratch tensor) only during a training step.
    private int MaskOffset(OpInfo op) => _training && op.Scratch != PlanFormat.NoTensor ? _plan.Tensor(op.Scratch).ArenaOffset : -1;

    private int Const(uint offset) => offset == PlanFormat.NoConstant ? -1 : _constants + (int)offset;

    private int Ref(uint offset, OpFlags flags, OpFlags inParams)
        => offset == PlanFormat.NoConstant ? -1 : (flags & inParams) != 0 ? (int)offset : _constants + (int)offset;

    // Backward and update ops: gradients are float32 tensors in the arena.
    private void ExecuteTraining(OpInfo op, int index)
    {
        OpFlags flags = op.Flags;
        byte[] wBuffer = (flags & OpFlags.WeightsInParams) != 0 ? _params : _image;
        byte[] bBuffer = (flags & OpFlags.BiasInParams) != 0 ? _params : _image;
        int w = Ref(op.Weights, flags, OpFlags.WeightsInParams), bias = Ref(op.Bias, flags, OpFlags.BiasInParams);
        int scales = Const(op.Multiplier);
        TensorInfo x = _plan.Tensor(op.Input0);
        switch (op.Kind)
        {
            case OpKind.SaveMask:
            {
                TensorInfo m = _plan.Tensor(op.Output);
                Training.SaveMask(_arena, x.ArenaOffset, x.ElementCount, op.Arg(0), op.Arg(1), _arena, m.ArenaOffset);
                break;
            }
            case OpKind.LossGradient:
            {
                TensorInfo d = _plan.Tensor(op.Output);
                int best = 0;
                for (int k = 1; k < x.ElementCount; k++)
                    if ((sbyte)_arena[x.ArenaOffset + k] > (sbyte)_arena[x.ArenaOffset + best]) best = k;
                _prediction = best;
                if (op.Arg(0) == 1)
                {
                    float threshold = BitConverter.Int32BitsToSingle(op.Arg(1));
                    _loss = Entropy.Gradient(_arena, x.ArenaOffset, x.ElementCount, x.Scale, x.ZeroPoint, threshold, _arena, d.ArenaOffset);
                    _skipBackward = _loss > threshold || !float.IsFinite(_loss);
                    break;
                }
                _loss = Training.LossGradient(_arena, x.ArenaOffset, x.ElementCount, x.Scale, x.ZeroPoint, _label, _arena, d.ArenaOffset);
                break;
            }
            case OpKind.MaskGradient:
            {
                TensorInfo dy = _plan.Tensor(op.Input1), dz = _plan.Tensor(op.Output);
                Training.MaskGradient(_arena, x.ArenaOffset, _arena, dy.ArenaOffset, dy.ElementCount, _arena, dz.ArenaOffset);
                break;
            }
            case OpKind.GradientAdd:
            {
                TensorInfo b = _plan.Tensor(op.Input1), y = _plan.Tensor(op.Output);
                Training.GradientAdd(_arena, x.ArenaOffset, _arena, b.ArenaOffset, y.ElementCount, _arena, y.ArenaOffset);
                break;
            }
            case OpKind.Conv2DBackwardInput when (flags & OpFlags.WeightsSliced) != 0:
                SlicedBackwardInput(op, x, _plan.Tensor(op.Output));
                break;
            case OpKind.Conv2DBackwardInput:
            {
                TensorInfo dx = _plan.Tensor(op.Output);
                var p = new ConvParams
                {
                    InC = dx.C, H = dx.H, W = dx.W, OutC = x.C, OH = x.H, OW = x.W,
                    Kernel = op.Arg(0), Stride = op.Arg(1), Pad = op.Arg(2), Groups = op.Arg(3), ActMin = -128, ActMax = 127,
                };
                Conv2D.BackwardInput(p, _arena, x.ArenaOffset, wBuffer, w, _image, scales, _arena, dx.ArenaOffset, (flags & OpFlags.Accumulate) != 0);
                break;
            }
            case OpKind.DepthwiseBackwardInput:
            {
                TensorInfo dx = _plan.Tensor(op.Output);
                var p = new DepthwiseParams
                {
                    C = dx.C, H = dx.H, W = dx.W, OH = x.H, OW = x.W, Kernel = op.Arg(0), Stride = op.Arg(1), Pad = op.Arg(2), ActMin = -128, ActMax = 127,
                };
                if (dx.ArenaOffset < x.ArenaOffset + x.ByteLength && x.ArenaOffset < dx.ArenaOffset + dx.ByteLength)
                    DepthwiseBackwardInPlace(p, x.ArenaOffset, wBuffer, w, scales, dx.ArenaOffset);
                else
                    DepthwiseConv2D.BackwardInput(p, _arena, x.ArenaOffset, wBuffer, w, _image, scales, _arena, dx.ArenaOffset, (flags & OpFlags.Accumulate) != 0);
                break;
            }
            case OpKind.FullyConnectedBackwardInput:
            {
                TensorInfo dx = _plan.Tensor(op.Output);
                var p = new FullyConnectedParams { In = dx.ElementCount, Out = x.ElementCount, ActMin = -128, ActMax = 127 };
                FullyConnected.BackwardInput(p, _arena, x.ArenaOffset, wBuffer, w, _image, scales, _arena, dx.ArenaOffset, (flags & OpFlags.Accumulate) != 0);
                break;
            }
            case OpKind.Conv2DUpdate:
            {
                TensorInfo dy = _plan.Tensor(op.Input1);
                var p = new ConvParams
                {
                    InC = x.C, H = x.H, W = x.W, OutC = dy.C, OH = dy.H, OW = dy.W,
                    Kernel = op.Arg(0), Stride = op.Arg(1), Pad = op.Arg(2), Groups = op.Arg(3),
                    InputZeroPoint = x.ZeroPoint, ActMin = -128, ActMax = 127,
                };
                if (GradientProbe is not null)
                {
                    int k = op.Arg(4), taps = p.Kernel * p.Kernel;
                    float[] dw = new float[p.OutC * k * taps], db = new float[p.OutC];
                    Conv2D.WeightGradient(p, _arena, x.ArenaOffset, _arena, dy.ArenaOffset, x.Scale, k, dw, db);
                    GradientProbe(index, dw, db);
                }
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
                TensorInfo dy = _plan.Tensor(op.Input1);
                var p = new DepthwiseParams
                {
                    C = x.C, H = x.H, W = x.W, OH = dy.H, OW = dy.W, Kernel = op.Arg(0), Stride = op.Arg(1), Pad = op.Arg(2),
                    InputZeroPoint = x.ZeroPoint, ActMin = -128, ActMax = 127,
                };
                if (GradientProbe is not null)
                {
                    int k = op.Arg(3);
                    float[] dw = new float[k * p.Kernel * p.Kernel], db = new float[p.C];
                    DepthwiseConv2D.WeightGradient(p, _arena, x.ArenaOffset, _arena, dy.ArenaOffset, x.Scale, k, dw, db);
                    GradientProbe(index, dw, db);
                }
                var rule = new UpdateRule { LearningRate = LearningRate, Momentum = Momentum, Qas = op.Arg(4) != 0 };
                DepthwiseConv2D.Update(p, _arena, x.ArenaOffset, _arena, dy.ArenaOffset, wBuffer, w, bBuffer, bias, _image, scales, x.Scale,
                    op.Arg(3), rule, _state, op.Arg(5), ref _rng);
                break;
            }
            case OpKind.FullyConnectedUpdate:
            {
                TensorInfo dy = _plan.Tensor(op.Input1);
                var p = new FullyConnectedParams { In = x.ElementCount, Out = dy.ElementCount, InputZeroPoint = x.ZeroPoint, ActMin = -128, ActMax = 127 };
                if (GradientProbe is not null)
                {
                    int k = op.Arg(0);
                    float[] dw = new float[p.Out * k], db = new float[p.Out];
                    FullyConnected.WeightGradient(p, _arena, x.ArenaOffset, _arena, dy.ArenaOffset, x.Scale, k, dw, db);
                    GradientProbe(index, dw, db);
                }
                var rule = new UpdateRule { LearningRate = LearningRate, Momentum = Momentum, Qas = op.Arg(1) != 0 };
                FullyConnected.Update(p, _arena, x.ArenaOffset, _arena, dy.ArenaOffset, wBuffer, w, bBuffer, bias, _image, scales, x.Scale,
                    op.Arg(0), rule, _state, op.Arg(2), ref _rng);
                break;
            }
            case OpKind.BiasUpdate:
            {
                int plane = x.H * x.W;
                if (GradientProbe is not null)
                {
                    float[] db = new float[x.C];
                    Training.BiasGradient(_arena, x.ArenaOffset, x.C, plane, db);
                    GradientProbe(index, Array.Empty<float>(), db);
                }
                var rule = new UpdateRule { LearningRate = LearningRate, Momentum = Momentum, Qas = op.Arg(1) != 0 };
                Training.BiasUpdate(_arena, x.ArenaOffset, x.C, plane, bBuffer, bias, _image, scales, BitConverter.Int32BitsToSingle(op.Arg(0)),
                    rule, _state, op.Arg(2), ref _rng);
                break;
            }
            case OpKind.AvgPoolBackward:
            {
                TensorInfo dx = _plan.Tensor(op.Output);
                var p = new PoolParams { C = dx.C, H = dx.H, W = dx.W, OH = x.H, OW = x.W, Kernel = op.Arg(0), Stride = op.Arg(1), ActMin = -128, ActMax = 127 };
                AvgPool.Backward(p, _arena, x.ArenaOffset, _arena, dx.ArenaOffset, (flags & OpFlags.Accumulate) != 0);
                break;
            }
            case OpKind.GlobalAvgPoolBackward:
            {
                TensorInfo dx = _plan.Tensor(op.Output);
                var p = new PoolParams { C = dx.C, H = dx.H, W = dx.W, OH = 1, OW = 1, Kernel = dx.H, Stride = 1, ActMin = -128, ActMax = 127 };
                GlobalAvgPool.Backward(p, _arena, x.ArenaOffset, _arena, dx.ArenaOffset, (flags & OpFlags.Accumulate) != 0);
                break;
            }
            default:
                throw new TinyTrainException($"{_plan.Source}: op kind {(int)op.Kind} is not supported by this runtime");
        }
    }
}
