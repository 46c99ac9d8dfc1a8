namespace TinyTrain.Compiler.Tests.Planning;

using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Compiler.Zoo;
using TinyTrain.Runtime.Plans;
using static PlanImage;

/// <summary>
/// A compiled tta:tent plan loads; each forgery of its per-channel scale/shift ops (kinds 40-43) is refused
/// at load, naming the op and the field, before any kernel can index out of range.
/// </summary>
public class NormPlanValidationTests
{
    private static readonly Lazy<byte[]> Tent = new(() =>
    {
        var graph = ModelZoo.Build("cnn-s", seed: 0);
        return PlanCompiler.Compile(graph, CalibrationSet.Random(graph.InputShape, 4, 0), new CompileOptions { Update = "tta:tent" }).Image;
    });

    private static int Find(byte[] image, OpKind kind)
    {
        Plan plan = Plan.Load(image, "tent.ttplan");
        for (int i = 0; i < plan.OpCount; i++)
            if (plan.Op(i).Kind == kind) return i;
        throw new InvalidOperationException($"no {kind} op");
    }

    [Fact]
    public void The_compiled_plan_holds_every_norm_op_kind_and_loads()
    {
        Plan plan = Plan.Load(Tent.Value, "tent.ttplan");
        foreach (OpKind kind in new[] { OpKind.NormAffine, OpKind.NormAffineBackwardInput, OpKind.NormAffineUpdate, OpKind.NormStats })
            Find(Tent.Value, kind);
        Assert.True(plan.SramParamBytes > 0);
    }

    public static TheoryData<string, string[]> Forgeries => new()
    {
        { "affine not in params", ["(NormAffine", "params region (flag WeightsInParams)"] },
        { "affine past the params region", ["(NormAffine", "scale/shift", "run past the"] },
        { "norm activation range", ["(NormAffine", "activation range 100..-5"] },
        { "update step bound", ["(NormAffineUpdate", "update bounds (args 0..2)"] },
        { "update anchor", ["(NormAffineUpdate", "anchor weight (arg 3)"] },
        { "stats momentum", ["(NormStats", "momentum (arg 0) 0 must lie in (0, 1]"] },
        { "stats without source", ["(NormStats", "has no source statistics"] },
    };

    [Theory]
    [MemberData(nameof(Forgeries))]
    public void A_forged_norm_op_is_refused_naming_the_op_and_the_field(string forgery, string[] fragments)
    {
        byte[] b = (byte[])Tent.Value.Clone();
        switch (forgery)
        {
            case "affine not in params":
                b[Op(b, Find(b, OpKind.NormAffine), PlanFormat.OpFlags)] &= unchecked((byte)~(byte)OpFlags.WeightsInParams);
                break;
            case "affine past the params region":
                Put32(b, Op(b, Find(b, OpKind.NormAffine), PlanFormat.OpWeights), 1_000_000u);
                break;
            case "norm activation range":
            {
                int op = Find(b, OpKind.NormAffine);
                Put32(b, OpArg(b, op, 0), 100);
                Put32(b, OpArg(b, op, 1), -5);
                break;
            }
            case "update step bound":
                Put32(b, OpArg(b, Find(b, OpKind.NormAffineUpdate), 0), BitConverter.SingleToInt32Bits(-1f));
                break;
            case "update anchor":
                Put32(b, OpArg(b, Find(b, OpKind.NormAffineUpdate), 3), BitConverter.SingleToInt32Bits(float.NaN));
                break;
            case "stats momentum":
                Put32(b, OpArg(b, Find(b, OpKind.NormStats), 0), 0);
                break;
            case "stats without source":
                Put32(b, Op(b, Find(b, OpKind.NormStats), PlanFormat.OpMultiplier), PlanFormat.NoConstant);
                break;
        }
        Seal(b);
        var e = Assert.Throws<PlanException>(() => Plan.Load(b, "forged.ttplan"));
        foreach (string fragment in fragments) Assert.Contains(fragment, e.Message);
    }
}
