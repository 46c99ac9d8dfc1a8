namespace TinyTrain.Boards.RaspberryPi.Learning;

using TinyTrain.Compiler.Data.Imu;
using TinyTrain.Runtime.Execution;
using TinyTrain.Runtime.Ood;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

/// <summary>What the host did with one window.</summary>
public readonly record struct WindowResult(int Predicted, float OodScore, bool OutOfDistribution);

/// <summary>
/// The learning part of the host, free of I/O: one window in, a gesture and an out-of-distribution flag out; a
/// label for the previous window in, one int8 training step of the plan's trainable set (the runtime's own
/// step: biases of the last convs and the classifier for a bias:K plan). Label-free: the optional
/// <see cref="GravityAlignment"/> corrects the mounting before the model sees the window, and a plan compiled with
/// --update tta:norm or tta:tent takes one runtime adaptation step (Executor.AdaptStep) on every trusted window.
/// </summary>
public sealed class GestureLearner
{
    private readonly Executor _executor;
    private readonly EnergyScorer _scorer;
    private readonly byte[] _bytes = new byte[ImuGestures.Channels * ImuGestures.Window];
    private readonly float[] _input;
    private readonly float[] _lastInput;
    private bool _lastTrusted;

    public GestureLearner(PlanImage plan, float learningRate, uint seed, float oodThreshold, GravityAlignment? alignment, bool learnFromLabels,
        bool adaptWithoutLabels = false)
    {
        ArgumentNullException.ThrowIfNull(plan);
        _executor = new Executor(plan) { LearningRate = learningRate };
        if (_executor.InputLength != ImuGestures.Channels * ImuGestures.Window)
            throw new TinyTrainException(
                $"{plan.Source}: the model takes {_executor.InputLength} inputs; the host feeds IMU windows of {ImuGestures.Channels}x{ImuGestures.Window}: compile a model for imu-gestures (imu-cnn)");
        if (plan.NumClasses != ImuGestures.ClassNames.Length)
            throw new TinyTrainException($"{plan.Source}: the model has {plan.NumClasses} classes; imu-gestures has {ImuGestures.ClassNames.Length}");
        if (learnFromLabels && _executor.LearnsWithoutLabels)
            throw new TinyTrainException($"{plan.Source}: the plan adapts without labels (compiled with --update tta:...); run with --adapt tta or tta+gravity, or compile with --update bias:2 to learn from the button");
        if (learnFromLabels && !_executor.CanTrain)
            throw new TinyTrainException($"{plan.Source}: the plan cannot train; compile it with --update bias:2 (or run with --adapt none)");
        if (adaptWithoutLabels && !_executor.LearnsWithoutLabels)
            throw new TinyTrainException($"{plan.Source}: the plan has no test-time adaptation ops; compile it with --update tta:norm (or tta:tent) for --adapt tta");
        _executor.Seed(seed);
        _scorer = new EnergyScorer(plan);
        _input = new float[_executor.InputLength];
        _lastInput = new float[_executor.InputLength];
        OodThreshold = oodThreshold;
        Alignment = alignment;
        LearnFromLabels = learnFromLabels;
        AdaptWithoutLabels = adaptWithoutLabels;
    }

    public Executor Executor => _executor;
    public GravityAlignment? Alignment { get; }
    public bool LearnFromLabels { get; }
    public bool AdaptWithoutLabels { get; }

    /// <summary>Label-free adaptation steps taken since start (tta plans).</summary>
    public int Adaptations { get; private set; }
    public float OodThreshold { get; set; }

    /// <summary>Training steps taken since start.</summary>
    public int Updates { get; private set; }

    /// <summary>
    /// Classifies a window (channel-major 6 x 64 readings in g and deg/s; aligned in place when alignment is on).
    /// An untrusted window (the sensor failed or stuck) is classified but neither observed nor learned from later.
    /// </summary>
    public WindowResult Classify(float[] window, bool trusted)
    {
        if (Alignment is not null)
        {
            if (trusted) Alignment.Observe(window);
            Alignment.Apply(window);
        }
        ImuGestures.EncodeWindow(window, 0, _bytes, 0);
        for (int i = 0; i < _input.Length; i++) _input[i] = _bytes[i] * (1f / 255f);
        if (!_executor.TrySetInput(_input, 0))
        {
            _lastTrusted = false;
            return new WindowResult(-1, float.NaN, true);
        }
        _executor.Invoke();
        int predicted = _executor.ArgMax();
        float score = _scorer.Score(_executor);
        Array.Copy(_input, _lastInput, _input.Length);
        _lastTrusted = trusted;
        if (AdaptWithoutLabels && trusted)
        {
            // A second forward pass inside the step (the first one's arena is the score's); it predicts the same class.
            _executor.TrySetInput(_input, 0);
            _executor.AdaptStep();
            Adaptations++;
        }
        return new WindowResult(predicted, score, !(score >= OodThreshold));
    }

    /// <summary>One training step on the last window with its label. False (nothing changed) when that window was not trusted or learning is off.</summary>
    public bool Learn(int label)
    {
        if (!LearnFromLabels || !_lastTrusted || (uint)label >= (uint)ImuGestures.ClassNames.Length) return false;
        if (!_executor.TrySetInput(_lastInput, 0)) return false;
        _executor.TrainStep(label);
        _lastTrusted = false;
        Updates++;
        return true;
    }

    /// <summary>The energy score of each window of <paramref name="data"/> (for the OOD threshold at first start).</summary>
    public float[] Scores(Compiler.Data.Dataset data, int count)
    {
        int n = Math.Min(count, data.Count);
        var scores = new float[n];
        var window = new float[ImuGestures.Channels * ImuGestures.Window];
        for (int i = 0; i < n; i++)
        {
            ImuGestures.DecodeWindow(data.Image(i), window, 0);
            scores[i] = Classify(window, trusted: false).OodScore;
        }
        return scores;
    }
}
