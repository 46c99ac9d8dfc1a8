namespace TinyTrain.Runtime.Execution;

using TinyTrain.Runtime.Kernels;
using TinyTrain.Runtime.Plan;
using PlanImage = TinyTrain.Runtime.Plan.Plan;

/// <summary>
/// Runs a plan inside one arena: a single byte buffer of exactly the plan's size. Bind (this
/// constructor) allocates the arena; Invoke allocates nothing: op records are read from the plan
/// image, kernel parameters are built on the stack, weights are read in place from the image.
/// </summary>
public sealed class Executor
{
    private readonly PlanImage _plan;
    private readonly byte[] _arena;
    private readonly byte[] _image;
    private readonly int _constants;
    private readonly byte _paint;
    private readonly int _inputOffset, _inputLength, _outputOffset, _outputLength;

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
        TensorInfo input = plan.Tensor(plan.InputTensor), output = plan.Tensor(plan.OutputTensor);
        _inputOffset = input.ArenaOffset;
        _inputLength = input.ByteLength;
        _outputOffset = output.ArenaOffset;
        _outputLength = output.ByteLength;
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

    /// <summary>Copies an int8 input (as bytes) into the arena.</summary>
    public void SetInput(byte[] input, int offset)
    {
        if (offset < 0 || offset > input.Length - _inputLength)
            throw new TinyTrainException($"input needs {_inputLength} bytes, got {input.Length - offset}");
        Array.Copy(input, offset, _arena, _inputOffset, _inputLength);
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

    /// <summary>Runs the forward ops (inference).</summary>
    public void Invoke() => Run(0, _plan.ForwardOpCount);

    /// <summary>Runs ops [first, end) of the plan.</summary>
    public void Run(int first, int end)
    {
        for (int i = first; i < end; i++) Execute(_plan.Op(i));
    }

    private void Execute(OpInfo op)
    {
        TensorInfo x = _plan.Tensor(op.Input0), y = _plan.Tensor(op.Output);
        int w = Const(op.Weights), bias = Const(op.Bias), mult = Const(op.Multiplier), shift = Const(op.Shift);
        switch (op.Kind)
        {
            case OpKind.Conv2D:
            {
                var p = new ConvParams
                {
                    InC = x.C, H = x.H, W = x.W, OutC = y.C, OH = y.H, OW = y.W,
                    Kernel = op.Arg(0), Stride = op.Arg(1), Pad = op.Arg(2), Groups = op.Arg(3),
                    InputZeroPoint = x.ZeroPoint, OutputZeroPoint = y.ZeroPoint, ActMin = op.Arg(4), ActMax = op.Arg(5),
                };
                Conv2D.Run(p, _arena, x.ArenaOffset, _image, w, _image, bias, mult, shift, _arena, y.ArenaOffset);
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
                DepthwiseConv2D.Run(p, _arena, x.ArenaOffset, _image, w, _image, bias, mult, shift, _arena, y.ArenaOffset);
                break;
            }
            case OpKind.FullyConnected:
            {
                var p = new FullyConnectedParams
                {
                    In = x.ElementCount, Out = y.C,
                    InputZeroPoint = x.ZeroPoint, OutputZeroPoint = y.ZeroPoint, ActMin = op.Arg(0), ActMax = op.Arg(1),
                };
                FullyConnected.Run(p, _arena, x.ArenaOffset, _image, w, _image, bias, mult, shift, _arena, y.ArenaOffset);
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

    private int Const(uint offset) => offset == PlanFormat.NoConstant ? -1 : _constants + (int)offset;
}
