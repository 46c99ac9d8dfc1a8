namespace TinyTrain.Compiler.Tests.Planning;

using System.Buffers.Binary;
using TinyTrain.Runtime.Plans;
using Xunit.Abstractions;
using static PlanImage;

// Training plans: what the compiler writes loads and runs a step through the runtime's kernels; each rule
// of Plan.Validate.cs for training ops refuses a forged plan (checksum re-sealed) with a one-line message
// naming the op and the field.
public class TrainingPlanValidationTests
{
    private const string Source = "models/train.ttplan";

    private readonly ITestOutputHelper _output;

    public TrainingPlanValidationTests(ITestOutputHelper output) => _output = output;

    public static TheoryData<string> Mbv2Configs => new(TrainingPlans.Mbv2Configs);

    [Theory]
    [MemberData(nameof(Mbv2Configs))]
    public void CompiledMbv2TrainingPlan_Loads_AndRunsAStepThroughTheKernels(string config)
    {
        Plan plan = Plan.Load(TrainingPlans.Mbv2(config), config);
        Assert.True(plan.OpCount > plan.ForwardOpCount);
        Assert.True(plan.SramParamBytes > 0);
        Assert.Equal(config.EndsWith("+momentum", StringComparison.Ordinal), plan.StateBytes > 0);
        var phases = new int[5];
        for (int j = 0; j < plan.OpCount; j++) phases[(int)plan.Op(j).Phase]++;
        _output.WriteLine($"{config}: {plan.OpCount} ops (forward {phases[0]}, backward {phases[1]}, update {phases[2]}, save {phases[3]}, init {phases[4]}), "
            + $"params {plan.SramParamBytes} B, state {plan.StateBytes} B");
        Assert.True(phases[(int)OpPhase.Init] > 0 && phases[(int)OpPhase.Update] > 0 && phases[(int)OpPhase.Backward] > 0);
        Assert.True(TrainingPlanReferee.IsTrainingPlan(plan));
        Assert.True(TrainingPlanReferee.Execute(plan, maxWork: 200_000_000));
    }

    [Fact]
    public void TinyTrainingPlans_HoldEveryTrainingOpKind_Load_AndRun()
    {
        Plan plan = Plan.Load(TrainingPlans.Tiny(), "tiny");
        var kinds = new HashSet<OpKind>();
        for (int j = 0; j < plan.OpCount; j++) kinds.Add(plan.Op(j).Kind);
        // SaveMask stays in the format, but the compiler fuses masks into the forward ops.
        for (var kind = OpKind.InitParams; kind <= OpKind.GradientAdd; kind++)
            if (kind != OpKind.SaveMask) Assert.Contains(kind, kinds);
        bool fusedMask = false;
        for (int j = 0; j < plan.OpCount; j++) fusedMask |= plan.Op(j).Kind == OpKind.Conv2D && plan.Op(j).Scratch != PlanFormat.NoTensor;
        Assert.True(fusedMask);
        Assert.True(plan.StateBytes > 0);
        Assert.True(TrainingPlanReferee.Execute(plan));

        Plan biasOnly = Plan.Load(TrainingPlans.TinyBiasOnly(), "tiny-bias");
        Assert.True(TrainingPlanReferee.Execute(biasOnly));
    }

    [Fact]
    public void AccumulateFlag_IsAcceptedWhereTheKernelHonoursIt()
    {
        byte[] b = TrainingPlans.Tiny();
        foreach (OpKind kind in new[] { OpKind.Conv2DBackwardInput, OpKind.DepthwiseBackwardInput, OpKind.FullyConnectedBackwardInput,
            OpKind.AvgPoolBackward, OpKind.GlobalAvgPoolBackward })
        {
            int j = TrainingPlans.FindOp(b, kind);
            b[Op(b, j, PlanFormat.OpFlags)] |= (byte)OpFlags.Accumulate;
        }
        Seal(b);
        Assert.True(TrainingPlanReferee.Execute(Plan.Load(b)));
    }

    [Fact]
    public void LoadingATrainingPlan_AllocatesOnlyThePlanObject()
    {
        foreach (byte[] image in new[] { TrainingPlans.Tiny(), TrainingPlans.Mbv2("full+momentum") })
        {
            for (int i = 0; i < 3; i++) Plan.Load(image);
            long before = GC.GetAllocatedBytesForCurrentThread();
            Plan plan = Plan.Load(image);
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            _output.WriteLine($"Plan.Load allocated {allocated} bytes for a {image.Length}-byte training plan");
            Assert.InRange(allocated, 1, 256);
            GC.KeepAlive(plan);
        }
    }

    // Each forgery changes one thing in the tiny full-training plan; "#" in a fragment is the forged op's index.
    public static TheoryData<string, string[]> Forgeries => new()
    {
        { "unknown phase", ["op #", "unknown phase 5"] },
        { "backward phase before the loss", ["op #", "is one of the", "inference ops, but its phase is Backward"] },
        { "save phase after the loss", ["op #", "comes after the", "inference ops, but its phase is Save"] },
        { "forward phase after the loss", ["op #", "comes after the", "inference ops, but its phase is Forward"] },
        { "init phase after the loss", ["op #", "inference ops, but its phase is Init"] },
        { "forward op count cuts the init ops", ["op 4 (InitParams)", "comes after the 4 inference ops, but its phase is Init"] },
        { "InitParams in phase Save", ["op # (InitParams)", "its phase is Save, but InitParams ops run in phase Init"] },
        { "Conv2D in phase Init", ["op # (Conv2D", "its phase is Init, but Conv2D ops run in phase Forward"] },
        { "update in phase Backward", ["op # (FullyConnectedUpdate)", "its phase is Backward, but FullyConnectedUpdate ops run in phase Update"] },
        { "backward in phase Update", ["op # (DepthwiseBackwardInput", "its phase is Update, but DepthwiseBackwardInput ops run in phase Backward"] },

        { "unknown flag", ["op # (Conv2D", "flags 19 set bits that Conv2D ops do not use (they allow WeightsInParams, BiasInParams, WeightsSliced)"] },
        { "accumulate on a mask gradient", ["op # (MaskGradient", "flags 4 set bits that MaskGradient ops do not use (they allow None)"] },
        { "bias flag on a backward op", ["op # (Conv2DBackwardInput", "flags 3 set bits"] },
        { "flags on InitParams", ["op # (InitParams)", "flags 1 set bits that InitParams ops do not use"] },

        { "params region too large", ["its params region is 268435457 bytes"] },
        { "state region too large", ["its state region is 268435457 bytes"] },
        { "forward weights past params", ["op # (Conv2D", "weights (216 bytes at params offset", "-byte params region"] },
        { "forward bias misaligned in params", ["op # (Conv2D", "bias at params offset", "not 4-byte aligned"] },
        { "forward flag without weights", ["op # (Conv2D", "its flags place its weights in the params region, but it has no weights"] },
        { "forward weights in Constants past the end", ["op # (FullyConnected", "weights (80 bytes at constant offset", "-byte Constants section"] },

        { "init negative length", ["op # (InitParams)", "copy length (arg 0) is -1, negative"] },
        { "init past params", ["op # (InitParams)", "params offset (arg 1)", "-byte params region"] },
        { "init source past Constants", ["op # (InitParams)", "weights (216 bytes at constant offset"] },
        { "init with a tensor", ["op # (InitParams", "touches no tensors, but its output is tensor 1"] },
        { "init with a bias", ["op # (InitParams)", "takes no bias, but its record names one at offset 0"] },

        { "mask not bits", ["op # (Conv2D", "mask tensor", "is float32, not bits"] },
        { "mask count", ["op # (Conv2D", "holds 32 bits for 512 outputs"] },
        { "mask mode unknown", ["op # (Conv2D", "mask mode 3 is not 1 (ReLU) or 2 (ReLU6)"] },
        { "mask mode without a mask", ["op # (Conv2D", "but no mask tensor"] },
        { "mask over the conv input", ["op # (Conv2D", "overlaps tensor 0"] },

        { "loss objective", ["op # (LossGradient", "objective (arg 0) is 2"] },
        { "entropy without a filter threshold", ["op # (LossGradient", "entropy filter threshold (arg 1) 0 is not a positive number"] },
        { "loss logits count", ["op # (LossGradient", "holds 8 logits, but the model has 10 classes"] },
        { "loss output shape", ["op # (LossGradient", "output shape (5,2,1) is not (10,1,1)"] },
        { "loss output int8", ["op # (LossGradient", "output tensor", "is int8, not float32"] },
        { "loss without output", ["op # (LossGradient)", "output is tensor 65535"] },

        { "mask gradient counts", ["op # (MaskGradient", "mask of 512 bits, dy of 128 and output of 128 values are not all equal"] },
        { "mask gradient partly in place", ["op # (MaskGradient", "overlaps input 1", "may write over an input, and exactly"] },
        { "mask gradient over its mask", ["op # (MaskGradient", "overlaps input 0"] },
        { "mask gradient dy int8", ["op # (MaskGradient", "input 1 tensor", "is int8, not float32"] },
        { "mask gradient mask float", ["op # (MaskGradient", "input 0 tensor", "is float32, not bits"] },

        { "gradient add counts", ["op # (GradientAdd", "counts 128 + 32 -> 128 are not all equal"] },
        { "gradient add partly in place", ["op # (GradientAdd", "overlaps input 0"] },

        { "backward stride", ["op # (Conv2DBackwardInput", "dy (8,4,4) does not follow from dx (8,4,4) with kernel 1, stride 2, padding 0"] },
        { "backward kernel", ["op # (Conv2DBackwardInput", "kernel 16 is outside 1..15"] },
        { "backward groups", ["op # (Conv2DBackwardInput", "groups 3 does not divide dx channels 8 and dy channels 8"] },
        { "backward without weights", ["op # (Conv2DBackwardInput", "has no weights"] },
        { "backward weights past params", ["op # (Conv2DBackwardInput", "weights (64 bytes at params offset", "-byte params region"] },
        { "backward without scales", ["op # (Conv2DBackwardInput", "has no weight scales"] },
        { "backward scales past Constants", ["op # (Conv2DBackwardInput", "weight scales (32 bytes at constant offset"] },
        { "backward zero scale", ["op # (Conv2DBackwardInput", "weight scale of channel 3 is 0, not a finite positive number"] },
        { "backward NaN scale", ["op # (Conv2DBackwardInput", "weight scale of channel 0 is NaN"] },
        { "backward with shifts", ["op # (Conv2DBackwardInput", "takes no shifts"] },
        { "backward with a bias", ["op # (Conv2DBackwardInput", "takes no bias"] },
        { "backward dy int8", ["op # (Conv2DBackwardInput", "input 0 tensor", "is int8, not float32"] },
        { "backward dx over dy", ["op # (Conv2DBackwardInput", "overlaps input 0"] },
        { "backward takes one input", ["op # (Conv2DBackwardInput", "takes one input, but names tensor"] },
        { "depthwise backward channels", ["op # (DepthwiseBackwardInput", "depthwise dy has 10 channels but dx has 8"] },
        { "depthwise backward weights past params", ["op # (DepthwiseBackwardInput", "weights (72 bytes at params offset"] },
        { "fc backward dy shape", ["op # (FullyConnectedBackwardInput", "dy shape (8,2,2) is not (OUT,1,1)"] },
        { "fc backward scales", ["op # (FullyConnectedBackwardInput", "weight scale of channel 9 is -1"] },

        { "update with an output", ["op # (Conv2DUpdate", "writes parameters in place, not a tensor, but names tensor"] },
        { "update trainChannels", ["op # (Conv2DUpdate)", "trainChannels (arg 4) is 9, outside 0..8"] },
        { "depthwise update trainChannels", ["op # (DepthwiseUpdate)", "trainChannels (arg 3) is 9, outside 0..8"] },
        { "fc update trainChannels", ["op # (FullyConnectedUpdate)", "trainChannels (arg 0) is -1, outside 0..8"] },
        { "update qas", ["op # (Conv2DUpdate)", "qas (arg 5) is 2, not 0 or 1"] },
        { "depthwise update qas", ["op # (DepthwiseUpdate)", "qas (arg 4) is -1, not 0 or 1"] },
        { "update state past the region", ["op # (Conv2DUpdate)", "state offset (arg 6)", "for 72 momentum floats", "-byte state region"] },
        { "update state misaligned", ["op # (Conv2DUpdate)", "state offset (arg 6)", "4-byte aligned"] },
        { "update state -2", ["op # (Conv2DUpdate)", "state offset (arg 6) -2"] },
        { "fc update state without room", ["op # (FullyConnectedUpdate)", "state offset (arg 2)", "for 90 momentum floats"] },
        { "update weights in Constants", ["op # (Conv2DUpdate)", "updates its weights in place, so they must be in the params region (flag WeightsInParams)"] },
        { "update bias in Constants", ["op # (DepthwiseUpdate)", "updates its bias in place, so it must be in the params region (flag BiasInParams)"] },
        { "update weights and bias overlap", ["op # (Conv2DUpdate)", "weights at params bytes [352, 416) overlap bias at [352, 384)"] },
        { "update weights without trainChannels", ["op # (Conv2DUpdate)", "names weights to train, but trainChannels (arg 4) is 0"] },
        { "update trainChannels without weights", ["op # (Conv2DUpdate)", "trains 8 channels (arg 4), but has no weights"] },
        { "update weights past params", ["op # (DepthwiseUpdate)", "weights (72 bytes at params offset"] },
        { "update bias past params", ["op # (FullyConnectedUpdate)", "bias (40 bytes at params offset"] },
        { "update without scales", ["op # (FullyConnectedUpdate)", "has no weight scales"] },
        { "update with shifts", ["op # (DepthwiseUpdate)", "takes no shifts"] },
        { "update dy int8", ["op # (Conv2DUpdate)", "input 1 tensor", "is int8, not float32"] },
        { "update x float", ["op # (Conv2DUpdate)", "input 0 tensor", "is float32, not int8"] },
        { "update without dy", ["op # (Conv2DUpdate)", "input 1 is tensor 65535"] },
        { "update dy shape", ["op # (Conv2DUpdate)", "dy (8,4,4) does not follow from x (8,4,4) with kernel 1, stride 2, padding 0"] },
        { "depthwise update channels", ["op # (DepthwiseUpdate)", "depthwise x has 8 channels but dy has 10"] },
        { "fc update dy shape", ["op # (FullyConnectedUpdate)", "dy shape (8,2,2) is not (OUT,1,1)"] },

        { "avgpool backward stride", ["op # (AvgPoolBackward", "dy (8,2,2) does not follow from dx (8,4,4) with kernel 2, stride 1, padding 0"] },
        { "avgpool backward kernel", ["op # (AvgPoolBackward", "kernel 0 is outside 1..15"] },
        { "avgpool backward channels", ["op # (AvgPoolBackward", "dy has 10 channels but dx has 8"] },
        { "avgpool backward with constants", ["op # (AvgPoolBackward", "takes no constants"] },
        { "gap backward dy shape", ["op # (GlobalAvgPoolBackward", "dy shape (8,2,2) is not (8,1,1)"] },
        { "gap backward dx int8", ["op # (GlobalAvgPoolBackward", "output tensor", "is int8, not float32"] },
    };

    [Theory]
    [InlineData("weights", "trains only a bias, but names weights")]
    [InlineData("no bias", "has no bias to train")]
    [InlineData("input scale", "input scale (arg 0)")]
    [InlineData("qas", "qas (arg 1) is 7")]
    [InlineData("state", "state offset (arg 2)")]
    [InlineData("int8 dy", "is int8, not float32")]
    public void ForgedBiasUpdate_IsInvalid_NamingTheField(string forgery, string expected)
    {
        byte[] image = TrainingPlans.TinyBiasOnly();
        int j = Find(image, OpKind.BiasUpdate);
        switch (forgery)
        {
            case "weights": Set32(image, j, PlanFormat.OpWeights, 0); break;
            case "no bias": Set32(image, j, PlanFormat.OpBias, PlanFormat.NoConstant); break;
            case "input scale": Arg(image, j, 0, BitConverter.SingleToInt32Bits(float.NaN)); break;
            case "qas": Arg(image, j, 1, 7); break;
            case "state": Arg(image, j, 2, 1 << 20); break;
            case "int8 dy": Put16(image, Op(image, j, PlanFormat.OpInput0), (ushort)0); break;
        }
        Seal(image);
        PlanException e = Assert.Throws<PlanException>(() => Plan.Load(image, Source));
        Assert.Contains($"op {j} (BiasUpdate", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Theory]
    [MemberData(nameof(Forgeries))]
    public void ForgedTrainingPlan_IsInvalid_NamingTheOpAndTheField(string forgery, string[] fragments)
    {
        byte[] image = TrainingPlans.Tiny();
        int j = Forge(image, forgery);
        Seal(image);
        PlanException e = Assert.Throws<PlanException>(() => Plan.Load(image, Source));
        _output.WriteLine(e.Message);
        Assert.Equal(PlanError.Invalid, e.Error);
        Assert.StartsWith(Source + ": invalid plan: ", e.Message);
        Assert.EndsWith("; recompile it with this version of TinyTrain", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        foreach (string fragment in fragments) Assert.Contains(fragment.Replace("#", j.ToString()), e.Message);
    }

    // Returns the index of the op it forged (-1 when it changed something else).
    private static int Forge(byte[] b, string forgery)
    {
        Section(b, SectionKind.Constants, out int constantsLength);
        int constants = Section(b, SectionKind.Constants, out _);
        int forwardOps = Model16(b, PlanFormat.ModelForwardOps);
        uint paramBytes = U32(b, Model(b, PlanFormat.ModelSramParamBytes)), stateBytes = U32(b, Model(b, PlanFormat.ModelStateBytes));
        int init = Find(b, OpKind.InitParams), conv = Find(b, OpKind.Conv2D), fc = Find(b, OpKind.FullyConnected);
        int loss = Find(b, OpKind.LossGradient), maskGrad = Find(b, OpKind.MaskGradient), add = Find(b, OpKind.GradientAdd);
        int convBack = Find(b, OpKind.Conv2DBackwardInput), dwBack = Find(b, OpKind.DepthwiseBackwardInput), fcBack = Find(b, OpKind.FullyConnectedBackwardInput);
        int convUpdate = Find(b, OpKind.Conv2DUpdate), dwUpdate = Find(b, OpKind.DepthwiseUpdate), fcUpdate = Find(b, OpKind.FullyConnectedUpdate);
        int poolBack = Find(b, OpKind.AvgPoolBackward), gapBack = Find(b, OpKind.GlobalAvgPoolBackward);
        int logits = Tensor16(b, loss, PlanFormat.OpInput0), lossGrad = Tensor16(b, loss, PlanFormat.OpOutput);
        int gap = Tensor16(b, fc, PlanFormat.OpInput0), poolGrad = Tensor16(b, poolBack, PlanFormat.OpInput0);
        switch (forgery)
        {
            case "unknown phase": return Phase(b, init, (OpPhase)5);
            case "backward phase before the loss": return Phase(b, conv, OpPhase.Backward);
            case "save phase after the loss": return Phase(b, maskGrad, OpPhase.Save);
            case "forward phase after the loss": return Phase(b, loss, OpPhase.Forward);
            case "init phase after the loss": return Phase(b, add, OpPhase.Init);
            case "forward op count cuts the init ops": Put16(b, Model(b, PlanFormat.ModelForwardOps), 4); return 4;
            case "InitParams in phase Save": return Phase(b, init + 1, OpPhase.Save);
            case "Conv2D in phase Init": return Phase(b, conv, OpPhase.Init);
            case "update in phase Backward": return Phase(b, fcUpdate, OpPhase.Backward);
            case "backward in phase Update": return Phase(b, dwBack, OpPhase.Update);

            case "unknown flag": return Flags(b, conv, Flags(b, conv) | (OpFlags)16);
            case "accumulate on a mask gradient": return Flags(b, maskGrad, OpFlags.Accumulate);
            case "bias flag on a backward op": return Flags(b, convBack, Flags(b, convBack) | OpFlags.BiasInParams);
            case "flags on InitParams": return Flags(b, init, OpFlags.WeightsInParams);

            case "params region too large": Put32(b, Model(b, PlanFormat.ModelSramParamBytes), PlanFormat.MaxArenaBytes + 1); return -1;
            case "state region too large": Put32(b, Model(b, PlanFormat.ModelStateBytes), PlanFormat.MaxArenaBytes + 1); return -1;
            case "forward weights past params": return Set32(b, conv, PlanFormat.OpWeights, paramBytes - 10);
            case "forward bias misaligned in params": return Set32(b, conv, PlanFormat.OpBias, U32(b, Op(b, conv, PlanFormat.OpBias)) + 2);
            case "forward flag without weights": return Set32(b, conv, PlanFormat.OpWeights, PlanFormat.NoConstant);
            case "forward weights in Constants past the end":
                Flags(b, fc, OpFlags.BiasInParams);
                return Set32(b, fc, PlanFormat.OpWeights, (uint)constantsLength - 8);

            case "init negative length": return Arg(b, init, 0, -1);
            case "init past params": return Arg(b, init, 1, (int)paramBytes - 4);
            case "init source past Constants": return Set32(b, init, PlanFormat.OpWeights, (uint)constantsLength - 4);
            case "init with a tensor": Put16(b, Op(b, init, PlanFormat.OpOutput), 1); return init;
            case "init with a bias": return Set32(b, init, PlanFormat.OpBias, 0);

            case "mask not bits": Put16(b, Op(b, conv, PlanFormat.OpScratch), lossGrad); return conv;
            case "mask count":
            {
                int m = Tensor16(b, conv, PlanFormat.OpScratch);
                Put32(b, Tensor(b, m, PlanFormat.TensorC), 4);
                Put32(b, Tensor(b, m, PlanFormat.TensorH), 8);
                Put32(b, Tensor(b, m, PlanFormat.TensorW), 1);
                Put32(b, Tensor(b, m, PlanFormat.TensorByteLength), 4);
                return conv;
            }
            case "mask mode unknown": return Arg(b, conv, 6, 3);
            case "mask mode without a mask": Put16(b, Op(b, conv, PlanFormat.OpScratch), PlanFormat.NoTensor); return conv;
            case "mask over the conv input":
                Put32(b, Tensor(b, Tensor16(b, conv, PlanFormat.OpScratch), PlanFormat.TensorArenaOffset), Offset(b, Tensor16(b, conv, PlanFormat.OpInput0)));
                return conv;

            case "loss objective": return Arg(b, loss, 0, 2);
            case "entropy without a filter threshold": return Arg(b, loss, 0, 1);
            case "loss logits count": Put16(b, Op(b, loss, PlanFormat.OpInput0), gap); return loss;
            case "loss output shape":
                Put32(b, Tensor(b, lossGrad, PlanFormat.TensorC), 5);
                Put32(b, Tensor(b, lossGrad, PlanFormat.TensorH), 2);
                return loss;
            case "loss output int8": Put16(b, Op(b, loss, PlanFormat.OpOutput), gap); return loss;
            case "loss without output": Put16(b, Op(b, loss, PlanFormat.OpOutput), PlanFormat.NoTensor); return loss;

            case "mask gradient counts":
                // The second MaskGradient (the first conv's, 512 values) gets the depthwise output's mask (128).
                Put16(b, Op(b, Find(b, OpKind.MaskGradient, maskGrad), PlanFormat.OpInput0), Tensor16(b, maskGrad, PlanFormat.OpInput0));
                Put16(b, Op(b, maskGrad, PlanFormat.OpInput0), Tensor16(b, conv, PlanFormat.OpScratch));
                return maskGrad;
            case "mask gradient partly in place":
            {
                int dz = Tensor16(b, maskGrad, PlanFormat.OpOutput);
                Put32(b, Tensor(b, dz, PlanFormat.TensorArenaOffset), Offset(b, Tensor16(b, maskGrad, PlanFormat.OpInput1)) + 4);
                return maskGrad;
            }
            case "mask gradient over its mask":
                Put32(b, Tensor(b, Tensor16(b, maskGrad, PlanFormat.OpInput0), PlanFormat.TensorArenaOffset), Offset(b, Tensor16(b, maskGrad, PlanFormat.OpOutput)) + 16);
                return maskGrad;
            case "mask gradient dy int8": Put16(b, Op(b, maskGrad, PlanFormat.OpInput1), Tensor16(b, conv, PlanFormat.OpOutput)); return maskGrad;
            case "mask gradient mask float": Put16(b, Op(b, maskGrad, PlanFormat.OpInput0), lossGrad); return maskGrad;

            case "gradient add counts": Put16(b, Op(b, add, PlanFormat.OpInput1), poolGrad); return add;
            case "gradient add partly in place":
                Put32(b, Tensor(b, Tensor16(b, add, PlanFormat.OpOutput), PlanFormat.TensorArenaOffset), Offset(b, Tensor16(b, add, PlanFormat.OpInput0)) + 8);
                return add;

            case "backward stride": return Arg(b, convBack, 1, 2);
            case "backward kernel": return Arg(b, convBack, 0, 16);
            case "backward groups": return Arg(b, convBack, 3, 3);
            case "backward without weights":
                Flags(b, convBack, OpFlags.None);
                return Set32(b, convBack, PlanFormat.OpWeights, PlanFormat.NoConstant);
            case "backward weights past params": return Set32(b, convBack, PlanFormat.OpWeights, paramBytes - 63);
            case "backward without scales": return Set32(b, convBack, PlanFormat.OpMultiplier, PlanFormat.NoConstant);
            case "backward scales past Constants": return Set32(b, convBack, PlanFormat.OpMultiplier, (uint)constantsLength - 16);
            case "backward zero scale": Put32(b, Scale(b, constants, convBack, 3), 0); return convBack;
            case "backward NaN scale": Put32(b, Scale(b, constants, convBack, 0), BitConverter.SingleToInt32Bits(float.NaN)); return convBack;
            case "backward with shifts": return Set32(b, convBack, PlanFormat.OpShift, 0);
            case "backward with a bias": return Set32(b, convBack, PlanFormat.OpBias, 0);
            case "backward dy int8": Put16(b, Op(b, convBack, PlanFormat.OpInput0), Tensor16(b, convUpdate, PlanFormat.OpInput0)); return convBack;
            case "backward dx over dy":
                Put32(b, Tensor(b, Tensor16(b, convBack, PlanFormat.OpOutput), PlanFormat.TensorArenaOffset), Offset(b, Tensor16(b, convBack, PlanFormat.OpInput0)));
                return convBack;
            case "backward takes one input": Put16(b, Op(b, convBack, PlanFormat.OpInput1), lossGrad); return convBack;
            case "depthwise backward channels": Put16(b, Op(b, dwBack, PlanFormat.OpInput0), lossGrad); return dwBack;
            case "depthwise backward weights past params": return Set32(b, dwBack, PlanFormat.OpWeights, paramBytes - 71);
            case "fc backward dy shape": Put16(b, Op(b, fcBack, PlanFormat.OpInput0), poolGrad); return fcBack;
            case "fc backward scales": Put32(b, Scale(b, constants, fcBack, 9), BitConverter.SingleToInt32Bits(-1f)); return fcBack;

            case "update with an output": Put16(b, Op(b, convUpdate, PlanFormat.OpOutput), lossGrad); return convUpdate;
            case "update trainChannels": return Arg(b, convUpdate, 4, 9);
            case "depthwise update trainChannels": return Arg(b, dwUpdate, 3, 9);
            case "fc update trainChannels": return Arg(b, fcUpdate, 0, -1);
            case "update qas": return Arg(b, convUpdate, 5, 2);
            case "depthwise update qas": return Arg(b, dwUpdate, 4, -1);
            case "update state past the region": return Arg(b, convUpdate, 6, (int)stateBytes - 4);
            case "update state misaligned": return Arg(b, convUpdate, 6, OpArg32(b, convUpdate, 6) + 2);
            case "update state -2": return Arg(b, convUpdate, 6, -2);
            case "fc update state without room": return Arg(b, fcUpdate, 2, (int)stateBytes - 4 * 89);
            case "update weights in Constants": return Flags(b, convUpdate, OpFlags.BiasInParams);
            case "update bias in Constants": return Flags(b, dwUpdate, OpFlags.WeightsInParams);
            case "update weights and bias overlap": return Set32(b, convUpdate, PlanFormat.OpBias, U32(b, Op(b, convUpdate, PlanFormat.OpWeights)));
            case "update weights without trainChannels": return Arg(b, convUpdate, 4, 0);
            case "update trainChannels without weights":
                Flags(b, convUpdate, OpFlags.BiasInParams);
                return Set32(b, convUpdate, PlanFormat.OpWeights, PlanFormat.NoConstant);
            case "update weights past params": return Set32(b, dwUpdate, PlanFormat.OpWeights, paramBytes - 68);
            case "update bias past params": return Set32(b, fcUpdate, PlanFormat.OpBias, paramBytes - 36);
            case "update without scales": return Set32(b, fcUpdate, PlanFormat.OpMultiplier, PlanFormat.NoConstant);
            case "update with shifts": return Set32(b, dwUpdate, PlanFormat.OpShift, 0);
            case "update dy int8": Put16(b, Op(b, convUpdate, PlanFormat.OpInput1), Tensor16(b, convUpdate, PlanFormat.OpInput0)); return convUpdate;
            case "update x float": Put16(b, Op(b, convUpdate, PlanFormat.OpInput0), Tensor16(b, convUpdate, PlanFormat.OpInput1)); return convUpdate;
            case "update without dy": Put16(b, Op(b, convUpdate, PlanFormat.OpInput1), PlanFormat.NoTensor); return convUpdate;
            case "update dy shape": return Arg(b, convUpdate, 1, 2);
            case "depthwise update channels": Put16(b, Op(b, dwUpdate, PlanFormat.OpInput1), lossGrad); return dwUpdate;
            case "fc update dy shape": Put16(b, Op(b, fcUpdate, PlanFormat.OpInput1), poolGrad); return fcUpdate;

            case "avgpool backward stride": return Arg(b, poolBack, 1, 1);
            case "avgpool backward kernel": return Arg(b, poolBack, 0, 0);
            case "avgpool backward channels": Put16(b, Op(b, poolBack, PlanFormat.OpInput0), lossGrad); return poolBack;
            case "avgpool backward with constants": return Set32(b, poolBack, PlanFormat.OpWeights, 0);
            case "gap backward dy shape": Put16(b, Op(b, gapBack, PlanFormat.OpInput0), poolGrad); return gapBack;
            case "gap backward dx int8": Put16(b, Op(b, gapBack, PlanFormat.OpOutput), logits); return gapBack;
            default: throw new ArgumentException(forgery);
        }
    }

    private static int Find(byte[] b, OpKind kind, int after = -1) => TrainingPlans.FindOp(b, kind, after);

    private static int Model16(byte[] b, int field) => BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(Model(b, field)));

    private static int Tensor16(byte[] b, int op, int field) => BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(Op(b, op, field)));

    private static int Offset(byte[] b, int tensor) => (int)U32(b, Tensor(b, tensor, PlanFormat.TensorArenaOffset));

    private static int OpArg32(byte[] b, int op, int arg) => (int)U32(b, OpArg(b, op, arg));

    private static int Scale(byte[] b, int constants, int op, int channel) => constants + (int)U32(b, Op(b, op, PlanFormat.OpMultiplier)) + 4 * channel;

    private static int Phase(byte[] b, int op, OpPhase phase)
    {
        b[Op(b, op, PlanFormat.OpPhase)] = (byte)phase;
        return op;
    }

    private static OpFlags Flags(byte[] b, int op) => (OpFlags)b[Op(b, op, PlanFormat.OpFlags)];

    private static int Flags(byte[] b, int op, OpFlags flags)
    {
        b[Op(b, op, PlanFormat.OpFlags)] = (byte)flags;
        return op;
    }

    private static int Set32(byte[] b, int op, int field, uint value)
    {
        Put32(b, Op(b, op, field), value);
        return op;
    }

    private static int Arg(byte[] b, int op, int arg, int value)
    {
        Put32(b, OpArg(b, op, arg), value);
        return op;
    }
}
