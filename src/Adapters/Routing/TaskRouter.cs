namespace TinyTrain.Adapters.Routing;

using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Ood;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Runtime.Execution;
using TinyTrain.Runtime.Ood;
using TinyTrain.Runtime.Plans;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

/// <summary>
/// Picks the adapter for an input when no task label is given: a per-task prototype head on the frozen
/// base model's features (the classifier's int8 input). Each task keeps a few int8 prototypes per class
/// (spherical k-means of its training features); a task's score is the best cosine of the input with its
/// prototypes, and it claims the input when the score reaches its threshold (set at a true-positive rate
/// on held-out samples of the task, 95 % by default). The router answers the task with the highest score
/// that claims the input, or <see cref="NoTask"/> when none does: the device may then start a new task slot.
/// Routing costs one inference of the base model plus one dot product per prototype; it allocates nothing.
/// </summary>
public sealed class TaskRouter
{
    public const int NoTask = -1;

    private readonly PlanImage _plan;
    private readonly Executor _executor;
    private readonly InputQuantizer _quantizer;
    private readonly byte[] _input;
    private readonly int _featureOffset, _features, _zeroPoint;
    private readonly List<RouterTask> _tasks = new();
    private readonly float[] _scores;

    /// <param name="basePlan">A plan of the base model (its writable parameters at their compiled values give the base features).</param>
    public TaskRouter(PlanImage basePlan, int maxTasks = 64)
    {
        _plan = basePlan;
        _executor = new Executor(basePlan);
        _quantizer = InputQuantizer.For(basePlan);
        _input = new byte[_quantizer.Length];
        TensorInfo features = basePlan.Tensor(OodBinding.FeatureTensor(basePlan));
        _featureOffset = features.ArenaOffset;
        _features = features.ElementCount;
        _zeroPoint = features.ZeroPoint;
        _scores = new float[maxTasks];
    }

    public int TaskCount => _tasks.Count;
    public string TaskName(int task) => _tasks[task].Name;
    public float Threshold(int task) => _tasks[task].Threshold;
    /// <summary>Scores of the last <see cref="Route(Dataset, int)"/>, one per task.</summary>
    public ReadOnlySpan<float> Scores => _scores.AsSpan(0, _tasks.Count);

    /// <summary>Bytes the router keeps per task on a device: int8 prototypes plus one float threshold.</summary>
    public long StateBytes(int task) => _tasks[task].Prototypes.Length + 4;

    /// <summary>
    /// Adds a task from its labelled training samples: <paramref name="indices"/> of <paramref name="data"/>; the last
    /// <paramref name="heldOut"/> share of them sets the threshold, the rest build the prototypes.
    /// </summary>
    public int AddTask(string name, Dataset data, IReadOnlyList<int> indices, int prototypesPerClass = 4, double heldOut = 0.2,
        double truePositiveRate = OodCalibration.DefaultTruePositiveRate)
    {
        if (_tasks.Count == _scores.Length) throw new TinyTrainException($"router: all {_scores.Length} task slots are taken");
        int held = (int)(indices.Count * heldOut);
        int build = indices.Count - held;
        if (build < 1 || held < 1)
            throw new TinyTrainException($"router: task '{name}' needs samples both to build prototypes and to set the threshold; got {indices.Count}");
        var byClass = new Dictionary<int, List<float[]>>();
        for (int i = 0; i < build; i++)
        {
            float[]? v = Features(data, indices[i]);
            if (v is null) continue;
            int label = data.Labels[indices[i]];
            if (!byClass.TryGetValue(label, out List<float[]>? list)) byClass[label] = list = new List<float[]>();
            list.Add(v);
        }
        var prototypes = new List<sbyte[]>();
        foreach (int label in byClass.Keys.Order())
            foreach (float[] centre in SphericalKMeans.Run(byClass[label], prototypesPerClass))
                prototypes.Add(ToInt8(centre));
        var task = new RouterTask(name, Flatten(prototypes), prototypes.Count, float.NegativeInfinity);
        _tasks.Add(task);
        float[] heldScores = new float[held];
        for (int i = 0; i < held; i++)
        {
            Observe(data, indices[build + i]);
            heldScores[i] = ScoreTask(task);
        }
        _tasks[^1] = task with { Threshold = OodCalibration.Threshold(heldScores, truePositiveRate).Value };
        return _tasks.Count - 1;
    }

    /// <summary>The task for image <paramref name="index"/> of <paramref name="data"/>, or <see cref="NoTask"/> when no task claims it.</summary>
    public int Route(Dataset data, int index)
    {
        Observe(data, index);
        return RouteObserved();
    }

    /// <summary>The task with the highest score, claimed or not (the answer when a task must be chosen).</summary>
    public int Best()
    {
        int best = 0;
        for (int t = 1; t < _tasks.Count; t++)
            if (_scores[t] > _scores[best]) best = t;
        return _tasks.Count == 0 ? NoTask : best;
    }

    private int RouteObserved()
    {
        int best = NoTask;
        for (int t = 0; t < _tasks.Count; t++)
        {
            _scores[t] = ScoreTask(_tasks[t]);
            if (_scores[t] >= _tasks[t].Threshold && (best == NoTask || _scores[t] > _scores[best])) best = t;
        }
        return best;
    }

    private void Observe(Dataset data, int index)
    {
        _quantizer.Fill(data, index, _input, 0);
        _executor.SetInput(_input, 0);
        _executor.Invoke();
    }

    // Best cosine of the observed features with the task's prototypes.
    private float ScoreTask(RouterTask task)
    {
        byte[] arena = _executor.Arena;
        long xx = 0;
        for (int i = 0; i < _features; i++)
        {
            int x = (sbyte)arena[_featureOffset + i] - _zeroPoint;
            xx += x * x;
        }
        if (xx == 0) return -1f;
        float best = -1f;
        sbyte[] p = task.Prototypes;
        for (int k = 0; k < task.Count; k++)
        {
            long dot = 0, pp = 0;
            int at = k * _features;
            for (int i = 0; i < _features; i++)
            {
                int x = (sbyte)arena[_featureOffset + i] - _zeroPoint, w = p[at + i];
                dot += x * w;
                pp += w * w;
            }
            if (pp == 0) continue;
            float cosine = (float)(dot / Math.Sqrt((double)xx * pp));
            if (cosine > best) best = cosine;
        }
        return best;
    }

    private float[]? Features(Dataset data, int index)
    {
        Observe(data, index);
        var v = new float[_features];
        double length = 0;
        for (int i = 0; i < _features; i++)
        {
            v[i] = (sbyte)_executor.Arena[_featureOffset + i] - _zeroPoint;
            length += v[i] * v[i];
        }
        if (length == 0) return null;
        float inverse = (float)(1 / Math.Sqrt(length));
        for (int i = 0; i < v.Length; i++) v[i] *= inverse;
        return v;
    }

    private static sbyte[] ToInt8(float[] v)
    {
        float max = 0;
        foreach (float x in v) max = Math.Max(max, Math.Abs(x));
        var q = new sbyte[v.Length];
        if (max == 0) return q;
        for (int i = 0; i < v.Length; i++) q[i] = (sbyte)Math.Clamp((int)MathF.Round(v[i] / max * 127f), -127, 127);
        return q;
    }

    private static sbyte[] Flatten(List<sbyte[]> rows)
    {
        int n = rows.Count == 0 ? 0 : rows[0].Length;
        var all = new sbyte[rows.Count * n];
        for (int r = 0; r < rows.Count; r++) Array.Copy(rows[r], 0, all, r * n, n);
        return all;
    }

    private sealed record RouterTask(string Name, sbyte[] Prototypes, int Count, float Threshold);
}
