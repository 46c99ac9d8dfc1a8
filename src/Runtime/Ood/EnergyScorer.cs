namespace TinyTrain.Runtime.Ood;

using TinyTrain.Runtime.Execution;
using TinyTrain.Runtime.Plans;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

/// <summary>Negative free energy T log sum e^(z/T) of the plan's int8 logits (<see cref="OodScores.Energy"/>); no state.</summary>
public sealed class EnergyScorer : IOodScorer
{
    private readonly byte[] _image;
    private readonly int _offset, _count, _zeroPoint;
    private readonly float _scale, _temperature;

    public EnergyScorer(PlanImage plan, float temperature = 1f)
    {
        if (!(temperature > 0 && temperature <= float.MaxValue))
            throw new TinyTrainException($"energy score: temperature is {temperature}; it must be positive and finite (1 is the usual choice).");
        TensorInfo logits = plan.Tensor(plan.OutputTensor);
        _image = plan.Image;
        _offset = logits.ArenaOffset;
        _count = logits.ElementCount;
        _scale = logits.Scale;
        _zeroPoint = logits.ZeroPoint;
        _temperature = temperature;
    }

    public string Name => "energy";
    public long SramBytes => 0;
    public float Temperature => _temperature;

    public float Score(Executor executor)
    {
        OodBinding.CheckSamePlan(executor, _image, Name);
        return OodScores.Energy(executor.Arena, _offset, _count, _scale, _zeroPoint, _temperature);
    }
}
