namespace TinyTrain.Compiler.Tests.Planning;

using TinyTrain.Compiler.Planning;
using TinyTrain.Runtime.Plans;

public class PlanRoundTripTests
{
    [Fact]
    public void EveryField_ReadsBackAsWritten()
    {
        var net = new PlanTestNet();
        Plan plan = Plan.Load(net.Image, "net.ttplan");

        Assert.Same(net.Image, plan.Image);
        Assert.Equal("net.ttplan", plan.Source);
        Assert.Equal(PlanTestNet.ArenaBytes, plan.ArenaBytes);
        Assert.Equal(PlanTestNet.ModelName, plan.ModelName);
        Assert.Equal((0, 6, 10, 6), (plan.InputTensor, plan.OutputTensor, plan.NumClasses, plan.ForwardOpCount));
        Assert.Equal((123_456L, 7_890L, 321L), (plan.FlashBytes, plan.SramParamBytes, plan.StateBytes));

        Assert.Equal(net.Tensors.Count, plan.TensorCount);
        for (int i = 0; i < net.Tensors.Count; i++)
        {
            TensorSpec e = net.Tensors[i];
            TensorInfo t = plan.Tensor(i);
            Assert.Equal(e.Name, t.Name());
            Assert.Equal((e.Type, e.Role), (t.Type, t.Role));
            Assert.Equal((e.C, e.H, e.W, e.C * e.H * e.W), (t.C, t.H, t.W, t.ElementCount));
            Assert.Equal(e.ArenaOffset, t.ArenaOffset);
            int n = e.C * e.H * e.W;
            int bytes = e.Type switch { ElementType.Int8 => n, ElementType.Bits => (n + 7) / 8, _ => 4 * n };
            Assert.Equal(bytes, t.ByteLength);
            Assert.Equal((e.Scale, e.ZeroPoint), (t.Scale, t.ZeroPoint));
            Assert.Equal(((int)e.FirstOp, (int)e.LastOp), (t.FirstOp, t.LastOp));
        }
        Assert.Equal(64, plan.Tensor(8).ByteLength); // 512 bits

        Assert.Equal(net.Ops.Count, plan.OpCount);
        for (int j = 0; j < net.Ops.Count; j++)
        {
            OpSpec e = net.Ops[j];
            OpInfo op = plan.Op(j);
            Assert.Equal((e.Kind, e.Phase), (op.Kind, op.Phase));
            Assert.Equal(((int)e.In0, (int)e.In1, (int)e.Output, (int)e.Scratch), (op.Input0, op.Input1, op.Output, op.Scratch));
            Assert.Equal((e.Weights, e.Bias, e.Multiplier, e.Shift), (op.Weights, op.Bias, op.Multiplier, op.Shift));
            for (int k = 0; k < PlanFormat.OpArgCount; k++)
                Assert.Equal(k < e.Args.Length ? e.Args[k] : 0, op.Arg(k));
        }

        // Kernels read constants straight from the image.
        foreach ((uint offset, byte[] bytes) in net.Constants)
            Assert.Equal(bytes, plan.Image.AsSpan(plan.ConstantsOffset + (int)offset, bytes.Length).ToArray());
        Assert.True(PlanReferee.Execute(plan));
    }

    [Fact]
    public void Build_IsDeterministic_AndLaysOutAlignedSectionsAndTrailer()
    {
        byte[] a = new PlanTestNet().Image, b = new PlanTestNet().Image;
        Assert.Equal(a, b);
        Assert.True(PlanFormat.Magic.SequenceEqual(a.AsSpan(0, 8)));
        Assert.Equal((uint)a.Length, PlanImage.U32(a, PlanFormat.HeaderFileLength));
        Assert.Equal(0, a.Length % 4);
        Assert.Equal(Crc32.Compute(a, 0, a.Length - 4), PlanImage.U32(a, a.Length - 4));
        int previousEnd = PlanFormat.HeaderSize + 5 * PlanFormat.SectionEntrySize;
        foreach (SectionKind kind in new[] { SectionKind.Model, SectionKind.Tensors, SectionKind.Ops, SectionKind.Constants, SectionKind.Names })
        {
            int offset = PlanImage.Section(a, kind, out int length);
            Assert.Equal(0, offset % 4);
            Assert.InRange(offset - previousEnd, 0, 3);
            previousEnd = offset + length;
        }
        Assert.InRange(a.Length - 4 - previousEnd, 0, 3);
    }

    [Fact]
    public void Crc32_MatchesTheStandardCheckValue()
    {
        byte[] check = "123456789"u8.ToArray();
        Assert.Equal(0xCBF43926u, Crc32.Compute(check, 0, check.Length));
        Assert.Equal(0u, Crc32.Compute(check, 3, 0));
    }

    [Fact]
    public void Builder_AlignsConstantsAndWritesInt32sLittleEndian()
    {
        var b = new PlanBuilder();
        Assert.Equal(0u, b.AddInt8s(new sbyte[] { -1, 2, 3 }, alignment: 1));
        Assert.Equal(3u, b.AddConstant(new byte[] { 9 }, alignment: 1));
        Assert.Equal(16u, b.AddConstant(new byte[] { 7 }, alignment: 16));
        Assert.Equal(20u, b.AddInt32s(new[] { 0x04030201, -2 }));
        b.AddTensor("x", ElementType.Int8, TensorRole.Input, 1, 1, 1, 0, 1f);
        b.NumClasses = 1;
        b.ArenaBytes = 1;
        byte[] image = b.Build();
        int constants = PlanImage.Section(image, SectionKind.Constants, out int length);
        Assert.Equal(0, constants % 16);
        Assert.Equal(28, length);
        Assert.Equal(new byte[] { 0xFF, 2, 3, 9 }, image.AsSpan(constants, 4).ToArray());
        Assert.Equal(new byte[] { 1, 2, 3, 4, 0xFE, 0xFF, 0xFF, 0xFF }, image.AsSpan(constants + 20, 8).ToArray());

        Plan plan = Plan.Load(image); // one input that is also the output, no ops: a valid (if idle) plan
        Assert.Equal((1, 0, 0), (plan.TensorCount, plan.OpCount, plan.ForwardOpCount));
        Assert.Throws<ArgumentOutOfRangeException>(() => b.AddConstant(new byte[1], alignment: 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => b.AddOp(OpKind.Add, OpPhase.Forward, 0, 0, 0, 0, 0, 0, 0, 0, new int[10]));
    }

    [Fact]
    public void Accessors_RefuseIndicesOutsideThePlan()
    {
        Plan plan = Plan.Load(new PlanTestNet().Image);
        Assert.Throws<ArgumentOutOfRangeException>(() => plan.Tensor(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => plan.Tensor(plan.TensorCount));
        Assert.Throws<ArgumentOutOfRangeException>(() => plan.Op(plan.OpCount));
        Assert.Throws<ArgumentOutOfRangeException>(() => plan.Op(0).Arg(PlanFormat.OpArgCount));
    }
}
