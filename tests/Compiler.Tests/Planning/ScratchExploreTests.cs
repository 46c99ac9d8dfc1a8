namespace TinyTrain.Compiler.Tests.Planning;

using TinyTrain.Runtime.Execution;
using TinyTrain.Runtime.Plan;
using Xunit.Abstractions;

public class ScratchExploreTests
{
    private readonly ITestOutputHelper _o;
    public ScratchExploreTests(ITestOutputHelper o) => _o = o;

    private void DumpRaw(byte[] b)
    {
        int ops = PlanImage.Section(b, SectionKind.Ops, out int len);
        for (int j = 0; j < len / 64; j++)
        {
            int r = ops + 64 * j;
            var a = new int[9];
            for (int k = 0; k < 9; k++) a[k] = BitConverter.ToInt32(b, r + 28 + 4 * k);
            _o.WriteLine($"  {j} {(OpKind)BitConverter.ToUInt16(b, r)} {(OpPhase)b[r + 2]} {(OpFlags)b[r + 3]} in {BitConverter.ToUInt16(b, r + 4)},{BitConverter.ToUInt16(b, r + 6)} out {BitConverter.ToUInt16(b, r + 8)} w {BitConverter.ToUInt32(b, r + 12)} b {BitConverter.ToUInt32(b, r + 16)} m {BitConverter.ToUInt32(b, r + 20)} args {string.Join(",", a)}");
        }
        int ts = PlanImage.Section(b, SectionKind.Tensors, out int tl);
        for (int i = 0; i < tl / 48; i++)
        {
            int r = ts + 48 * i;
            _o.WriteLine($"  t{i} {(ElementType)b[r]} ({BitConverter.ToUInt32(b, r + 4)},{BitConverter.ToUInt32(b, r + 8)},{BitConverter.ToUInt32(b, r + 12)}) @{BitConverter.ToUInt32(b, r + 16)} len {BitConverter.ToUInt32(b, r + 20)} zp {BitConverter.ToInt32(b, r + 28)}");
        }
    }

    [Fact]
    public void Dump()
    {
        foreach (string c in new[] { "tiny", "tinybias" }.Concat(TrainingPlans.Mbv2Configs))
        {
            byte[] image = c == "tiny" ? TrainingPlans.Tiny() : c == "tinybias" ? TrainingPlans.TinyBiasOnly() : TrainingPlans.Mbv2(c);
            try
            {
                Plan plan = Plan.Load(image, c);
                _o.WriteLine($"{c}: loaded, {plan.OpCount} ops, fwd {plan.ForwardOpCount}, params {plan.SramParamBytes}, state {plan.StateBytes}, {image.Length} bytes");
                if (c == "tiny")
                    for (int j = 0; j < plan.OpCount; j++)
                    {
                        OpInfo op = plan.Op(j);
                        _o.WriteLine($"  {j} {op.Kind} {op.Phase} {op.Flags} in {op.Input0},{op.Input1} out {op.Output} w {op.Weights} b {op.Bias} m {op.Multiplier} args {op.Arg(0)},{op.Arg(1)},{op.Arg(2)},{op.Arg(3)},{op.Arg(4)},{op.Arg(5)},{op.Arg(6)}");
                    }
                try
                {
                    var ex = new Executor(plan);
                    ex.Invoke();
                    float loss = ex.TrainStep(1);
                    _o.WriteLine($"   step ok, loss {loss}");
                }
                catch (Exception e) { _o.WriteLine($"   EXEC {e.GetType().Name}: {e.Message}"); }
            }
            catch (PlanException e)
            {
                _o.WriteLine($"{c}: {e.Message}");
                if (c == "tiny") DumpRaw(image);
            }
        }
    }
}
