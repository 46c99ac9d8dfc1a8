namespace TinyTrain.Compiler.Tests.Planning;

using TinyTrain.Runtime.Plans;

/// <summary>
/// Runs a loaded plan's forward ops with plain int8 kernels that index exactly as the real ones
/// do, through spans cut to each tensor's own bytes and to the Constants section, so any index a
/// validated plan lets go out of range throws here. The numbers are TFLite-like, not bit-exact.
/// </summary>
internal static class PlanReferee
{
    /// <summary>Skips plans whose work (multiply-adds) is above this, so a fuzz case stays fast.</summary>
    public const long MaxWork = 4_000_000;

    /// <summary>Reads every field through the accessors; runs the ops if the work is small. Returns whether it ran them.</summary>
    public static bool Execute(Plan plan)
    {
        _ = plan.ModelName;
        long arenaEnd = 0, work = 0;
        for (int i = 0; i < plan.TensorCount; i++)
        {
            TensorInfo t = plan.Tensor(i);
            _ = t.Name();
            _ = (t.Type, t.Role, t.Scale, t.ZeroPoint, t.FirstOp, t.LastOp);
            Assert.Equal(t.ElementCount, t.C * t.H * t.W);
            arenaEnd = Math.Max(arenaEnd, (long)t.ArenaOffset + t.ByteLength);
        }
        Assert.True(arenaEnd <= plan.ArenaBytes);
        for (int j = 0; j < plan.OpCount; j++)
        {
            OpInfo op = plan.Op(j);
            for (int k = 0; k < PlanFormat.OpArgCount; k++) _ = op.Arg(k);
            TensorInfo x = plan.Tensor(op.Input0), y = plan.Tensor(op.Output);
            work += op.Kind switch
            {
                OpKind.Conv2D => (long)y.ElementCount * (x.C / op.Arg(3)) * op.Arg(0) * op.Arg(0),
                OpKind.DepthwiseConv2D => (long)y.ElementCount * op.Arg(0) * op.Arg(0),
                OpKind.FullyConnected => (long)y.ElementCount * x.ElementCount,
                OpKind.AvgPool => (long)y.ElementCount * op.Arg(0) * op.Arg(0),
                _ => x.ElementCount,
            };
        }
        if (work > MaxWork) return false;

        for (int j = 0; j < plan.OpCount; j++) ExpectKernelPreconditions(plan, j);
        var arena = new byte[arenaEnd];
        var random = new Random(7);
        TensorInfo input = plan.Tensor(plan.InputTensor);
        random.NextBytes(arena.AsSpan(input.ArenaOffset, input.ByteLength));
        ReadOnlySpan<byte> constants = plan.Image.AsSpan(plan.ConstantsOffset, plan.ConstantsLength);
        for (int j = 0; j < plan.OpCount; j++)
        {
            OpInfo op = plan.Op(j);
            TensorInfo xt = plan.Tensor(op.Input0), yt = plan.Tensor(op.Output);
            ReadOnlySpan<byte> x = arena.AsSpan(xt.ArenaOffset, xt.ByteLength);
            var y = new byte[yt.ByteLength]; // written beside the arena: an in-place op must not read what it wrote
            switch (op.Kind)
            {
                case OpKind.Conv2D:
                    Conv(x, xt, y, yt, constants, op, op.Arg(0), op.Arg(1), op.Arg(2), op.Arg(3), op.Arg(4), op.Arg(5));
                    break;
                case OpKind.DepthwiseConv2D:
                    Conv(x, xt, y, yt, constants, op, op.Arg(0), op.Arg(1), op.Arg(2), xt.C, op.Arg(3), op.Arg(4));
                    break;
                case OpKind.FullyConnected:
                    FullyConnected(x, xt, y, yt, constants, op);
                    break;
                case OpKind.Add:
                    {
                        TensorInfo x1t = plan.Tensor(op.Input1);
                        ReadOnlySpan<byte> x1 = arena.AsSpan(x1t.ArenaOffset, x1t.ByteLength);
                        for (int i = 0; i < yt.ElementCount; i++)
                        {
                            long a = Requantize(((sbyte)x[i] - xt.ZeroPoint) << op.Arg(6), op.Arg(0), op.Arg(1));
                            long b = Requantize(((sbyte)x1[i] - x1t.ZeroPoint) << op.Arg(6), op.Arg(2), op.Arg(3));
                            y[i] = Clamp(yt.ZeroPoint + Requantize(a + b, op.Arg(4), op.Arg(5)), op.Arg(7), op.Arg(8));
                        }
                        break;
                    }
                case OpKind.AvgPool:
                    AvgPool(x, xt, y, yt, op.Arg(0), op.Arg(1), op.Arg(2), op.Arg(3));
                    break;
                default:
                    AvgPool(x, xt, y, yt, xt.H, 1, op.Arg(0), op.Arg(1), xt.W);
                    break;
            }
            y.CopyTo(arena.AsSpan(yt.ArenaOffset, yt.ByteLength));
        }
        return true;
    }

    // What the kernels' own argument checks demand, stated independently of Plan.Validate.cs:
    // if validation let a plan through that fails one of these, a kernel would refuse it at run time.
    private static void ExpectKernelPreconditions(Plan plan, int j)
    {
        OpInfo op = plan.Op(j);
        TensorInfo x = plan.Tensor(op.Input0), y = plan.Tensor(op.Output);
        int constants = plan.ConstantsLength;
        void Expect(bool ok, string what)
        {
            if (!ok) throw new InvalidOperationException($"op {j} ({op.Kind}) passed validation but breaks a kernel precondition: {what}");
        }
        void Disjoint(TensorInfo a, bool inPlaceAllowed) =>
            Expect(a.ArenaOffset + a.ByteLength <= y.ArenaOffset || y.ArenaOffset + y.ByteLength <= a.ArenaOffset
                || (inPlaceAllowed && a.ArenaOffset == y.ArenaOffset && a.ByteLength == y.ByteLength), "output overlaps an input");
        void Window(int k, int stride, int pad)
        {
            Expect(k >= 1 && stride >= 1 && pad >= 0 && pad < k, "kernel, stride, padding");
            Expect(y.H == (x.H + 2 * pad - k) / stride + 1 && y.W == (x.W + 2 * pad - k) / stride + 1 && x.H + 2 * pad >= k && x.W + 2 * pad >= k, "output size");
        }
        void Constants(long weightBytes, int channels)
        {
            Expect(op.Weights != PlanFormat.NoConstant && op.Weights + weightBytes <= constants, "weights in Constants");
            Expect(op.Bias == PlanFormat.NoConstant || op.Bias + 4L * channels <= constants, "bias in Constants");
            Expect(op.Multiplier + 4L * channels <= constants && op.Shift + 4L * channels <= constants, "multipliers and shifts in Constants");
        }
        void Activation(int arg) => Expect(op.Arg(arg) >= -128 && op.Arg(arg) <= op.Arg(arg + 1) && op.Arg(arg + 1) <= 127, "activation range");

        Expect(x.Type == ElementType.Int8 && y.Type == ElementType.Int8, "int8 tensors");
        Expect(op.Output != plan.InputTensor, "writes the model input");
        switch (op.Kind)
        {
            case OpKind.Conv2D:
                Window(op.Arg(0), op.Arg(1), op.Arg(2));
                Expect(op.Arg(3) >= 1 && x.C % op.Arg(3) == 0 && y.C % op.Arg(3) == 0, "groups");
                Constants((long)y.C * (x.C / op.Arg(3)) * op.Arg(0) * op.Arg(0), y.C);
                Activation(4);
                Disjoint(x, false);
                break;
            case OpKind.DepthwiseConv2D:
                Window(op.Arg(0), op.Arg(1), op.Arg(2));
                Expect(x.C == y.C, "channels");
                Constants((long)y.C * op.Arg(0) * op.Arg(0), y.C);
                Activation(3);
                Disjoint(x, false);
                break;
            case OpKind.FullyConnected:
                Expect(y.H == 1 && y.W == 1, "output (OC,1,1)");
                Constants((long)y.C * x.ElementCount, y.C);
                Activation(0);
                Disjoint(x, false);
                break;
            case OpKind.Add:
                TensorInfo x1 = plan.Tensor(op.Input1);
                Expect(x1.Type == ElementType.Int8 && (x.C, x.H, x.W) == (y.C, y.H, y.W) && (x1.C, x1.H, x1.W) == (y.C, y.H, y.W), "equal shapes");
                Activation(7);
                Disjoint(x, true);
                Disjoint(x1, true);
                break;
            case OpKind.AvgPool:
                Window(op.Arg(0), op.Arg(1), 0);
                Expect(x.C == y.C, "channels");
                Activation(2);
                Disjoint(x, false);
                break;
            case OpKind.GlobalAvgPool:
                Expect((y.C, y.H, y.W) == (x.C, 1, 1), "output (C,1,1)");
                Activation(0);
                Disjoint(x, false);
                break;
            default:
                Expect(false, "known kind");
                break;
        }
    }

    // x (IC,H,W), w (OC,IC/G,K,K), y (OC,OH,OW)
    private static void Conv(ReadOnlySpan<byte> x, TensorInfo xt, Span<byte> y, TensorInfo yt, ReadOnlySpan<byte> constants,
        OpInfo op, int k, int stride, int pad, int groups, int actMin, int actMax)
    {
        ReadOnlySpan<byte> w = constants[(int)op.Weights..];
        int icPerGroup = xt.C / groups, ocPerGroup = yt.C / groups;
        for (int oc = 0; oc < yt.C; oc++)
        {
            for (int oy = 0; oy < yt.H; oy++)
            {
                for (int ox = 0; ox < yt.W; ox++)
                {
                    long acc = Bias(constants, op, oc);
                    for (int i = 0; i < icPerGroup; i++)
                    {
                        int ic = oc / ocPerGroup * icPerGroup + i;
                        for (int ky = 0; ky < k; ky++)
                        {
                            int iy = oy * stride - pad + ky;
                            if (iy < 0 || iy >= xt.H) continue;
                            for (int kx = 0; kx < k; kx++)
                            {
                                int ix = ox * stride - pad + kx;
                                if (ix < 0 || ix >= xt.W) continue;
                                acc += ((sbyte)x[(ic * xt.H + iy) * xt.W + ix] - xt.ZeroPoint) * (sbyte)w[((oc * icPerGroup + i) * k + ky) * k + kx];
                            }
                        }
                    }
                    y[(oc * yt.H + oy) * yt.W + ox] = Output(constants, op, oc, acc, yt.ZeroPoint, actMin, actMax);
                }
            }
        }
    }

    // x flat (IN), w (OC, IN), y (OC,1,1)
    private static void FullyConnected(ReadOnlySpan<byte> x, TensorInfo xt, Span<byte> y, TensorInfo yt, ReadOnlySpan<byte> constants, OpInfo op)
    {
        ReadOnlySpan<byte> w = constants[(int)op.Weights..];
        int n = xt.ElementCount;
        for (int oc = 0; oc < yt.C; oc++)
        {
            long acc = Bias(constants, op, oc);
            for (int i = 0; i < n; i++) acc += ((sbyte)x[i] - xt.ZeroPoint) * (sbyte)w[oc * n + i];
            y[oc] = Output(constants, op, oc, acc, yt.ZeroPoint, op.Arg(0), op.Arg(1));
        }
    }

    private static void AvgPool(ReadOnlySpan<byte> x, TensorInfo xt, Span<byte> y, TensorInfo yt, int k, int stride, int actMin, int actMax, int kw = 0)
    {
        if (kw == 0) kw = k;
        for (int c = 0; c < yt.C; c++)
            for (int oy = 0; oy < yt.H; oy++)
                for (int ox = 0; ox < yt.W; ox++)
                {
                    long sum = 0;
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < kw; kx++)
                            sum += (sbyte)x[(c * xt.H + oy * stride + ky) * xt.W + ox * stride + kx];
                    y[(c * yt.H + oy) * yt.W + ox] = Clamp(sum / (k * kw), actMin, actMax);
                }
    }

    private static long Bias(ReadOnlySpan<byte> constants, OpInfo op, int oc) =>
        op.Bias == PlanFormat.NoConstant ? 0 : BitConverter.ToInt32(constants[((int)op.Bias + 4 * oc)..]);

    private static byte Output(ReadOnlySpan<byte> constants, OpInfo op, int oc, long acc, int zeroPoint, int actMin, int actMax)
    {
        int m = BitConverter.ToInt32(constants[((int)op.Multiplier + 4 * oc)..]);
        int s = BitConverter.ToInt32(constants[((int)op.Shift + 4 * oc)..]);
        return Clamp(zeroPoint + Requantize(acc, m, s), actMin, actMax);
    }

    // acc * M * 2^(shift - 31), rounded; acc is clamped to int32 first as the kernels' accumulators are.
    private static long Requantize(long acc, int multiplier, int shift)
    {
        acc = Math.Clamp(acc, int.MinValue, int.MaxValue);
        Int128 product = (Int128)acc * multiplier;
        int right = 31 - shift;
        if (right == 0) return (long)product;
        return (long)((product + (Int128.One << (right - 1))) >> right);
    }

    private static byte Clamp(long v, int min, int max) => (byte)(sbyte)Math.Clamp(v, min, max);
}
