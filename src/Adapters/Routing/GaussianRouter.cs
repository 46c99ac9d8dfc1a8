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
/// in one shared space (streaming linear discriminant analysis, exemplar-free): the frozen base model's
/// classifier-input features, divided by their length and projected to <see cref="Dimensions"/> by the seeded
/// random bipolar projection of the hyperdimensional OOD score (its signs are computed, never stored). Each class
/// keeps its mean; all classes share one covariance (the within-class scatter of every sample seen, plus shrinkage
/// towards its mean variance), updated when a task is added. A task's score is minus the smallest Mahalanobis
/// distance of the input to its classes' means; it claims the input when the score reaches its threshold (set, when
/// the task is added, at a true-positive rate on held-out samples of the task). The router answers the claiming task
/// with the highest score, or <see cref="TaskRouter.NoTask"/>. Keeps statistics, never an image. Routing costs one
/// base inference, the projection and one D x D product per class mean; it allocates nothing.
/// </summary>
public sealed class GaussianRouter
{
    public const uint ProjectionSeed = 0x5EED_0A11;

    private readonly PlanImage _plan;
    private readonly Executor _executor;
    private readonly InputQuantizer _quantizer;
    private readonly byte[] _input;
    private readonly int _featureOffset, _features, _zeroPoint, _dims;
    private readonly float _shrinkage, _power;
    private readonly float[] _transformed;   // |x - zp| ^ power, by |x - zp|
    private readonly int[] _buckets = new int[HdProjection.BucketCount], _projected;
    private readonly double[] _h, _diff, _solved;
    // Shared statistics: sum of h h^T over every sample seen (upper triangle used), and the Cholesky factor of the covariance.
    private readonly double[] _moments, _cholesky;
    private long _samples;
    private readonly List<GaussianTask> _tasks = new();
    private readonly List<GaussianClass> _classes = new();
    private readonly float[] _scores;

    public GaussianRouter(PlanImage basePlan, int dimensions = 256, float shrinkage = 0.1f, float power = 1f, int maxTasks = 64)
    {
        if (!(power > 0 && power <= 1))
            throw new TinyTrainException($"router: power {power} must lie in (0, 1] (1 leaves the features as they are, 0.5 takes their square root)");
        _power = power;
        _transformed = new float[256];
        for (int v = 0; v < 256; v++) _transformed[v] = (float)Math.Pow(v, power);
        if (dimensions < 32 || dimensions % 32 != 0 || dimensions > 2048)
            throw new TinyTrainException($"router: {dimensions} dimensions; use a multiple of 32 from 32 to 2048 (256 is the default)");
        if (!(shrinkage >= 0 && shrinkage <= 1))
            throw new TinyTrainException($"router: shrinkage {shrinkage} must lie in [0, 1] (0.1 is the default)");
        _plan = basePlan;
        _executor = new Executor(basePlan);
        _quantizer = InputQuantizer.For(basePlan);
        _input = new byte[_quantizer.Length];
        TensorInfo features = basePlan.Tensor(OodBinding.FeatureTensor(basePlan));
        _featureOffset = features.ArenaOffset;
        _features = features.ElementCount;
        _zeroPoint = features.ZeroPoint;
        _dims = dimensions;
        _shrinkage = shrinkage;
        _projected = new int[dimensions];
        _h = new double[dimensions];
        _diff = new double[dimensions];
        _solved = new double[dimensions];
        _moments = new double[dimensions * dimensions];
        _cholesky = new double[dimensions * dimensions];
        _scores = new float[maxTasks];
    }

    public int Dimensions => _dims;
    public int TaskCount => _tasks.Count;
    public string TaskName(int task) => _tasks[task].Name;
    public float Threshold(int task) => _tasks[task].Threshold;
    /// <summary>Scores of the last route, one per task.</summary>
    public ReadOnlySpan<float> Scores => _scores.AsSpan(0, _tasks.Count);
    public int InputLength => _executor.InputLength;

    /// <summary>Bytes per task on a device: a float32 mean per class, its sample count, and a float threshold.</summary>
    public long StateBytes(int task) => _tasks[task].Classes.Length * (4L * _dims + 4) + 4;

    /// <summary>Bytes shared by all tasks: the second moments and the Cholesky factor of the covariance (float32, one triangle each).</summary>
    public long SharedBytes => 2L * 4 * _dims * (_dims + 1) / 2;

    /// <summary>
    /// Adds a task from its labelled training samples: <paramref name="indices"/> of <paramref name="data"/>; the last
    /// <paramref name="heldOut"/> share of them sets the threshold, the rest update the class means and the shared covariance.
    /// </summary>
    public int AddTask(string name, Dataset data, IReadOnlyList<int> indices, double heldOut = 0.2,
        double truePositiveRate = OodCalibration.DefaultTruePositiveRate)
    {
        if (_tasks.Count == _scores.Length) throw new TinyTrainException($"router: all {_scores.Length} task slots are taken");
        int held = (int)(indices.Count * heldOut);
        int build = indices.Count - held;
        if (build < 2 || held < 1)
            throw new TinyTrainException($"router: task '{name}' needs samples both to model its classes and to set the threshold; got {indices.Count}");
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
        var heldScores = new List<float>(held);
        for (int i = 0; i < held; i++)
            if (Observe(data, indices[build + i])) heldScores.Add(Score(task));
        if (heldScores.Count == 0) throw new TinyTrainException($"router: task '{name}': every held-out sample gave all-zero features");
        _tasks[^1] = task with { Threshold = OodCalibration.Threshold(heldScores.ToArray(), truePositiveRate).Value };
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
        int best = TaskRouter.NoTask;
        for (int t = 0; t < _tasks.Count; t++)
        {
            _scores[t] = any ? Score(_tasks[t]) : float.NegativeInfinity;
            if (_scores[t] >= _tasks[t].Threshold && (best == TaskRouter.NoTask || _scores[t] > _scores[best])) best = t;
        }
        return best;
    }

    private void RequireTasks()
    {
        if (_tasks.Count == 0) throw new TinyTrainException("router: no task has been added yet, so there is nothing to route to; add a task (AddTask) first");
    }

    // Minus the smallest Mahalanobis distance (squared) of the projected input to the task's class means.
    private float Score(GaussianTask task)
    {
        double best = double.PositiveInfinity;
        foreach (int c in task.Classes)
        {
            double[] mean = _classes[c].Mean;
            for (int d = 0; d < _dims; d++) _diff[d] = _h[d] - mean[d];
            // Solve L y = diff; the distance is |y|^2.
            double distance = 0;
            for (int i = 0; i < _dims; i++)
            {
                double v = _diff[i];
                int row = i * _dims;
                for (int k = 0; k < i; k++) v -= _cholesky[row + k] * _solved[k];
                v /= _cholesky[row + i];
                _solved[i] = v;
                distance += v * v;
            }
            if (distance < best) best = distance;
        }
        return (float)-best;
    }

    // Within-class covariance of every sample seen, shrunk towards its mean variance, as a Cholesky factor (lower).
    private void Factor()
    {
        int n = _dims;
        var cov = _cholesky;
        for (int a = 0; a < n; a++)
            for (int b = a; b < n; b++)
            {
                double s = _moments[a * n + b];
                foreach (GaussianClass c in _classes) s -= c.Count * c.Mean[a] * c.Mean[b];
                cov[b * n + a] = cov[a * n + b] = s / Math.Max(1, _samples - _classes.Count);
            }
        double trace = 0;
        for (int a = 0; a < n; a++) trace += cov[a * n + a];
        double floor = trace / n;
        for (int a = 0; a < n; a++)
            for (int b = 0; b < n; b++)
                cov[a * n + b] = (1 - _shrinkage) * cov[a * n + b] + (a == b ? _shrinkage * floor + 1e-9 : 0);
        for (int j = 0; j < n; j++)
        {
            double s = cov[j * n + j];
            for (int k = 0; k < j; k++) s -= cov[j * n + k] * cov[j * n + k];
            cov[j * n + j] = Math.Sqrt(Math.Max(s, 1e-12));
            for (int i = j + 1; i < n; i++)
            {
                double v = cov[i * n + j];
                for (int k = 0; k < j; k++) v -= cov[i * n + k] * cov[j * n + k];
                cov[i * n + j] = v / cov[j * n + j];
            }
        }
    }

    // Projects the observed features (each |x - zp| raised to the power, keeping its sign), divided by their length,
    // into _h; false when they are all zero.
    private bool Project()
    {
        byte[] arena = _executor.Arena;
        double xx = 0;
        for (int i = 0; i < _features; i++)
        {
            int x = (sbyte)arena[_featureOffset + i] - _zeroPoint;
            float f = _transformed[Math.Abs(x)];
            xx += f * f;
        }
        if (xx == 0) return false;
        if (_power == 1f)
        {
            HdProjection.Project(ProjectionSeed, _dims, arena, _featureOffset, _features, _zeroPoint, _buckets, _projected, 0);
            for (int d = 0; d < _dims; d++) _h[d] = _projected[d];
        }
        else
        {
            Array.Clear(_h);
            int words = _dims / 32;
            for (int j = 0; j < _features; j++)
            {
                int x = (sbyte)arena[_featureOffset + j] - _zeroPoint;
                if (x == 0) continue;
                double f = x > 0 ? _transformed[x] : -_transformed[-x];
                for (int w = 0; w < words; w++)
                {
                    uint signs = HdProjection.Signs(ProjectionSeed, w, j, _features);
                    int at = w * 32;
                    for (int b = 0; b < 32; b++) _h[at + b] += ((signs >> b) & 1) != 0 ? f : -f;
                }
            }
        }
        double inverse = 1 / Math.Sqrt(xx);
        for (int d = 0; d < _dims; d++) _h[d] *= inverse;
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

    private sealed record GaussianTask(string Name, int[] Classes, float Threshold);
}
