using System.Diagnostics;
using System.Globalization;
using TinyTrain.Adapters.Kinds;
using TinyTrain.Adapters.Packs;
using TinyTrain.Adapters.Routing;
using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Graphs;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Compiler.Training;
using TinyTrain.Compiler.Zoo;
using TinyTrain.Runtime.Execution;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

namespace TinyTrain.Bench;

/// <summary>
/// `continual`: learning new tasks one after another on the device (int8 runtime, batch 1) without
/// forgetting the old ones (issue 8).
///   split-fashion: cnn-s pretrained in float on MNIST (the device ships knowing digits), then Fashion-MNIST in
///     5 tasks of 2 classes (class order --order, default 0..9, or shuffled by --order-seed), --steps samples per
///     task seen once each. Scenarios task-il (the task is given: the answer is the larger of its two logits) and
///     class-il (no task given: shared methods answer over all 10 classes; adapter methods ask a router, swap
///     in the routed task's pack and answer over that task's classes; one row per router of --routers, default
///     gauss,base: GaussianRouter and the prototype TaskRouter; joint reports how often its answer falls in the right task).
///   rotated-mnist (domain-il): cnn-s pretrained on Fashion-MNIST, then MNIST rotated by 0/45/90/135/180 degrees,
///     one rotation per task, all 10 classes each; adapter methods route to the rotation.
/// Methods: finetune (every weight and bias shared, --update full), bias-only (shared biases + classifier,
/// --update bias:3), one pack per task for adapter:bias, adapter:clr, adapter:residual, adapter:lora:4, and joint
/// (every task's samples shuffled together, --update full, the same number of steps: the ceiling).
/// R[i][j] = accuracy on task j's test images after learning task i. Reported: average accuracy after the last
/// task, forgetting (mean over old tasks of best earlier accuracy minus last), backward transfer (mean of
/// R[T-1][j] - R[j][j]), parameters per task (what a task changes: its pack, or every trained parameter of a
/// shared method), SRAM to train (arena + writable parameters + state), router bytes per task and shared by all tasks.
/// </summary>
internal static class ContinualBench
{
    private static readonly string[] AllMethods = ["finetune", "bias-only", "adapter:bias", "adapter:clr", "adapter:residual", "adapter:lora:4", "joint"];
    private static readonly Dictionary<string, float> Rates = new()
    {
        ["finetune"] = 0.01f, ["bias-only"] = 0.01f, ["adapter:bias"] = 0.01f, ["adapter:clr"] = 0.01f,
        ["adapter:residual"] = 0.01f, ["adapter:lora:4"] = 0.05f, ["joint"] = 0.01f,
    };
    private const int Tasks = 5;
    private static readonly int[] Angles = [0, 45, 90, 135, 180];

    private sealed record TaskData(string Name, Dataset Train, Dataset Test, int[] Classes);

    private sealed record Setting(string Name, Graph Base, CalibrationSet Calibration, List<TaskData> Tasks, bool Domain);

    public sealed record Row(string Method, string Scenario, double AvgAccuracy, double Forgetting, double BackwardTransfer,
        long ParamsPerTask, int SramBytes, string Router, long RouterBytesPerTask, long RouterSharedBytes, double? RoutingAccuracy, float LearningRate, double[][] Accuracy);

    public static object Run(BenchArgs args)
    {
        int steps = args.Int("steps", 1000), test = args.Int("test", 500), seed = args.Int("seed", 0), protos = args.Int("prototypes", 4);
        string[] methods = args.Text("methods", string.Join(',', AllMethods)).Split(',');
        string[] settings = args.Text("settings", "split-fashion,rotated-mnist").Split(',');
        string[] routers = args.Text("routers", "gauss,base").Split(',');
        foreach (string r in routers)
            if (!Router.IsKnown(r)) throw new TinyTrainException($"continual: unknown router '{r}'; use gauss[:D[:shrinkage[:claim shrinkage]]] or base");
        foreach (string m in methods)
            if (!Rates.ContainsKey(m)) throw new TinyTrainException($"continual: unknown method '{m}'; known: {string.Join(", ", AllMethods)}");
        var clock = Stopwatch.StartNew();
        var rows = new List<Row>();
        foreach (string name in settings)
        {
            Setting setting = name switch
            {
                "split-fashion" => SplitFashion(args, steps, test, seed),
                "rotated-mnist" => RotatedMnist(args, steps, test, seed),
                _ => throw new TinyTrainException($"continual: unknown setting '{name}'; use split-fashion or rotated-mnist"),
            };
            var results = new Row[methods.Length][];
            Parallel.For(0, methods.Length, new ParallelOptions { MaxDegreeOfParallelism = 2 }, m =>
            {
                var watch = Stopwatch.StartNew();
                results[m] = RunMethod(setting, methods[m], steps, seed, protos, routers);
                args.Log($"{setting.Name} {methods[m]}: {string.Join(", ", results[m].Select(r => $"{r.Scenario} {r.AvgAccuracy:P1} (forgetting {r.Forgetting:P1})"))} in {watch.Elapsed.TotalSeconds:F0} s");
            });
            foreach (Row[] r in results) rows.AddRange(r);
        }
        Print(rows, args);
        return new
        {
            benchmark = "continual", steps_per_task = steps, test_per_task = test, seed, prototypes_per_class = protos,
            seconds = Math.Round(clock.Elapsed.TotalSeconds, 1), results = rows,
        };
    }

    private static Setting SplitFashion(BenchArgs args, int steps, int test, int seed)
    {
        Dataset digits = DataCatalog.Load("mnist", Split.Train), digitsTest = DataCatalog.Load("mnist", Split.Test);
        Graph graph = Pretrain(args, digits, digitsTest, args.Int("pretrain-epochs", 4));
        Dataset train = DataCatalog.Load("fashion-mnist", Split.Train), testSet = DataCatalog.Load("fashion-mnist", Split.Test);
        int[] order = ClassOrder(args, seed);
        var tasks = new List<TaskData>();
        for (int t = 0; t < Tasks; t++)
        {
            int[] classes = [order[2 * t], order[2 * t + 1]];
            tasks.Add(new TaskData($"fashion[{classes[0]},{classes[1]}]", train.Subset(Balanced(train, classes, steps)), testSet.Subset(Balanced(testSet, classes, test)), classes));
        }
        args.Log($"split-fashion: class order {string.Join(' ', order)}; {steps} training and {test} test images per task");
        return new Setting("split-fashion", graph, CalibrationSet.FromData(digits, graph.InputShape, 512), tasks, Domain: false);
    }

    private static Setting RotatedMnist(BenchArgs args, int steps, int test, int seed)
    {
        Dataset clothes = DataCatalog.Load("fashion-mnist", Split.Train), clothesTest = DataCatalog.Load("fashion-mnist", Split.Test);
        Graph graph = Pretrain(args, clothes.Take(args.Int("fashion-pretrain", 20_000)), clothesTest, args.Int("pretrain-epochs", 4));
        Dataset train = DataCatalog.Load("mnist", Split.Train), testSet = DataCatalog.Load("mnist", Split.Test);
        int per = Math.Min(steps, train.Count / Tasks);
        var tasks = new List<TaskData>();
        int[] all = Enumerable.Range(0, 10).ToArray();
        for (int t = 0; t < Tasks; t++)
        {
            // Each rotation learns from its own digits; every rotation is tested on the same digits, rotated.
            int[] slice = Enumerable.Range(t * (train.Count / Tasks), per).ToArray();
            tasks.Add(new TaskData($"mnist@{Angles[t]}", Rotate(train.Subset(slice), Angles[t]), Rotate(testSet.Take(test), Angles[t]), all));
        }
        return new Setting("rotated-mnist", graph, CalibrationSet.FromData(clothes, graph.InputShape, 512), tasks, Domain: true);
    }

    private static Graph Pretrain(BenchArgs args, Dataset train, Dataset test, int epochs)
    {
        var graph = ModelZoo.Build("cnn-s", classes: 10, seed: 0);
        TrainResult r = Trainer.Train(graph, train, test, new TrainOptions { Epochs = epochs, Seed = 0 });
        args.Log($"pretrained cnn-s on {train.Name} ({train.Count} images x {epochs} epochs): test {r.TestAccuracy:P2}");
        return graph;
    }

    private static int[] ClassOrder(BenchArgs args, int seed)
    {
        string text = args.Text("order", "");
        if (text.Length > 0)
        {
            int[] order = Array.ConvertAll(text.Split(','), int.Parse);
            if (order.Length != 10 || order.Distinct().Count() != 10 || order.Any(c => c is < 0 or > 9))
                throw new TinyTrainException($"--order {text}: give the 10 classes 0..9 once each, e.g. 0,1,2,3,4,5,6,7,8,9");
            return order;
        }
        int orderSeed = args.Int("order-seed", -1);
        int[] classes = Enumerable.Range(0, 10).ToArray();
        if (orderSeed >= 0) new Random(orderSeed).Shuffle(classes);
        return classes;
    }

    // The first n/2 images of each of two classes (the split's fixed shuffle makes these a fair sample), interleaved.
    private static int[] Balanced(Dataset data, int[] classes, int n)
    {
        var lists = classes.Select(c => Enumerable.Range(0, data.Count).Where(i => data.Labels[i] == c).Take(n / classes.Length).ToArray()).ToArray();
        var mixed = new List<int>();
        for (int i = 0; i < lists.Max(l => l.Length); i++)
            foreach (int[] l in lists)
                if (i < l.Length) mixed.Add(l[i]);
        return mixed.ToArray();
    }

    // Nearest-neighbour rotation about the image centre; what leaves the frame is black.
    private static Dataset Rotate(Dataset data, int degrees)
    {
        int rows = data.Rows, cols = data.Cols, size = rows * cols;
        double a = degrees * Math.PI / 180, cos = Math.Cos(a), sin = Math.Sin(a), cy = (rows - 1) / 2.0, cx = (cols - 1) / 2.0;
        byte[] images = new byte[data.Images.Length];
        for (int n = 0; n < data.Count; n++)
            for (int y = 0; y < rows; y++)
                for (int x = 0; x < cols; x++)
                {
                    double sx = cos * (x - cx) + sin * (y - cy) + cx, sy = -sin * (x - cx) + cos * (y - cy) + cy;
                    int ix = (int)Math.Round(sx), iy = (int)Math.Round(sy);
                    if (ix >= 0 && ix < cols && iy >= 0 && iy < rows) images[n * size + y * cols + x] = data.Images[n * size + iy * cols + ix];
                }
        return new Dataset($"{data.Name}@{degrees}", data.Split, images, (byte[])data.Labels.Clone(), data.ClassNames, rows, cols);
    }

    private static Row[] RunMethod(Setting s, string method, int steps, int seed, int protos, string[] routerNames)
    {
        float lr = Rates[method];
        bool adapter = AdapterSpec.IsAdapter(method);
        CompileResult compiled = adapter
            ? AdapterCompiler.Compile(s.Base, s.Calibration, AdapterSpec.Parse(method))
            : PlanCompiler.Compile(s.Base, s.Calibration, new CompileOptions { Update = method == "bias-only" ? "bias:3" : "full" });
        var plan = PlanImage.Load(compiled.Image, method);
        AdapterLayout layout = AdapterLayout.Of(plan);
        var executor = new Executor(plan) { LearningRate = lr };
        executor.Seed((uint)seed * 2654435761u + 1);
        var quantizer = InputQuantizer.For(plan);
        byte[] input = new byte[quantizer.Length];
        int T = s.Tasks.Count;
        var random = new Random(seed);

        void Train(Dataset data, int count)
        {
            int[] order = Enumerable.Range(0, data.Count).ToArray();
            random.Shuffle(order);
            for (int k = 0; k < count; k++)
            {
                int i = order[k % order.Length];
                quantizer.Fill(data, i, input, 0);
                executor.SetInput(input, 0);
                executor.TrainStep(data.Labels[i]);
            }
        }

        // Accuracy over task j's test images with the executor's parameters: the answer is the best logit among `classes`.
        double Accuracy(TaskData task, int[] classes, bool[]? selected = null)
        {
            int correct = 0;
            for (int i = 0; i < task.Test.Count; i++)
            {
                if (selected is not null && !selected[i]) continue;
                quantizer.Fill(task.Test, i, input, 0);
                executor.SetInput(input, 0);
                executor.Invoke();
                int best = classes[0];
                foreach (int c in classes)
                    if (executor.Output(c) > executor.Output(best)) best = c;
                if (best == task.Test.Labels[i]) correct++;
            }
            return correct;
        }

        // Whether each of task j's test images is answered right with the executor's parameters over `classes`.
        bool[] Answers(TaskData task, int[] classes)
        {
            var right = new bool[task.Test.Count];
            for (int i = 0; i < task.Test.Count; i++)
            {
                quantizer.Fill(task.Test, i, input, 0);
                executor.SetInput(input, 0);
                executor.Invoke();
                int best = classes[0];
                foreach (int c in classes)
                    if (executor.Output(c) > executor.Output(best)) best = c;
                right[i] = best == task.Test.Labels[i];
            }
            return right;
        }

        int[] allClasses = Enumerable.Range(0, 10).ToArray();
        var given = new double[T][];   // task-il (or domain-il for shared methods)
        var inferred = new double[T][];   // class-il / domain-il over all classes (shared methods)
        double? jointRouting = null;
        var routed = new List<(string Router, double[][] R, double Accuracy, long Bytes, long Shared)>();   // adapters, per router
        string givenScenario = s.Domain ? "domain-il" : "task-il", inferredScenario = s.Domain ? "domain-il" : "class-il";

        if (method == "joint")
        {
            // Every task's samples together, the same number of steps in all.
            var pooled = new List<(Dataset Data, int Index)>();
            foreach (TaskData t in s.Tasks)
                for (int i = 0; i < t.Train.Count; i++) pooled.Add((t.Train, i));
            var order = pooled.ToArray();
            random.Shuffle(order);
            for (int k = 0; k < steps * T; k++)
            {
                (Dataset d, int i) = order[k % order.Length];
                quantizer.Fill(d, i, input, 0);
                executor.SetInput(input, 0);
                executor.TrainStep(d.Labels[i]);
            }
            double[] g = s.Tasks.Select(t => Accuracy(t, t.Classes) / t.Test.Count).ToArray();
            double[] all = s.Tasks.Select(t => Accuracy(t, allClasses) / t.Test.Count).ToArray();
            for (int i = 0; i < T; i++) { given[i] = g; inferred[i] = all; }
            // The ceiling's own task routing: how often its answer over all classes falls in the right task.
            int inTask = 0, images = 0;
            foreach (TaskData t in s.Tasks)
                for (int i = 0; i < t.Test.Count; i++, images++)
                {
                    quantizer.Fill(t.Test, i, input, 0);
                    executor.SetInput(input, 0);
                    executor.Invoke();
                    if (t.Classes.Contains(executor.ArgMax())) inTask++;
                }
            jointRouting = (double)inTask / images;
        }
        else if (!adapter)
        {
            for (int i = 0; i < T; i++)
            {
                Train(s.Tasks[i].Train, steps);
                given[i] = s.Tasks.Select((t, j) => j <= i ? Accuracy(t, t.Classes) / t.Test.Count : double.NaN).ToArray();
                inferred[i] = s.Tasks.Select((t, j) => j <= i ? Accuracy(t, allClasses) / t.Test.Count : double.NaN).ToArray();
            }
        }
        else
        {
            // correct[r][j][k]: does task r's pack answer test image k of task j right over task r's classes?
            var correct = new bool[T][][];
            var routers = routerNames.Select(name => Router.Create(name, s, protos)).ToArray();
            var routedRight = new int[routers.Length];
            var routedAll = new int[routers.Length];
            var inferredBy = routers.Select(_ => new double[T][]).ToArray();
            for (int i = 0; i < T; i++)
            {
                executor.Reset();
                Train(s.Tasks[i].Train, steps);
                TaskData task = s.Tasks[i];
                AdapterPack pack = layout.Capture(executor, $"task{i}", steps);
                correct[i] = s.Tasks.Select(t => Answers(t, task.Classes)).ToArray();
                given[i] = new double[T];
                Array.Fill(given[i], double.NaN);
                for (int j = 0; j <= i; j++) given[i][j] = correct[j][j].Count(b => b) / (double)s.Tasks[j].Test.Count;
                int[] indices = Enumerable.Range(0, Math.Min(task.Train.Count, 1000)).ToArray();
                for (int v = 0; v < routers.Length; v++)
                {
                    routers[v].Add(task, indices);
                    inferredBy[v][i] = new double[T];
                    Array.Fill(inferredBy[v][i], double.NaN);
                    routedRight[v] = routedAll[v] = 0;
                    for (int j = 0; j <= i; j++)
                    {
                        // No task label: route each image, then answer with the routed task's pack over its classes.
                        TaskData t = s.Tasks[j];
                        int right = 0;
                        for (int k = 0; k < t.Test.Count; k++)
                        {
                            int to = routers[v].Best(t.Test, k);
                            if (to == j) routedRight[v]++;
                            routedAll[v]++;
                            if (correct[to][j][k]) right++;
                        }
                        inferredBy[v][i][j] = (double)right / t.Test.Count;
                    }
                }
            }
            for (int v = 0; v < routers.Length; v++)
                routed.Add((routers[v].Name, inferredBy[v], (double)routedRight[v] / routedAll[v], routers[v].BytesPerTask, routers[v].SharedBytes));
        }

        long parameters = layout.ParameterCount;
        int sram = compiled.Plan.SramBytes;
        var rows = new List<Row>();
        if (!s.Domain) rows.Add(Summarize(method, givenScenario, given, parameters, sram, "", 0, 0, null, lr));
        if (!adapter) rows.Add(Summarize(method, inferredScenario, s.Domain ? given : inferred, parameters, sram, "", 0, 0, s.Domain ? null : jointRouting, lr));
        foreach ((string name, double[][] r, double accuracy, long bytes, long shared) in routed)
            rows.Add(Summarize(method, inferredScenario, r, parameters, sram, name, bytes, shared, accuracy, lr));
        return rows.ToArray();
    }

    private static Row Summarize(string method, string scenario, double[][] r, long parameters, int sram, string router, long routerBytes, long routerShared, double? routing, float lr)
    {
        int T = r.Length;
        double avg = 0, forgetting = 0, bwt = 0;
        for (int j = 0; j < T; j++) avg += r[T - 1][j] / T;
        for (int j = 0; j < T - 1; j++)
        {
            double best = double.MinValue;
            for (int i = j; i < T - 1; i++) best = Math.Max(best, r[i][j]);
            forgetting += Math.Max(0, best - r[T - 1][j]) / (T - 1);
            bwt += (r[T - 1][j] - r[j][j]) / (T - 1);
        }
        if (method == "joint") { forgetting = 0; bwt = 0; }
        return new Row(method, scenario, Math.Round(avg, 4), Math.Round(forgetting, 4), Math.Round(bwt, 4), parameters, sram, router, routerBytes, routerShared,
            routing is null ? null : Math.Round(routing.Value, 4), lr, r.Select(row => row.Select(v => double.IsNaN(v) ? -1 : Math.Round(v, 4)).ToArray()).ToArray());
    }

    private static void Print(List<Row> rows, BenchArgs args)
    {
        var c = CultureInfo.InvariantCulture;
        args.Log("");
        args.Log($"{"scenario",-10} {"method",-17} {"router",-16} {"avg acc",8} {"forget",7} {"BWT",7} {"params/task",11} {"SRAM B",8} {"router B",8} {"shared B",8} {"routing",8}");
        foreach (string scenario in new[] { "task-il", "class-il", "domain-il" })
        {
            double joint = rows.FirstOrDefault(r => r.Scenario == scenario && r.Method == "joint")?.AvgAccuracy ?? double.NaN;
            foreach (Row r in rows.Where(r => r.Scenario == scenario))
                args.Log(string.Format(c, "{0,-10} {1,-17} {2,-16} {3,7:P1} {4,7:P1} {5,7:P1} {6,11:N0} {7,8:N0} {8,8:N0} {9,8:N0} {10,8} {11}", r.Scenario, r.Method, r.Router, r.AvgAccuracy,
                    r.Forgetting, r.BackwardTransfer, r.ParamsPerTask, r.SramBytes, r.RouterBytesPerTask, r.RouterSharedBytes,
                    r.RoutingAccuracy is null ? "" : r.RoutingAccuracy.Value.ToString("P1", c),
                    double.IsNaN(joint) || r.Method == "joint" ? "" : string.Format(c, "({0:P0} of joint)", r.AvgAccuracy / joint)));
        }
    }
    /// <summary>
    /// A router under test: `gauss[:D[:shrinkage[:claim shrinkage]]]` (GaussianRouter: streaming LDA on the base model's
    /// features projected to D, defaults 256, 0.01, 0.5) or `base` (TaskRouter: int8 prototypes of the base model's features). Both run the base model once.
    /// </summary>
    private sealed class Router
    {
        public static bool IsKnown(string name) => name is "base" or "gauss" || name.StartsWith("gauss:", StringComparison.Ordinal);

        private TaskRouter? _base;
        private GaussianRouter? _gauss;
        private int _protos;

        public string Name { get; private init; } = "";

        public static Router Create(string name, Setting s, int protos)
        {
            var r = new Router { Name = name, _protos = protos };
            var basePlan = PlanImage.Load(PlanCompiler.Compile(s.Base, s.Calibration, new CompileOptions()).Image, "base");
            if (name == "base")
            {
                r._base = new TaskRouter(basePlan);
                return r;
            }
            string[] parts = name.Split(':');
            int dims = parts.Length > 1 ? int.Parse(parts[1], CultureInfo.InvariantCulture) : GaussianRouter.DefaultDimensions;
            float shrink = parts.Length > 2 ? float.Parse(parts[2], CultureInfo.InvariantCulture) : GaussianRouter.DefaultShrinkage;
            float claim = parts.Length > 3 ? float.Parse(parts[3], CultureInfo.InvariantCulture) : GaussianRouter.DefaultClaimShrinkage;
            r._gauss = new GaussianRouter(basePlan, dims, shrink, claim);
            return r;
        }

        public void Add(TaskData task, int[] indices)
        {
            if (_gauss is not null) _gauss.AddTask(task.Name, task.Train, indices);
            else _base!.AddTask(task.Name, task.Train, indices, prototypesPerClass: _protos);
        }

        /// <summary>The best-scoring task for a test image (a task must be chosen to answer).</summary>
        public int Best(Dataset data, int index)
        {
            if (_gauss is not null)
            {
                _gauss.Route(data, index);
                return _gauss.Best();
            }
            _base!.Route(data, index);
            return _base.Best();
        }

        public long BytesPerTask => _gauss?.StateBytes(0) ?? _base!.StateBytes(0);
        public long SharedBytes => _gauss?.SharedBytes ?? 0;
    }
}
