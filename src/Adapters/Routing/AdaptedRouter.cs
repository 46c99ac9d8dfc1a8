namespace TinyTrain.Adapters.Routing;

using TinyTrain.Adapters.Packs;
using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Ood;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Runtime.Execution;
using TinyTrain.Runtime.Plans;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

/// <summary>What <see cref="AdaptedRouter"/> scores a task by, in that task's own adapted model.</summary>
public enum RouteScore
{
    /// <summary>Best cosine of the adapted classifier-input features with the task's prototypes (recorded under its adapter).</summary>
    Prototype,
    /// <summary>The task head's negative free energy over the task's classes: log sum exp of their logits.</summary>
    Energy,
    /// <summary>Both, each standardized by the task's held-out statistics, summed.</summary>
    Both,
}

/// <summary>
/// Picks the adapter for an input when no task label is given, scoring each task in its OWN adapted model:
/// the input runs once through every task's adapter (T passes), and task t is scored on what adapter t
/// computes — the best cosine of its classifier-input features with int8 prototypes recorded under adapter t
/// (spherical k-means per class of the task's training images), the energy of its head over the task's
/// classes, or both. Each raw score is standardized per task by its mean and spread on held-out training
/// images of the task (so that tasks with tighter or looser score ranges compare fairly), and a task claims
/// the input when its score reaches the threshold at a true-positive rate (95 % by default) on those images.
/// The router answers the claiming task with the highest score, or <see cref="TaskRouter.NoTask"/>.
/// Exemplar-free: a task keeps prototypes, 4 floats of statistics and a threshold, never an image; its adapter
/// is the pack the device stores anyway. Routing allocates nothing.
/// </summary>
public sealed class AdaptedRouter
{
    private readonly PlanImage _plan;
    private readonly AdapterLayout _layout;
    private readonly Executor _executor;
    private readonly InputQuantizer _quantizer;
    private readonly byte[] _input;
    private readonly int _featureOffset, _features, _featureZero;
    private readonly int _logitOffset, _logitCount, _logitZero;
    private readonly float _logitScale;
    private readonly RouteScore _mode;
    private readonly List<RoutedTask> _tasks = new();
    private readonly float[] _scores, _prototype, _energy;

    /// <param name="adapterPlan">The plan that trains the adapters (compiled with --update adapter:KIND); its packs are the tasks'.</param>
    public AdaptedRouter(PlanImage adapterPlan, RouteScore mode = RouteScore.Both, int maxTasks = 64)
    {
        _plan = adapterPlan;
        _layout = AdapterLayout.Of(adapterPlan);
        if (_layout.Entries.Count == 0)
            throw new TinyTrainException($"router: plan '{adapterPlan.Source}' trains nothing, so it has no adapters to route to; compile it with --update adapter:KIND");
        _executor = new Executor(adapterPlan);
        _quantizer = InputQuantizer.For(adapterPlan);
        _input = new byte[_quantizer.Length];
        TensorInfo features = adapterPlan.Tensor(Runtime.Ood.OodBinding.FeatureTensor(adapterPlan));
        _featureOffset = features.ArenaOffset;
        _features = features.ElementCount;
        _featureZero = features.ZeroPoint;
        TensorInfo logits = adapterPlan.Tensor(adapterPlan.OutputTensor);
        _logitOffset = logits.ArenaOffset;
        _logitCount = logits.ElementCount;
        _logitZero = logits.ZeroPoint;
        _logitScale = logits.Scale;
        _mode = mode;
        _scores = new float[maxTasks];
        _prototype = new float[maxTasks];
        _energy = new float[maxTasks];
    }

    public RouteScore Mode => _mode;
    public int TaskCount => _tasks.Count;
    public string TaskName(int task) => _tasks[task].Name;
    public float Threshold(int task) => _tasks[task].Threshold;
    /// <summary>Inference passes per routed input: one per task.</summary>
    public int PassesPerInput => _tasks.Count;
    /// <summary>Standardized scores of the last route, one per task.</summary>
    public ReadOnlySpan<float> Scores => _scores.AsSpan(0, _tasks.Count);

    /// <summary>
    /// Bytes the router keeps per task on a device beside the task's pack: int8 prototypes (none when scoring by
    /// energy alone), the classes' indices, 4 floats of statistics and a float threshold.
    /// </summary>
    public long StateBytes(int task)
    {
        RoutedTask t = _tasks[task];
        return (_mode == RouteScore.Energy ? 0 : t.Prototypes.Length) + t.Classes.Length + 4 * 4 + 4;
    }

    /// <summary>
    /// Adds a task: its learned adapter <paramref name="pack"/>, the <paramref name="classes"/> its head answers, and its
    /// labelled training samples (<paramref name="indices"/> of <paramref name="data"/>): the last <paramref name="heldOut"/>
    /// share of them sets the statistics and the threshold, the rest build the prototypes under the task's adapter.
    /// </summary>
    public int AddTask(string name, AdapterPack pack, IReadOnlyList<int> classes, Dataset data, IReadOnlyList<int> indices,
        int prototypesPerClass = 4, double heldOut = 0.2, double truePositiveRate = OodCalibration.DefaultTruePositiveRate)
    {
        if (_tasks.Count == _scores.Length) throw new TinyTrainException($"router: all {_scores.Length} task slots are taken");
        if (classes.Count == 0) throw new TinyTrainException($"router: task '{name}' has no classes; give the classes its head answers");
        foreach (int c in classes)
            if (c < 0 || c >= _logitCount)
                throw new TinyTrainException($"router: task '{name}' has class {c}, but the plan's head has classes 0..{_logitCount - 1}");
        int held = (int)(indices.Count * heldOut);
        int build = indices.Count - held;
        if (build < 1 || held < 2)
            throw new TinyTrainException($"router: task '{name}' needs samples both to build prototypes and to calibrate its score; got {indices.Count}");
        try
        {
            _layout.Check(pack, $"task '{name}'");
        }
        catch (TinyTrainException e)
        {
            throw new TinyTrainException($"router: {e.Message.Replace("; the adapter in use was kept", "")}; no task was added");
        }
        byte[] parameters = new byte[_executor.Params.Length];
        foreach (PackTensor t in pack.Tensors)
            Array.Copy(t.Data, 0, parameters, _layout.Entries.First(e => e.Name == t.Name).Offset, t.Data.Length);

        var task = new RoutedTask(name, parameters, classes.ToArray(), [], 0, 0, 1, 0, 1, float.NegativeInfinity);
        Array.Copy(parameters, _executor.Params, parameters.Length);
        var byClass = new Dictionary<int, List<float[]>>();
        for (int i = 0; i < build; i++)
        {
            Observe(data, indices[i]);
            float[]? v = Features();
            if (v is null) continue;
            int label = data.Labels[indices[i]];
            if (!byClass.TryGetValue(label, out List<float[]>? list)) byClass[label] = list = new List<float[]>();
            list.Add(v);
        }
        var prototypes = new List<sbyte[]>();
        if (_mode != RouteScore.Energy)
            foreach (int label in byClass.Keys.Order())
                foreach (float[] centre in SphericalKMeans.Run(byClass[label], prototypesPerClass))
                    prototypes.Add(TaskRouter.ToInt8(centre));
        task = task with { Prototypes = TaskRouter.Flatten(prototypes), Count = prototypes.Count };

        // Held-out statistics of both raw scores, then the threshold on the standardized score.
        float[] proto = new float[held], energy = new float[held];
        for (int i = 0; i < held; i++)
        {
            Observe(data, indices[build + i]);
            proto[i] = PrototypeScore(task);
            energy[i] = EnergyScore(task);
        }
        (float pm, float ps) = MeanSpread(proto);
        (float em, float es) = MeanSpread(energy);
        task = task with { ProtoMean = pm, ProtoSpread = ps, EnergyMean = em, EnergySpread = es };
        float[] standardized = new float[held];
        for (int i = 0; i < held; i++) standardized[i] = Combine(task, proto[i], energy[i]);
        _tasks.Add(task with { Threshold = OodCalibration.Threshold(standardized, truePositiveRate).Value });
        return _tasks.Count - 1;
    }

    /// <summary>The task for image <paramref name="index"/> of <paramref name="data"/>, or <see cref="TaskRouter.NoTask"/> when no task claims it.</summary>
    public int Route(Dataset data, int index)
    {
        RequireTasks();
        _quantizer.Fill(data, index, _input, 0);
        return RouteInput(_input);
    }

    /// <summary>The task for an int8 input already quantized for the plan (<see cref="InputLength"/> bytes).</summary>
    public int Route(byte[] input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Length != _executor.InputLength)
            throw new TinyTrainException($"router: the input has {input.Length} values but plan '{_plan.Source}' reads {_executor.InputLength} (its int8 input tensor); quantize the image for this plan");
        RequireTasks();
        return RouteInput(input);
    }

    public int InputLength => _executor.InputLength;

    /// <summary>The task with the highest score of the last route, claimed or not (the answer when a task must be chosen).</summary>
    public int Best()
    {
        RequireTasks();
        int best = 0;
        for (int t = 1; t < _tasks.Count; t++)
            if (_scores[t] > _scores[best]) best = t;
        return best;
    }

    /// <summary>Raw scores of the last route: prototype cosine and energy, per task (for diagnostics and benchmarks).</summary>
    public float RawPrototype(int task) => _prototype[task];
    public float RawEnergy(int task) => _energy[task];

    private int RouteInput(byte[] input)
    {
        int best = TaskRouter.NoTask;
        for (int t = 0; t < _tasks.Count; t++)
        {
            RoutedTask task = _tasks[t];
            Array.Copy(task.Params, _executor.Params, task.Params.Length);
            _executor.SetInput(input, 0);
            _executor.Invoke();
            _prototype[t] = _mode == RouteScore.Energy ? 0 : PrototypeScore(task);
            _energy[t] = EnergyScore(task);
            _scores[t] = Combine(task, _prototype[t], _energy[t]);
            if (_scores[t] >= task.Threshold && (best == TaskRouter.NoTask || _scores[t] > _scores[best])) best = t;
        }
        return best;
    }

    private void RequireTasks()
    {
        if (_tasks.Count == 0) throw new TinyTrainException("router: no task has been added yet, so there is nothing to route to; add a task (AddTask) first");
    }

    private float Combine(RoutedTask task, float prototype, float energy)
    {
        float p = (prototype - task.ProtoMean) / task.ProtoSpread, e = (energy - task.EnergyMean) / task.EnergySpread;
        return _mode switch
        {
            RouteScore.Prototype => p,
            RouteScore.Energy => e,
            _ => p + e,
        };
    }

    private static (float Mean, float Spread) MeanSpread(float[] values)
    {
        double mean = 0;
        foreach (float v in values) mean += v;
        mean /= values.Length;
        double var = 0;
        foreach (float v in values) var += (v - mean) * (v - mean);
        double spread = Math.Sqrt(var / (values.Length - 1));
        return ((float)mean, (float)Math.Max(spread, 1e-6));
    }

    private void Observe(Dataset data, int index)
    {
        _quantizer.Fill(data, index, _input, 0);
        _executor.SetInput(_input, 0);
        _executor.Invoke();
    }

    // Best cosine of the adapted features with the task's prototypes.
    private float PrototypeScore(RoutedTask task)
        => task.Count == 0 ? 0 : TaskRouter.BestCosine(_executor.Arena, _featureOffset, _features, _featureZero, task.Prototypes, task.Count);

    // log sum exp of the task's logits in real units (negative free energy at temperature 1).
    private float EnergyScore(RoutedTask task)
    {
        byte[] arena = _executor.Arena;
        float max = float.NegativeInfinity;
        foreach (int c in task.Classes) max = Math.Max(max, _logitScale * ((sbyte)arena[_logitOffset + c] - _logitZero));
        double sum = 0;
        foreach (int c in task.Classes) sum += Math.Exp(_logitScale * ((sbyte)arena[_logitOffset + c] - _logitZero) - max);
        return max + (float)Math.Log(sum);
    }

    private float[]? Features()
    {
        var v = new float[_features];
        double length = 0;
        for (int i = 0; i < _features; i++)
        {
            v[i] = (sbyte)_executor.Arena[_featureOffset + i] - _featureZero;
            length += v[i] * v[i];
        }
        if (length == 0) return null;
        float inverse = (float)(1 / Math.Sqrt(length));
        for (int i = 0; i < v.Length; i++) v[i] *= inverse;
        return v;
    }

    private sealed record RoutedTask(string Name, byte[] Params, int[] Classes, sbyte[] Prototypes, int Count,
        float ProtoMean, float ProtoSpread, float EnergyMean, float EnergySpread, float Threshold);
}
