namespace TinyTrain.Runtime.Adaptation;

using TinyTrain.Runtime.Execution;
using TinyTrain.Runtime.Ood;
using TinyTrain.Runtime.Plans;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

/// <summary>
/// Test-time adaptation on a stream, with the guards that keep it from running away: a sample with NaN or infinity
/// is refused; a sample the OOD threshold rejects, or a constant image, is predicted but not learned from; the
/// plan's own entropy filter skips unreliable samples; updates are clipped by the plan; and when the OOD rate over
/// the recent window stays above <see cref="ResetRate"/>, the learned parameters are reset to the source model's.
/// Bind (the constructor) allocates; <see cref="Step"/> allocates nothing. An adapted sample costs two forward
/// passes: one to score it, one inside the adaptation step (the arena reuses the input's bytes).
/// </summary>
public sealed class TestTimeAdapter
{
    private readonly Executor _executor;
    private readonly float _oodThreshold;
    private readonly int _window;
    private readonly TensorInfo _logits;
    private float _oodRate;
    private int _sinceReset;

    /// <param name="oodThreshold">Maximum softmax probability below which a sample is out of distribution (calibrated
    /// at 95 % true-positive rate on in-distribution data); 0 adapts on every finite sample.</param>
    /// <param name="window">Samples the OOD rate is averaged over (an exponential average with this time constant).</param>
    public TestTimeAdapter(Executor executor, float oodThreshold, int window = 100, float resetRate = 0.8f)
    {
        if (!executor.CanTrain)
            throw new TinyTrainException($"{executor.Plan.Source}: this plan has no adaptation ops; compile it with --update tta:norm or tta:tent");
        if (!(oodThreshold >= 0 && oodThreshold <= 1))
            throw new TinyTrainException($"OOD threshold {oodThreshold} is not a maximum softmax probability in [0, 1]");
        if (window < 1)
            throw new TinyTrainException($"OOD window {window} must be at least 1 sample");
        if (!(resetRate > 0 && resetRate <= 1))
            throw new TinyTrainException($"reset rate {resetRate} must lie in (0, 1]");
        _executor = executor;
        _oodThreshold = oodThreshold;
        _window = window;
        ResetRate = resetRate;
        PlanImage plan = executor.Plan;
        _logits = plan.Tensor(plan.OutputTensor);
    }

    public Executor Executor => _executor;
    /// <summary>OOD rate (averaged over the window) above which the parameters go back to the source model's.</summary>
    public float ResetRate { get; }
    /// <summary>The OOD rate now, averaged over about the last window of samples.</summary>
    public float OodRate => _oodRate;

    // What the last Step did.
    public bool LastOutOfDistribution { get; private set; }
    public bool LastAdapted { get; private set; }

    // Counts since bind.
    public int Samples { get; private set; }
    public int Refused { get; private set; }
    public int OutOfDistribution { get; private set; }
    public int Adapted { get; private set; }
    public int Resets { get; private set; }

    /// <summary>
    /// Predicts the sample (float values in the model's input layout) and adapts on it when it is trusted.
    /// Returns the predicted class, or -1 for a sample with NaN or infinity (refused: nothing runs).
    /// </summary>
    public int Step(float[] values, int offset)
    {
        Samples++;
        LastAdapted = false;
        if (!_executor.TrySetInput(values, offset))
        {
            Refused++;
            LastOutOfDistribution = true;
            Track(true);
            return -1;
        }
        bool constant = IsConstantInput();
        _executor.Invoke();
        int prediction = _executor.ArgMax();
        float msp = OodScores.MaxSoftmax(_executor.Arena, _logits.ArenaOffset, _logits.ElementCount, _logits.Scale, _logits.ZeroPoint);
        bool ood = !(msp >= _oodThreshold);
        LastOutOfDistribution = ood;
        if (ood) OutOfDistribution++;
        Track(ood);
        if (ood || constant || _oodRate > ResetRate) return prediction;

        _executor.TrySetInput(values, offset);
        _executor.AdaptStep();
        LastAdapted = _executor.LastStepLearned;
        Adapted++;
        return prediction;
    }

    /// <summary>Back to the source model's parameters and statistics (also what the OOD guard does).</summary>
    public void Reset()
    {
        _executor.Reset();
        _sinceReset = 0;
    }

    private void Track(bool ood)
    {
        _oodRate += ((ood ? 1f : 0f) - _oodRate) / _window;
        _sinceReset++;
        // Once per window at most: a long OOD stretch resets once, then waits to see whether it persists.
        if (_oodRate > ResetRate && _sinceReset >= _window)
        {
            Reset();
            Resets++;
        }
    }

    // A constant image (a covered lens, a dead sensor) carries no information to adapt on.
    private bool IsConstantInput() => _executor.InputIsConstant();
}
