namespace TinyTrain.Compiler.Tests.Planning;

using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Compiler.Zoo;
using TinyTrain.Runtime.Plans;
using static PlanImage;

/// <summary>A compiled tta:eco plan loads; each forgery of its DistillGradient op (kind 44) is refused at load, naming the op and the field.</summary>
public class DistillPlanValidationTests
{
    private static readonly Lazy<byte[]> Eco = new(() =>
    {
        var graph = ModelZoo.Build("cnn-s", seed: 0);
        return PlanCompiler.Compile(graph, CalibrationSet.Random(graph.InputShape, 4, 0), new CompileOptions { Update = "tta:eco:2" }).Image;
    });

    private static int Find(byte[] image)
    {
        Plan plan = Plan.Load(image, "eco.ttplan");
        for (int i = 0; i < plan.OpCount; i++)
            if (plan.Op(i).Kind == OpKind.DistillGradient) return i;
        throw new InvalidOperationException("no DistillGradient op");
    }

    [Theory]
    [InlineData("weight", "distillation weight (arg 0)")]
    [InlineData("m is a gradient", "input 0")]
    [InlineData("constant", "takes no constants")]
    public void A_forged_distillation_op_is_refused_naming_the_op_and_the_field(string forgery, string fragment)
    {
        byte[] b = (byte[])Eco.Value.Clone();
        int op = Find(b);
        switch (forgery)
        {
            case "weight":
                Put32(b, OpArg(b, op, 0), BitConverter.SingleToInt32Bits(float.NaN));
                break;
            case "m is a gradient":
                Put16(b, Op(b, op, PlanFormat.OpInput0), BitConverter.ToUInt16(b, Op(b, op, PlanFormat.OpInput1)));
                break;
            case "constant":
                Put32(b, Op(b, op, PlanFormat.OpWeights), 0u);
                break;
        }
        Seal(b);
        var e = Assert.Throws<PlanException>(() => Plan.Load(b, "forged.ttplan"));
        Assert.Contains("(DistillGradient", e.Message);
        Assert.Contains(fragment, e.Message);
    }
}
