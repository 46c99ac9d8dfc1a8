namespace TinyTrain.Adapters.Routing;

using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Ood;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Runtime.Execution;
using TinyTrain.Runtime.Ood;
using TinyTrain.Runtime.Plans;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

/// <summary>
/// Picks the adapter for an input when no task label is given, with a Gaussian model of every class seen so far
/// in one shared space (streaming linear discriminant analysis; exemplar-free: statistics, never an image): the frozen
/// base model's classifier-input features, divided by their length and projected to D dimensions by the seeded random
/// bipolar projection of the hyperdimensional OOD score (its signs are computed, never stored). Each class keeps its
/// mean; all classes share one covariance, the within-class scatter of every sample seen, updated when a task is added.
/// Two shrinkages of it (towards its mean variance) give two Mahalanobis distances: a light one chooses the task
/// (minus the smallest distance to its classes' means), a heavy one decides whether the task claims the input at all
/// (the threshold at a true-positive rate on held-out samples of the task, set when it is added and not moved when
/// later tasks change the covariance) — a covariance
/// estimated from a few hundred images per class is too sure of its smallest directions to tell inputs of no task
/// from held-out ones of its own. The router answers the claiming task with the best choice score, or
/// <see cref="TaskRouter.NoTask"/>. Routing costs one base inference, the projection (8 adds per feature and 32
/// dimensions) and two triangular solves of D x D; it allocates nothing.
/// </summary>
public sealed class GaussianRouter
{
    public const uint ProjectionSeed = 0x5EED_0A11;
    public const int DefaultDimensions = 256;
    public const float DefaultShrinkage = 0.01f;
    public const float DefaultClaimShrinkage = 0.5f;

    private readonly PlanImage _plan;
    private readonly Executor _executor;
    private readonly InputQuantizer _quantizer;
    private readonly byte[] _input;
    private readonly int _featureOffset, _features, _zeroPoint, _dims;

    private readonly int[] _buckets = new int[HdProjection.BucketCount], _projected;
    private readonly double[] _h;
    // Shared statistics: sum of h h^T over every sample seen (upper triangle used), the covariance, and the two metrics.
    private readonly double[] _moments, _covariance;
    private readonly Metric _choose, _claim;
    private long _samples;
    private readonly List<GaussianTask> _tasks = new();
    private readonly List<GaussianClass> _classes = new();
    private readonly float[] _scores;

    /// <param name="basePlan">A plan of the base model (its writable parameters at their compiled values give the base features).</param>
    /// <param name="dimensions">D, the projected features' length: a multiple of 32 (the router keeps 3 D x D triangles).</param>
    /// <param name="shrinkage">Share of the covariance replaced by its mean variance on the diagonal, for choosing the task.</param>
    /// <param name="claimShrinkage">The same, for deciding whether a task claims the input.</param>
    public GaussianRouter(PlanImage basePlan, int dimensions = DefaultDimensions, float shrinkage = DefaultShrinkage,
        float claimShrinkage = DefaultClaimShrinkage, int maxTasks = 64)
    {
        if (dimensions < 32 || dimensions % 32 != 0 || dimensions > 2048)
            throw new TinyTrainException($"router: {dimensions} dimensions; use a multiple of 32 from 32 to 2048 ({DefaultDimensions} is the default)");
        foreach (float share in new[] { shrinkage, claimShrinkage })
            if (!(share > 0 && share <= 1))
                throw new TinyTrainException($"router: shrinkage {share} must lie in (0, 1] (the defaults are {DefaultShrinkage} to choose, {DefaultClaimShrinkage} to claim)");
        _plan = basePlan;
        _executor = new Executor(basePlan);
        _quantizer = InputQuantizer.For(basePlan);
        _input = new byte[_quantizer.Length];
        TensorInfo features = basePlan.Tensor(OodBinding.FeatureTensor(basePlan));
        _featureOffset = features.ArenaOffset;
        _features = features.ElementCount;
        _zeroPoint = features.ZeroPoint;
        _dims = dimensions;
        _projected = new int[dimensions];
        _h = new double[dimensions];
        _moments = new double[dimensions * dimensions];
        _covariance = new double[dimensions * dimensions];
        _choose = new Metric(shrinkage, dimensions);
        _claim = new Metric(claimShrinkage, dimensions);
        _scores = new float[maxTasks];
    }

    public int Dimensions => _dims;
    public int TaskCount => _tasks.Count;
    public string TaskName(int task) => _tasks[task].Name;
    public float Threshold(int task) => _tasks[task].Threshold;
    /// <summary>Scores of the last route, one per task.</summary>
    public ReadOnlySpan<float> Scores => _scores.AsSpan(0, _tasks.Count);
    public int InputLength => _executor.InputLength;

    /// <summary>Bytes per task on a device: per class a float32 mean, its two whitened copies and its sample count; a float threshold.</summary>
    public long StateBytes(int task) => _tasks[task].Classes.Length * (3 * 4L * _dims + 4) + 4;

    /// <summary>Bytes shared by all tasks: the second moments and the two Cholesky factors (float32, one D x D triangle each).</summary>
    public long SharedBytes => 3L * 4 * _dims * (_dims + 1) / 2;

    /// <summary>
    /// Adds a task from its labelled training samples: <paramref name="indices"/> of <paramref name="data"/>; the last
    /// <paramref name="heldOut"/> share of them sets the threshold, the rest update the class means and the shared covariance.
    /// </summary>
    public int AddTask(string name, Dataset data, IReadOnlyList<int> indices, double heldOut = 0.2,
        double truePositiveRate = OodCalibration.DefaultTruePositiveRate)
    {
        if (_tasks.Count == _scores.Length) throw new TinyTrainException($"router: all {_scores.Length} task slots are taken");
        if (!(truePositiveRate > 0 && truePositiveRate <= 1))
            throw new TinyTrainException($"router: true-positive rate {truePositiveRate} must lie in (0, 1]; 0.95 is the convention");
        int held = (int)(indices.Count * heldOut);
        int build = indices.Count - held;
        if (build < 2 || held < 1)
            throw new TinyTrainException($"router: task '{name}' needs samples both to model its classes and to set the threshold; got {indices.Count}");
        // The held-out features first: nothing changes unless the task can be added whole.
        var heldFeatures = new List<double[]>(held);
        for (int i = 0; i < held; i++)
            if (Observe(data, indices[build + i])) heldFeatures.Add((double[])_h.Clone());
        if (heldFeatures.Count == 0) throw new TinyTrainException($"router: task '{name}': every held-out sample gave all-zero features; nothing to set the threshold on");
        var sums = new SortedDictionary<int, (double[] Sum, long Count)>();
        var moments = new double[_moments.Length];
        for (int i = 0; i < build; i++)
        {
            if (!Observe(data, indices[i])) continue;
            int label = data.Labels[indices[i]];
            if (!sums.TryGetValue(label, out var s)) s = (new double[_dims], 0);
            for (int d = 0; d < _dims; d++) s.Sum[d] += _h[d];
            sums[label] = (s.Sum, s.Count + 1);
            for (int a = 0; a < _dims; a++)
            {
                double ha = _h[a];
                int row = a * _dims;
                for (int b = a; b < _dims; b++) moments[row + b] += ha * _h[b];
            }
        }
        if (sums.Count == 0) throw new TinyTrainException($"router: task '{name}': every sample gave all-zero features; nothing to model");
        for (int k = 0; k < moments.Length; k++) _moments[k] += moments[k];
        int first = _classes.Count;
        foreach ((int label, (double[] sum, long count)) in sums)
        {
            for (int d = 0; d < _dims; d++) sum[d] /= count;
            _classes.Add(new GaussianClass(label, sum, count));
            _samples += count;
        }
        Factor();
        var task = new GaussianTask(name, Enumerable.Range(first, sums.Count).ToArray(), float.NegativeInfinity);
        _tasks.Add(task);
        float[] heldScores = new float[heldFeatures.Count];
        for (int i = 0; i < heldScores.Length; i++)
        {
            _claim.Whiten(heldFeatures[i], _claim.Input);
            heldScores[i] = Score(task, _claim);
        }
        _tasks[^1] = task with { Threshold = OodCalibration.Threshold(heldScores, truePositiveRate).Value };
        return _tasks.Count - 1;
    }

    /// <summary>The task for image <paramref name="index"/> of <paramref name="data"/>, or <see cref="TaskRouter.NoTask"/> when no task claims it.</summary>
    public int Route(Dataset data, int index)
    {
        RequireTasks();
        _quantizer.Fill(data, index, _input, 0);
        return RouteInput(_input);
    }

    /// <summary>The task for an int8 input already quantized for the base plan (<see cref="InputLength"/> bytes).</summary>
    public int Route(byte[] input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Length != _executor.InputLength)
            throw new TinyTrainException($"router: the input has {input.Length} values but plan '{_plan.Source}' reads {_executor.InputLength} (its int8 input tensor); quantize the image for this plan");
        RequireTasks();
        return RouteInput(input);
    }

    /// <summary>The task with the highest score of the last route, claimed or not (the answer when a task must be chosen).</summary>
    public int Best()
    {
        RequireTasks();
        int best = 0;
        for (int t = 1; t < _tasks.Count; t++)
            if (_scores[t] > _scores[best]) best = t;
        return best;
    }

    private int RouteInput(byte[] input)
    {
        _executor.SetInput(input, 0);
        _executor.Invoke();
        bool any = Project();
        if (any)
        {
            _choose.Whiten(_h, _choose.Input);
            _claim.Whiten(_h, _claim.Input);
        }
        int best = TaskRouter.NoTask;
        for (int t = 0; t < _tasks.Count; t++)
        {
            _scores[t] = any ? Score(_tasks[t], _choose) : float.NegativeInfinity;
            if (any && Score(_tasks[t], _claim) >= _tasks[t].Threshold && (best == TaskRouter.NoTask || _scores[t] > _scores[best])) best = t;
        }
        return best;
    }

    private void RequireTasks()
    {
        if (_tasks.Count == 0) throw new TinyTrainException("router: no task has been added yet, so there is nothing to route to; add a task (AddTask) first");
    }

    // Minus the smallest squared Mahalanobis distance of the input to the task's class means under a metric:
    // |L^-1 h - L^-1 mean|^2, with L^-1 h in metric.Input and each class's L^-1 mean kept since the last factorization.
    private float Score(GaussianTask task, Metric metric)
    {
        double best = double.PositiveInfinity;
        foreach (int c in task.Classes)
        {
            double[] mean = metric.Means[c];
            double distance = 0;
            for (int d = 0; d < _dims; d++)
            {
                double v = metric.Input[d] - mean[d];
                distance += v * v;
            }
            if (distance < best) best = distance;
        }
        return (float)-best;
    }

    // The within-class covariance of every sample seen, then both metrics.
    private void Factor()
    {
        int n = _dims;
        for (int a = 0; a < n; a++)
            for (int b = a; b < n; b++)
            {
                double s = _moments[a * n + b];
                foreach (GaussianClass c in _classes) s -= c.Count * c.Mean[a] * c.Mean[b];
                _covariance[b * n + a] = _covariance[a * n + b] = s / Math.Max(1, _samples - _classes.Count);
            }
        foreach (Metric metric in new[] { _choose, _claim })
        {
            metric.Factor(_covariance);
            while (metric.Means.Count < _classes.Count) metric.Means.Add(new double[n]);
            for (int c = 0; c < _classes.Count; c++) metric.Whiten(_classes[c].Mean, metric.Means[c]);
        }
    }

    // Projects the observed features, divided by their length, into _h; false when they are all zero.
    private bool Project()
    {
        byte[] arena = _executor.Arena;
        long xx = 0;
        for (int i = 0; i < _features; i++)
        {
            int x = (sbyte)arena[_featureOffset + i] - _zeroPoint;
            xx += x * x;
        }
        if (xx == 0) return false;
        HdProjection.Project(ProjectionSeed, _dims, arena, _featureOffset, _features, _zeroPoint, _buckets, _projected, 0);
        double inverse = 1 / Math.Sqrt(xx);
        for (int d = 0; d < _dims; d++) _h[d] = _projected[d] * inverse;
        return true;
    }

    private bool Observe(Dataset data, int index)
    {
        _quantizer.Fill(data, index, _input, 0);
        _executor.SetInput(_input, 0);
        _executor.Invoke();
        return Project();
    }

    private sealed record GaussianClass(int Label, double[] Mean, long Count);

    /// <summary>The covariance shrunk by one share towards its mean variance, as a Cholesky factor L, with the class means whitened by it.</summary>
    private sealed class Metric(float shrinkage, int dims)
    {
        private readonly double[] _factor = new double[dims * dims];

        public double[] Input { get; } = new double[dims];
        public List<double[]> Means { get; } = new();

        public void Factor(double[] covariance)
        {
            int n = dims;
            double trace = 0;
            for (int a = 0; a < n; a++) trace += covariance[a * n + a];
            double floor = trace / n;
            double[] l = _factor;
            for (int a = 0; a < n; a++)
                for (int b = 0; b < n; b++)
                    l[a * n + b] = (1 - shrinkage) * covariance[a * n + b] + (a == b ? shrinkage * floor + 1e-9 : 0);
            for (int j = 0; j < n; j++)
            {
                double s = l[j * n + j];
                for (int k = 0; k < j; k++) s -= l[j * n + k] * l[j * n + k];
                l[j * n + j] = Math.Sqrt(Math.Max(s, 1e-12));
                for (int i = j + 1; i < n; i++)
                {
                    double v = l[i * n + j];
                    for (int k = 0; k < j; k++) v -= l[i * n + k] * l[j * n + k];
                    l[i * n + j] = v / l[j * n + j];
                }
            }
        }

        // destination = L^-1 source (forward substitution).
        public void Whiten(double[] source, double[] destination)
        {
            for (int i = 0; i < dims; i++)
            {
                double v = source[i];
                int row = i * dims;
                for (int k = 0; k < i; k++) v -= _factor[row + k] * destination[k];
                destination[i] = v / _factor[row + i];
            }
        }
    }

    private sealed record GaussianTask(string Name, int[] Classes, float Threshold);
}
