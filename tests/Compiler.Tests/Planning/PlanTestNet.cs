namespace TinyTrain.Compiler.Tests.Planning;

using TinyTrain.Compiler.Planning;
using TinyTrain.Runtime.Plans;

internal sealed record TensorSpec(string Name, ElementType Type, TensorRole Role, int C, int H, int W, int ArenaOffset,
    float Scale, int ZeroPoint, ushort FirstOp, ushort LastOp);

internal sealed record OpSpec(OpKind Kind, OpPhase Phase, ushort In0, ushort In1, ushort Output, ushort Scratch,
    uint Weights, uint Bias, uint Multiplier, uint Shift, int[] Args);

/// <summary>
/// A small int8 network written by hand with PlanBuilder, and what went into it:
///   x (3,8,8) -> conv 3x3 (8,8,8) -> depthwise 3x3 s2 (8,4,4) -> pointwise (8,4,4) -> add(pw, dw)
///   -> global average pool (8,1,1) -> fully connected (10,1,1)
/// Arena (768 bytes), reusing space once a tensor's last reader has run:
///   x [0,192)  c1 [192,704)  dw [0,128)  pw [128,256)  add [128,256) (in place over pw)  gap [0,8)  logits [8,18)
///   gap scratch (int32) [384,416)  relu mask (bits) [704,768)
/// </summary>
internal sealed class PlanTestNet
{
    public const int ArenaBytes = 768;
    public const string ModelName = "tiny-résnet";
    public const ushort None = PlanFormat.NoTensor;
    public const uint NoConstant = PlanFormat.NoConstant;

    public readonly List<TensorSpec> Tensors = new();
    public readonly List<OpSpec> Ops = new();
    public readonly Dictionary<uint, byte[]> Constants = new();
    public byte[] Image { get; }

    public PlanTestNet(int seed = 1234)
    {
        var random = new Random(seed);
        var b = new PlanBuilder
        {
            ModelName = ModelName,
            InputTensor = 0,
            OutputTensor = 6,
            NumClasses = 10,
            ArenaBytes = ArenaBytes,
            FlashBytes = 123_456,
            SramParamBytes = 7_890,
            StateBytes = 321,
        };
        Tensor(b, new("x", ElementType.Int8, TensorRole.Input, 3, 8, 8, 0, 0.0078125f, -1, Plan.NoOp, 0));
        Tensor(b, new("c1", ElementType.Int8, TensorRole.Activation, 8, 8, 8, 192, 0.05f, -128, 0, 1));
        Tensor(b, new("dw", ElementType.Int8, TensorRole.Activation, 8, 4, 4, 0, 0.04f, -128, 1, 3));
        Tensor(b, new("pw", ElementType.Int8, TensorRole.Activation, 8, 4, 4, 128, 0.03f, 5, 2, 3));
        Tensor(b, new("add", ElementType.Int8, TensorRole.Activation, 8, 4, 4, 128, 0.06f, -3, 3, 4));
        Tensor(b, new("gap", ElementType.Int8, TensorRole.Activation, 8, 1, 1, 0, 0.06f, -3, 4, 5));
        Tensor(b, new("logits", ElementType.Int8, TensorRole.Output, 10, 1, 1, 8, 0.1f, 7, 5, Plan.NoOp));
        Tensor(b, new("gap.acc", ElementType.Int32, TensorRole.Scratch, 8, 1, 1, 384, 0f, 0, 4, 4));
        Tensor(b, new("c1.mask", ElementType.Bits, TensorRole.SavedForBackward, 8, 8, 8, 704, 0f, 0, 0, Plan.NoOp));

        Conv(b, random, OpKind.Conv2D, 0, 1, inChannelsPerGroup: 3, outChannels: 8, k: 3, new[] { 3, 1, 1, 1, -128, 127 });
        Conv(b, random, OpKind.DepthwiseConv2D, 1, 2, inChannelsPerGroup: 1, outChannels: 8, k: 3, new[] { 3, 2, 1, 0, 127 });
        Conv(b, random, OpKind.Conv2D, 2, 3, inChannelsPerGroup: 8, outChannels: 8, k: 1, new[] { 1, 1, 0, 1, -128, 127 });
        Op(b, new(OpKind.Add, OpPhase.Forward, 3, 2, 4, None, NoConstant, NoConstant, NoConstant, NoConstant,
            new[] { 1 << 30, -1, 1_500_000_000, -2, 1_800_000_000, -19, 20, -128, 127 }));
        Op(b, new(OpKind.GlobalAvgPool, OpPhase.Forward, 4, None, 5, 7, NoConstant, NoConstant, NoConstant, NoConstant,
            new[] { -128, 127 }));
        Conv(b, random, OpKind.FullyConnected, 5, 6, inChannelsPerGroup: 8, outChannels: 10, k: 1, new[] { -128, 127 });
        Image = b.Build();
    }

    private void Tensor(PlanBuilder b, TensorSpec t)
    {
        int index = b.AddTensor(t.Name, t.Type, t.Role, t.C, t.H, t.W, t.ArenaOffset, t.Scale, t.ZeroPoint, t.FirstOp, t.LastOp);
        Assert.Equal(Tensors.Count, index);
        Tensors.Add(t);
    }

    private void Op(PlanBuilder b, OpSpec o)
    {
        int index = b.AddOp(o.Kind, o.Phase, o.In0, o.In1, o.Output, o.Scratch, o.Weights, o.Bias, o.Multiplier, o.Shift, o.Args);
        Assert.Equal(Ops.Count, index);
        Ops.Add(o);
    }

    // Weights (OC, IC/G, K, K) in [-127, 127]; bias, Q31 multipliers in [2^30, 2^31) and right shifts per output channel.
    private void Conv(PlanBuilder b, Random random, OpKind kind, ushort x, ushort y, int inChannelsPerGroup, int outChannels, int k, int[] args)
    {
        var w = new sbyte[outChannels * inChannelsPerGroup * k * k];
        for (int i = 0; i < w.Length; i++) w[i] = (sbyte)random.Next(-127, 128);
        var bias = new int[outChannels];
        var multiplier = new int[outChannels];
        var shift = new int[outChannels];
        for (int c = 0; c < outChannels; c++)
        {
            bias[c] = random.Next(-5000, 5000);
            multiplier[c] = random.Next(1 << 30, int.MaxValue);
            shift[c] = -random.Next(0, 12);
        }
        uint wAt = b.AddInt8s(w, alignment: 1);
        uint bAt = b.AddInt32s(bias), mAt = b.AddInt32s(multiplier), sAt = b.AddInt32s(shift);
        Constants[wAt] = w.Select(v => (byte)v).ToArray();
        Constants[bAt] = Int32Bytes(bias);
        Constants[mAt] = Int32Bytes(multiplier);
        Constants[sAt] = Int32Bytes(shift);
        Op(b, new(kind, OpPhase.Forward, x, None, y, None, wAt, bAt, mAt, sAt, args));
    }

    private static byte[] Int32Bytes(int[] values)
    {
        var bytes = new byte[4 * values.Length];
        for (int i = 0; i < values.Length; i++) BitConverter.TryWriteBytes(bytes.AsSpan(4 * i), values[i]);
        return bytes;
    }
}
