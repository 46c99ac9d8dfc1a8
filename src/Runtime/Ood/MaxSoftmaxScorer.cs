namespace TinyTrain.Runtime.Ood;

using TinyTrain.Runtime.Execution;
using TinyTrain.Runtime.Plans;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

/// <summary>Maximum softmax probability of the plan's int8 logits (<see cref="OodScores.MaxSoftmax"/>); no state.</summary>
public sealed class MaxSoftmaxScorer : IOodScorer
{
    private readonly byte[] _image;
    private readonly int _offset, _count, _zeroPoint;
    private readonly float _scale;

    public MaxSoftmaxScorer(PlanImage plan)
    {
        TensorInfo logits = plan.Tensor(plan.OutputTensor);
        _image = plan.Image;
        _offset = logits.ArenaOffset;
        _count = logits.ElementCount;
        _scale = logits.Scale;
        _zeroPoint = logits.ZeroPoint;
    }

    public string Name => "msp";
    public long SramBytes => 0;

    public float Score(Executor executor)
    {
        OodBinding.CheckSamePlan(executor, _image, Name);
        return OodScores.MaxSoftmax(executor.Arena, _offset, _count, _scale, _zeroPoint);
    }
}
