using TinyTrain.Adapters.Packs;
using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Learning;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Compiler.Zoo;
using TinyTrain.Runtime.Execution;
using TinyTrain.Runtime.Plans;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

namespace TinyTrain.Adapters.Tests.Packs;

/// <summary>A plan with trained slices (CompileOptions.TrainedSlices) travels as what is writable: each sliced weight
/// as its OutC x trainChannels slice, and a pack applied to a fresh device gives it the same learned weights.</summary>
public class TrainedSliceLayoutTests
{
    [Fact]
    public void A_sliced_weight_travels_as_its_trained_slice_and_applies_exactly()
    {
        var graph = ModelZoo.Build("mcunet-5fps", 64, 10, seed: 7);
        var options = new CompileOptions
        {
            Patch = "auto", ChannelBackward = true, TrainedSlices = true,
            Trainable = m => TrainableSet.FromScheme(new SparseScheme(20, [23, 24, 27, 30, 33, 39], [0, 0.25, 0.5, 0.5, 0, 0]), m, "49kb"),
        };
        var plan = PlanImage.Load(PlanCompiler.Compile(graph, CalibrationSet.Random(graph.InputShape, 4, 8), options).Image, "sliced.ttplan");
        AdapterLayout layout = AdapterLayout.Of(plan);
        // blocks.8.pw1 trains 12 of its 48 input channels: 144 rows of 12.
        ParamEntry pw1 = layout.Entries.Single(e => e.Name == "blocks.8.pw1.weight");
        Assert.Equal([144, 12], pw1.Shape);
        Assert.Equal(144 * 12, pw1.Bytes);

        var executor = new Executor(plan) { LearningRate = 0.05f };
        var input = new byte[executor.InputLength];
        for (int step = 0; step < 3; step++)
        {
            new Random(step).NextBytes(input);
            executor.SetInput(input, 0);
            executor.TrainStep(step);
        }
        AdapterPack pack = layout.Capture(executor, "noise", 3);
        var fresh = new Executor(plan);
        layout.Apply(fresh, AdapterPack.Deserialize(pack.Serialize()));
        for (int i = 0; i < plan.OpCount; i++)
            if (plan.Op(i).Phase == OpPhase.Init)
                Assert.Equal(TrainedParams.Whole(plan, executor.Params, i), TrainedParams.Whole(plan, fresh.Params, i));
        Assert.Contains(Enumerable.Range(0, plan.OpCount), i => plan.Op(i).Kind == OpKind.InitParamsRows
            && !TrainedParams.Whole(plan, executor.Params, i).SequenceEqual(TrainedParams.Whole(plan, new Executor(plan).Params, i)));
    }
}
