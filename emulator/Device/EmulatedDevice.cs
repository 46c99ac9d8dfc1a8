namespace TinyTrain.Emulator.Device;

using System.Diagnostics;
using TinyTrain.Compiler.Boards;
using TinyTrain.Emulator.CostModel;
using TinyTrain.Emulator.Report;
using TinyTrain.Runtime.Adaptation;
using TinyTrain.Runtime.Execution;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

/// <summary>What happened to one sample fed to the device.</summary>
public enum SampleOutcome : byte
{
    /// <summary>The input held NaN or infinity: refused before the arena was touched, neither predicted nor learned.</summary>
    Skipped = 0,
    Wrong = 1,
    Correct = 2,
}

/// <summary>
/// A plan running on a board, on the desktop: the board's memory limits enforced when the plan is bound, the runtime's
/// one arena of exactly the plan's size, and a stream of samples processed as the device would, one at a time and
/// prequentially (predict, then learn from the label where the sample has one and the plan can train).
/// </summary>
/// <remarks>
/// A run is Begin, then Feed once per sample, then Finish; <see cref="Run"/> does all three for a DataStream.
/// Per-sample outcomes go into arrays allocated by Begin, so Feed itself allocates nothing.
/// </remarks>
public sealed partial class EmulatedDevice
{
    /// <summary>Samples per point of the windowed accuracy, unless the caller says otherwise.</summary>
    public const int DefaultWindow = 100;

    private readonly Executor _executor;
    private string[] _segmentNames = [];
    private int[] _segments = [];
    private SampleOutcome[] _outcomes = [];
    private bool[] _trained = [];
    private bool[] _ood = [];
    // Test-time adaptation plans learn from every trusted sample, without its label, behind the adapter's guards.
    private readonly TestTimeAdapter? _adapter;
    private int _count;
    private int _highWater;
    private long _ticks;
    private bool _running;

    /// <summary>Binds <paramref name="plan"/> to <paramref name="board"/>; refuses, with the memory breakdown, a plan that does not fit.</summary>
    /// <param name="seed">Seeds the stochastic rounding of updates, so that a run is repeatable.</param>
    /// <param name="oodThreshold">Test-time adaptation plans: the maximum softmax probability below which a sample is
    /// out of distribution (not learned from; a sustained OOD rate resets the device). 0 = no OOD gate.</param>
    public EmulatedDevice(PlanImage plan, BoardProfile board, float learningRate = 0.01f, uint seed = 0, float oodThreshold = 0f)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(board);
        if (!(learningRate > 0) || !float.IsFinite(learningRate))
            throw new TinyTrainException($"learning rate must be a positive number, got {learningRate}");
        Plan = plan;
        Board = board;
        Fit = MemoryFit.Check(Requirement(plan), board);
        if (!Fit.Fits)
            throw new TinyTrainException($"{plan.Source} does not fit {board.Id}: {Fit.Summary}; {Advice(Fit)}");
        Cost = CostEstimator.Estimate(plan, board);
        _executor = new Executor(plan) { LearningRate = learningRate };
        _executor.Seed(seed * 2654435761u + 1);
        if (_executor.LearnsWithoutLabels) _adapter = new TestTimeAdapter(_executor, oodThreshold);
    }

    /// <summary>True for a test-time adaptation plan: every trusted sample is learned from, labelled or not.</summary>
    public bool AdaptsWithoutLabels => _adapter is not null;

    /// <summary>Times the adaptation guard reset the device to the source model (OOD rate too high).</summary>
    public int Resets => _adapter?.Resets ?? 0;

    public PlanImage Plan { get; }
    public BoardProfile Board { get; }

    /// <summary>The plan's memory against the board's, part by part.</summary>
    public FitReport Fit { get; }

    /// <summary>The cost model's estimate of the plan on this board.</summary>
    public CostEstimate Cost { get; }

    /// <summary>True when the plan has a trainable set: labelled samples are then learned from.</summary>
    public bool CanTrain => _executor.CanTrain;

    public float LearningRate => _executor.LearningRate;

    /// <summary>The runtime itself, for tests and tools (its arena, parameters, outputs).</summary>
    public Executor Executor => _executor;

    /// <summary>Bytes of the runtime's arena: exactly the plan's (the executor allocates no more).</summary>
    public int ArenaBytes => _executor.Arena.Length;

    /// <summary>Samples fed since Begin.</summary>
    public int Count => _count;

    /// <summary>What a plan needs, from the plan file alone: Flash holds its constants and the rest of the file.</summary>
    public static MemoryRequirement Requirement(PlanImage plan)
        => new(plan.ArenaBytes, plan.SramParamBytes, plan.StateBytes, plan.FlashBytes, plan.Image.Length - plan.FlashBytes);

    /// <summary>What to change, from the largest part of the memory that overflows.</summary>
    public static string Advice(FitReport fit) => fit.LargestOverflowingPart?.Category switch
    {
        MemoryCategory.Arena => "the arena is the largest part: recompile at a lower --resolution, or train fewer layers (a smaller --update)",
        MemoryCategory.SramParams => "the writable parameters are the largest part: train fewer weights (a sparser --update)",
        MemoryCategory.State => "optimizer state is the largest part: recompile without --momentum",
        MemoryCategory.FlashConstants => "the weights are the largest part: use a smaller model",
        MemoryCategory.Plan => "the plan's tables are the largest part: use a model with fewer ops",
        _ => "choose a larger board",
    };

    /// <summary>Starts a run of at most <paramref name="capacity"/> samples over segments with these names.</summary>
    public void Begin(IReadOnlyList<string> segmentNames, int capacity)
    {
        ArgumentNullException.ThrowIfNull(segmentNames);
        if (segmentNames.Count == 0) throw new ArgumentException("A run needs at least one segment.", nameof(segmentNames));
        ArgumentOutOfRangeException.ThrowIfNegative(capacity);
        _segmentNames = [.. segmentNames];
        _segments = new int[capacity];
        _outcomes = new SampleOutcome[capacity];
        _trained = new bool[capacity];
        _ood = new bool[capacity];
        _count = 0;
        _ticks = 0;
        _running = true;
    }

    /// <summary>
    /// One sample: quantize <paramref name="input"/> (the model's float layout from <paramref name="offset"/>), predict,
    /// then, when <paramref name="labelled"/> and the plan can train, one training step on <paramref name="label"/>.
    /// <paramref name="label"/> is always the true one: it scores the prediction even when the learner may not see it.
    /// </summary>
    public SampleOutcome Feed(int segment, float[] input, int offset, int label, bool labelled)
    {
        if (!_running) throw new InvalidOperationException("Call Begin before Feed.");
        if ((uint)segment >= (uint)_segmentNames.Length)
            throw new ArgumentOutOfRangeException(nameof(segment), segment, $"The run has segments 0..{_segmentNames.Length - 1}.");
        if (_count == _segments.Length)
            throw new InvalidOperationException($"The run was begun for {_segments.Length} samples.");
        if ((uint)label >= (uint)Plan.NumClasses)
            throw new TinyTrainException($"sample {_count} of segment '{_segmentNames[segment]}' has label {label}, outside the model's classes 0..{Plan.NumClasses - 1}");

        long start = Stopwatch.GetTimestamp();
        SampleOutcome outcome = SampleOutcome.Skipped;
        bool trained = false, ood = false;
        if (_adapter is not null)
        {
            int predicted = _adapter.Step(input, offset);
            if (predicted >= 0) outcome = predicted == label ? SampleOutcome.Correct : SampleOutcome.Wrong;
            trained = _adapter.LastAdapted;
            ood = predicted >= 0 && _adapter.LastOutOfDistribution;
        }
        else if (_executor.TrySetInput(input, offset))
        {
            int predicted;
            if (labelled && _executor.CanTrain)
            {
                // One forward pass scores the sample and feeds the backward pass: the prediction is made
                // before the update. (The arena reuses the input's bytes, so a second pass would need it set again.)
                _executor.TrainStep(label);
                predicted = _executor.LastPrediction;
                trained = true;
            }
            else
            {
                _executor.Invoke();
                predicted = _executor.ArgMax();
            }
            outcome = predicted == label ? SampleOutcome.Correct : SampleOutcome.Wrong;
        }
        _ticks += Stopwatch.GetTimestamp() - start;
        // The paint scan stops at the highest touched byte, so it is cheap; the maximum over samples is robust
        // to a last write that happens to equal the paint.
        int high = _executor.HighWaterMark();
        if (high > _highWater) _highWater = high;

        _segments[_count] = segment;
        _outcomes[_count] = outcome;
        _trained[_count] = trained;
        _ood[_count] = ood;
        _count++;
        return outcome;
    }

    /// <summary>Ends the run and summarises it.</summary>
    /// <param name="tasks">Per-task held-out accuracy to put in the report (see <see cref="Run"/>); none when null.</param>
    public EmulationReport Finish(int window = DefaultWindow, IReadOnlyList<TaskReport>? tasks = null)
    {
        if (!_running) throw new InvalidOperationException("Call Begin before Finish.");
        _running = false;
        double seconds = (double)_ticks / Stopwatch.Frequency;
        var log = new SampleLog(_segmentNames, _segments, _outcomes, _trained, _count, _adapter is null ? null : _ood);
        return EmulationReport.Create(Plan.Source, Plan.ModelName, Fit, Cost, log, window, ArenaBytes, _highWater, seconds, tasks);
    }
}
