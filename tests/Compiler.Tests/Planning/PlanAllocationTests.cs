namespace TinyTrain.Compiler.Tests.Planning;

using TinyTrain.Runtime.Plans;
using Xunit.Abstractions;

// Loading keeps the image and allocates only the Plan object; the accessors allocate nothing, so
// a board can read its plan in place.
public class PlanAllocationTests
{
    private readonly ITestOutputHelper _output;

    public PlanAllocationTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public void Load_AllocatesOnlyThePlanObject()
    {
        byte[] image = new PlanTestNet().Image;
        for (int i = 0; i < 3; i++) Plan.Load(image); // JIT and the CRC table

        long before = GC.GetAllocatedBytesForCurrentThread();
        Plan plan = Plan.Load(image);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        _output.WriteLine($"Plan.Load allocated {allocated} bytes for a {image.Length}-byte plan");
        Assert.InRange(allocated, 1, 256);
        GC.KeepAlive(plan);
    }

    [Fact]
    public void ReadingEveryTensorAndOp_AllocatesNothing()
    {
        Plan plan = Plan.Load(new PlanTestNet().Image);
        long sum = ReadAll(plan); // warm up

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int pass = 0; pass < 100; pass++) sum += ReadAll(plan);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocated);
        Assert.NotEqual(0, sum);
    }

    private static long ReadAll(Plan plan)
    {
        long sum = plan.TensorCount + plan.OpCount + plan.ArenaBytes + plan.InputTensor + plan.OutputTensor + plan.NumClasses
            + plan.ForwardOpCount + plan.FlashBytes + plan.SramParamBytes + plan.StateBytes + plan.ConstantsOffset + plan.ConstantsLength
            + plan.Image.Length;
        for (int i = 0; i < plan.TensorCount; i++)
        {
            TensorInfo t = plan.Tensor(i);
            sum += (int)t.Type + (int)t.Role + t.C + t.H + t.W + t.ElementCount + t.ArenaOffset + t.ByteLength
                + (long)t.Scale + t.ZeroPoint + t.FirstOp + t.LastOp;
        }
        for (int j = 0; j < plan.OpCount; j++)
        {
            OpInfo op = plan.Op(j);
            sum += (int)op.Kind + (int)op.Phase + op.Input0 + op.Input1 + op.Output + op.Scratch
                + op.Weights + op.Bias + op.Multiplier + op.Shift;
            for (int k = 0; k < PlanFormat.OpArgCount; k++) sum += op.Arg(k);
        }
        return sum;
    }
}
