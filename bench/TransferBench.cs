using System.Collections.Concurrent;
using System.Diagnostics;
using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Graphs;
using TinyTrain.Compiler.Learning;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Compiler.Training;
using TinyTrain.Compiler.Zoo;
using TinyTrain.Runtime.Execution;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

namespace TinyTrain.Bench;

/// <summary>
/// `transfer`: the paper's claim on real data. cnn-s is pretrained in float on Fashion-MNIST (once per
/// run, pretraining seed 0), then adapted to MNIST at batch 1 by five methods for the same steps, sample
/// order and seeds:
///   float_full         float SGD on the BatchNorm-folded graph, every parameter;
///   float_sparse       the same, gradients masked to the sparse scheme (FloatTrainableMask);
///   int8_sparse_noqas  the int8 plan of the scheme, updates in the int8 domain without QAS;
///   int8_sparse_qas    the same plan with Quantization-Aware Scaling;
///   bias_only          int8 plan, bias:K (every conv's bias) + classifier, QAS;
/// and int8_sparse_noqas_wide, the no-QAS plan with its rate also searched far above float's grid.
/// Every update is plain SGD (no momentum, no weight decay), as on the device. The int8 plans are
/// calibrated on the pretraining data (Fashion-MNIST): the device is compiled before it sees MNIST.
/// Each method's learning rate is chosen from a grid (--lrs) by accuracy on a validation slice of
/// MNIST's train split (its last --val samples, never trained on), averaged over the selection seeds
/// (--select-seeds; the first seed by default); the test split is only reported, at the chosen rate.
/// </summary>
internal static class TransferBench
{
    private static readonly string[] Methods = { "float_full", "float_sparse", "int8_sparse_noqas", "int8_sparse_qas", "bias_only" };
    /// <summary>
    /// No QAS with the rates it needs: without QAS a real step is lr * s^2 * g, s the int8 scale (weights ~1e-3,
    /// biases ~4e-5 here), so the float grid cannot move it; this row also tries --wide-lrs, to show what QAS buys
    /// beyond a rescaled rate (one rate for every tensor, whose scales differ).
    /// </summary>
    private const string NoQasWide = "int8_sparse_noqas_wide";
    private static readonly string[] Reported = [.. Methods, NoQasWide];

    public static object Run(BenchArgs args)
    {
        bool mini = HasFlag("mini");
        int steps = args.Int("steps", 2000);
        int[] seeds = Array.ConvertAll(args.Text("seeds", "0,1,2").Split(','), int.Parse);
        // The rate is chosen on the first seed by default (the grid costs a run per rate); --select-seeds all uses every seed.
        string select = args.Text("select-seeds", seeds[0].ToString(System.Globalization.CultureInfo.InvariantCulture));
        int[] selectSeeds = select == "all" ? seeds : Array.ConvertAll(select.Split(','), int.Parse);
        float[] grid = Array.ConvertAll(args.Text("lrs", "0.001,0.003,0.01,0.03,0.1").Split(','),
            s => float.Parse(s, System.Globalization.CultureInfo.InvariantCulture));
        Array.Sort(grid);
        float[] wideExtra = Array.ConvertAll(args.Text("wide-lrs", "1,10,100,1000,10000").Split(','),
            s => float.Parse(s, System.Globalization.CultureInfo.InvariantCulture));
        string sourceName = mini ? "fashion-mnist-mini" : "fashion-mnist", targetName = mini ? "mnist-mini" : "mnist";
        string schemePath = args.Text("scheme", SchemeFile("cnn-s.json"));
        var clock = Stopwatch.StartNew();

        Dataset sourceTrain = DataCatalog.Load(sourceName, Split.Train), sourceTest = DataCatalog.Load(sourceName, Split.Test);
        Dataset targetAll = DataCatalog.Load(targetName, Split.Train), targetTest = DataCatalog.Load(targetName, Split.Test);
        int valCount = Math.Min(args.Int("val", mini ? 500 : 1000), targetAll.Count / 2);
        // The split's order is a fixed shuffle with class-balanced prefixes, so its tail is a fair validation slice.
        Dataset pool = targetAll.Take(targetAll.Count - valCount);
        Dataset validation = targetAll.Subset(Enumerable.Range(targetAll.Count - valCount, valCount).ToArray());

        // Pretrain once; every method and seed starts from this model.
        int epochs = args.Int("pretrain-epochs", mini ? 8 : TrainOptions.DefaultEpochs(sourceTrain.Count));
        var graph = ModelZoo.Build("cnn-s", classes: 10, seed: 0);
        TrainResult pre = Trainer.Train(graph, sourceTrain, sourceTest, new TrainOptions { Epochs = epochs, Seed = 0 },
            onEpoch: e => args.Log($"pretrain {sourceName} epoch {e.Epoch}/{e.Epochs}: loss {e.Loss:F4} test {e.TestAccuracy:P2}"));
        args.Log($"pretrained cnn-s on {sourceName} ({sourceTrain.Count} samples x {epochs} epochs): test {pre.TestAccuracy:P2} in {pre.Elapsed.TotalSeconds:F0} s");

        SparseScheme scheme = SparseScheme.Load(schemePath);
        var calibration = CalibrationSet.FromData(sourceTrain, graph.InputShape, 512);
        CompileResult Compile(bool qas, string? update) => PlanCompiler.Compile(graph, calibration, new CompileOptions
        {
            Update = update ?? "none",
            Trainable = update is null ? m => TrainableSet.FromScheme(scheme, m, Path.GetFileName(schemePath)) : null,
            Training = new TrainingOptions { Qas = qas, Momentum = false },
        });
        CompileResult sparseQas = Compile(qas: true, update: null);
        CompileResult sparseNoQas = Compile(qas: false, update: null);
        int convs = TrainableSet.ConvOps(sparseQas.Model).Count;
        CompileResult biasOnly = Compile(qas: true, update: $"bias:{convs}");
        var plans = new Dictionary<string, PlanImage>
        {
            ["int8_sparse_noqas"] = PlanImage.Load(sparseNoQas.Image, "int8_sparse_noqas"),
            ["int8_sparse_qas"] = PlanImage.Load(sparseQas.Image, "int8_sparse_qas"),
            ["bias_only"] = PlanImage.Load(biasOnly.Image, "bias_only"),
        };
        Graph folded = sparseQas.Folded;
        TrainableSet sparseSet = TrainableSet.FromScheme(scheme, sparseQas.Model, Path.GetFileName(schemePath));
        int floatSparseCount = new FloatTrainableMask(folded, sparseQas.Model, sparseSet).TrainedCount;
        args.Log($"scheme {schemePath}: n_bias_update {scheme.NBiasUpdate}, manual_weight_idx [{string.Join(",", scheme.ManualWeightIdx)}], " +
            $"weight_update_ratio [{string.Join(",", scheme.WeightUpdateRatio)}]; trains {floatSparseCount:N0} of {folded.ParameterCount():N0} parameters " +
            $"(int8 plan: {plans["int8_sparse_qas"].SramParamBytes:N0} B of writable parameters)");
        args.Log(ScaleSummary(sparseQas.Model, sparseSet));
        args.Log($"before adaptation on {targetName} test ({targetTest.Count}): float {Trainer.Evaluate(folded, targetTest):P2}, " +
            $"int8 {PlanEvaluator.Evaluate(plans["int8_sparse_qas"], targetTest).Accuracy:P2}");
        args.Log($"adapting on {targetName}: {pool.Count} train samples, {validation.Count} validation (train split tail), {targetTest.Count} test; " +
            $"{steps} steps at batch 1, seeds {string.Join(",", seeds)}, lr grid {string.Join(",", grid)} chosen on seeds {string.Join(",", selectSeeds)}; " +
            $"{Environment.ProcessorCount} cores");

        // Every (method, lr, seed) run is independent and deterministic, so they run side by side on all cores.
        // Phase 1 tries every rate of each method's grid on the selection seeds; phase 2 runs the other seeds at the chosen rates.
        var grids = new Dictionary<string, float[]>();
        foreach (string method in Methods) grids[method] = grid;
        grids[NoQasWide] = grid.Union(wideExtra).Distinct().Order().ToArray();
        var outcomes = new Dictionary<Trial, Outcome>();
        var runner = new Runner(folded, sparseQas.Model, sparseSet, plans, pool, validation, targetTest, steps);
        var phase1 = new List<Trial>();
        foreach (string method in Reported)
            foreach (float lr in grids[method])
                foreach (int seed in selectSeeds)
                    phase1.Add(new Trial(Engine(method), lr, seed));
        runner.RunAll(args, phase1, outcomes);

        // Choose each method's rate by mean validation accuracy over the selection seeds (the smaller rate on a tie).
        var chosen = new Dictionary<string, float>();
        var valGrid = new Dictionary<string, Dictionary<string, double>>();
        foreach (string method in Reported)
        {
            valGrid[method] = new Dictionary<string, double>();
            double best = double.NegativeInfinity;
            foreach (float lr in grids[method])
            {
                double mean = selectSeeds.Average(seed => outcomes[new Trial(Engine(method), lr, seed)].Validation);
                valGrid[method][Text(lr)] = Math.Round(mean, 4);
                if (mean > best)
                {
                    best = mean;
                    chosen[method] = lr;
                }
            }
        }
        args.Log("chosen learning rates (validation): " + string.Join(", ", Reported.Select(m => $"{m} {Text(chosen[m])}")));
        var phase2 = new List<Trial>();
        foreach (string method in Reported)
            foreach (int seed in seeds)
                phase2.Add(new Trial(Engine(method), chosen[method], seed));
        runner.RunAll(args, phase2, outcomes);

        var perSeed = new List<Dictionary<string, object>>();
        foreach (int seed in seeds)
        {
            var row = new Dictionary<string, object> { ["seed"] = seed };
            foreach (string method in Reported)
                row[method] = Math.Round(outcomes[new Trial(Engine(method), chosen[method], seed)].Test, 4);
            perSeed.Add(row);
        }
        var means = new Dictionary<string, double>();
        foreach (string method in Reported)
            means[method] = seeds.Average(seed => outcomes[new Trial(Engine(method), chosen[method], seed)].Test);

        PrintTables(args, grids[NoQasWide], seeds, valGrid, chosen, perSeed, means, clock.Elapsed);

        var result = new Dictionary<string, object>
        {
            ["benchmark"] = "transfer",
            ["model"] = "cnn-s",
            ["source"] = sourceName,
            ["target"] = targetName,
            ["steps"] = steps,
            ["seeds"] = seeds,
            ["selection_seeds"] = selectSeeds,
            ["lr"] = chosen.ToDictionary(kv => kv.Key, kv => (double)(decimal)kv.Value),
        };
        foreach (string method in Reported) result[method] = Math.Round(means[method], 4);
        result["per_seed"] = perSeed;
        result["pretrain_test_accuracy"] = Math.Round(pre.TestAccuracy, 4);
        result["validation_accuracy"] = valGrid;
        result["train_samples"] = pool.Count;
        result["validation_samples"] = validation.Count;
        result["test_samples"] = targetTest.Count;
        result["seconds"] = Math.Round(clock.Elapsed.TotalSeconds, 1);
        return result;
    }

    /// <summary>One adaptation trial: an engine (a float mode or an int8 plan), a learning rate, a seed.</summary>
    private readonly record struct Trial(string Engine, float Lr, int Seed);

    /// <summary>What runs a reported method: the wide-grid no-QAS row is the no-QAS plan with more rates tried.</summary>
    private static string Engine(string method) => method == NoQasWide ? "int8_sparse_noqas" : method;

    private static string Text(float lr) => lr.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private sealed class Runner(Graph folded, QuantizedModel model, TrainableSet sparseSet, Dictionary<string, PlanImage> plans,
        Dataset pool, Dataset validation, Dataset test, int steps)
    {
        /// <summary>Runs those not run yet on all cores, the int8 ones (the slowest) first.</summary>
        public void RunAll(BenchArgs args, List<Trial> runs, Dictionary<Trial, Outcome> outcomes)
        {
            Trial[] todo = runs.Distinct().Where(r => !outcomes.ContainsKey(r))
                .OrderBy(r => r.Engine.StartsWith("float", StringComparison.Ordinal) ? 1 : 0).ToArray();
            var results = new Outcome[todo.Length];
            int done = 0;
            Parallel.ForEach(Partitioner.Create(Enumerable.Range(0, todo.Length), EnumerablePartitionerOptions.NoBuffering),
                new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, j =>
            {
                Trial run = todo[j];
                var runClock = Stopwatch.StartNew();
                Outcome o = run.Engine switch
                {
                    "float_full" => AdaptFloat(folded, null, pool, validation, test, steps, run.Lr, run.Seed),
                    "float_sparse" => AdaptFloat(folded, g => new FloatTrainableMask(g, model, sparseSet), pool, validation, test, steps, run.Lr, run.Seed),
                    _ => AdaptInt8(plans[run.Engine], pool, validation, test, steps, run.Lr, run.Seed),
                };
                results[j] = o;
                int n = Interlocked.Increment(ref done);
                args.Log($"[{n}/{todo.Length}] {run.Engine,-17} lr {Text(run.Lr),-6} seed {run.Seed}: val {o.Validation:P2} test {o.Test:P2} " +
                    $"mean loss {o.MeanLoss:F3}{(o.Diverged ? " DIVERGED" : "")} ({runClock.Elapsed.TotalSeconds:F1} s)");
            });
            for (int j = 0; j < todo.Length; j++) outcomes[todo[j]] = results[j];
        }
    }

    private sealed record Outcome(float Validation, float Test, float MeanLoss, bool Diverged);

    /// <summary>The sample order of a seed: DeviceTraining's (a seeded shuffle of the pool, reshuffled each pass).</summary>
    private static int NextIndex(int step, int[] order, Random random)
    {
        if (step > 0 && step % order.Length == 0) random.Shuffle(order);
        return order[step % order.Length];
    }

    private static (int[] Order, Random Random) Order(int count, int seed)
    {
        int[] order = new int[count];
        for (int i = 0; i < count; i++) order[i] = i;
        var random = new Random(seed);
        random.Shuffle(order);
        return (order, random);
    }

    private static Outcome AdaptInt8(PlanImage plan, Dataset train, Dataset validation, Dataset test, int steps, float lr, int seed)
    {
        // The plans keep no momentum state, so the update is plain SGD whatever Momentum says; 0 says so.
        var executor = new Executor(plan) { LearningRate = lr, Momentum = 0f };
        executor.Seed((uint)seed * 2654435761u + 1);
        var quantizer = InputQuantizer.For(plan);
        byte[] input = new byte[quantizer.Length];
        (int[] order, Random random) = Order(train.Count, seed);
        double lossSum = 0;
        for (int step = 0; step < steps; step++)
        {
            int index = NextIndex(step, order, random);
            quantizer.Fill(train, index, input, 0);
            executor.SetInput(input, 0);
            lossSum += executor.TrainStep(train.Labels[index]);
        }
        return new Outcome(DeviceTraining.EvaluateTrained(executor, validation), DeviceTraining.EvaluateTrained(executor, test),
            steps == 0 ? 0f : (float)(lossSum / steps), false);
    }

    private static Outcome AdaptFloat(Graph folded, Func<Graph, FloatTrainableMask>? mask, Dataset train, Dataset validation, Dataset test,
        int steps, float lr, int seed)
    {
        Graph graph = folded.Clone();
        FloatTrainableMask? keep = mask?.Invoke(graph);
        var net = new FloatNetwork(graph, 1);
        var sgd = new Sgd(graph, momentum: 0f, weightDecay: 0f);
        int k = graph.NumClasses;
        byte[] label = new byte[1];
        float[] dLogits = new float[k];
        (int[] order, Random random) = Order(train.Count, seed);
        double lossSum = 0;
        for (int step = 0; step < steps; step++)
        {
            int index = NextIndex(step, order, random);
            InputLayout.Fill(train, index, graph.InputShape, net.InputBuffer, 0);
            label[0] = train.Labels[index];
            float[] logits = net.Forward(1, training: true);
            float loss = SoftmaxCrossEntropy.Compute(logits, label, 1, k, dLogits, out _);
            if (!float.IsFinite(loss)) return new Outcome(0f, 0f, float.NaN, true);
            lossSum += loss;
            net.Backward(dLogits, 1);
            keep?.Apply(net.Gradients);
            sgd.Step(net.Gradients, lr);
        }
        return new Outcome(Trainer.Evaluate(graph, validation), Trainer.Evaluate(graph, test), steps == 0 ? 0f : (float)(lossSum / steps), false);
    }

    private static void PrintTables(BenchArgs args, float[] lrs, int[] seeds, Dictionary<string, Dictionary<string, double>> valGrid,
        Dictionary<string, float> chosen, List<Dictionary<string, object>> perSeed, Dictionary<string, double> means, TimeSpan elapsed)
    {
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        args.Log("");
        args.Log("MNIST validation accuracy (train-split tail; mean over the selection seeds) by learning rate; * = chosen");
        args.Log($"{"method",-24}" + string.Concat(lrs.Select(lr => $"{Text(lr),9}")));
        foreach (string method in Reported)
            args.Log($"{method,-24}" + string.Concat(lrs.Select(lr => !valGrid[method].TryGetValue(Text(lr), out double v) ? $"{"",9}"
                : $"{(lr == chosen[method] ? "*" : "") + (100 * v).ToString("F2", inv),9}")));
        args.Log("");
        args.Log("MNIST test accuracy at the chosen learning rate");
        args.Log($"{"method",-24}{"lr",8}" + string.Concat(seeds.Select(s => $"{"seed " + s,10}")) + $"{"mean",10}");
        foreach (string method in Reported)
            args.Log($"{method,-24}{Text(chosen[method]),8}" +
                string.Concat(perSeed.Select(r => $"{(100 * (double)r[method]).ToString("F2", inv),10}")) + $"{(100 * means[method]).ToString("F2", inv),10}");
        args.Log("");
        string Gap(string a, string b) => $"{a} - {b}: {100 * (means[a] - means[b]):+0.00;-0.00} points";
        args.Log($"{Gap("int8_sparse_qas", "float_sparse")}; {Gap("int8_sparse_qas", "int8_sparse_noqas")}; " +
            $"{Gap("int8_sparse_qas", NoQasWide)} (total {elapsed.TotalSeconds:F0} s)");
    }

    /// <summary>
    /// The int8 scales of what the scheme trains. Without QAS a step changes a real weight by lr * s_w^2 * g and a
    /// real bias by lr * s_b^2 * g (s_b = s_x s_w): this says how much smaller than float SGD's lr * g that is.
    /// </summary>
    private static string ScaleSummary(QuantizedModel model, TrainableSet set)
    {
        var parts = new List<string>();
        for (int i = 0; i < model.Ops.Count; i++)
        {
            OpTraining t = set.PerOp[i];
            QOp op = model.Ops[i];
            if (!t.Any || op.WeightScale is null) continue;
            float[] sw = (float[])op.WeightScale.Clone();
            Array.Sort(sw);
            double median = sw[sw.Length / 2], sx = model.Tensors[op.Inputs[0]].Scale;
            parts.Add($"{op.Name} " + (t.WeightChannels > 0 ? $"s_w^2 {median * median:0.0E+0} " : "") + (t.Bias ? $"s_b^2 {median * median * sx * sx:0.0E+0}" : ""));
        }
        return "without QAS a real step is lr x s^2 x g; medians: " + string.Join("; ", parts);
    }

    /// <summary>A bare flag such as --mini (BenchArgs reads only options with values and --json).</summary>
    internal static bool HasFlag(string name) => Environment.GetCommandLineArgs().Contains("--" + name);

    /// <summary>bench/schemes/NAME, found from the working directory or the build output upwards.</summary>
    internal static string SchemeFile(string name)
    {
        foreach (string start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (DirectoryInfo? dir = new(start); dir is not null; dir = dir.Parent)
            {
                string path = Path.Combine(dir.FullName, "bench", "schemes", name);
                if (File.Exists(path)) return path;
                path = Path.Combine(dir.FullName, "schemes", name);
                if (File.Exists(path) && dir.Name == "bench") return path;
            }
        }
        throw new TinyTrain.TinyTrainException($"bench/schemes/{name} not found from {Directory.GetCurrentDirectory()}; pass --scheme <file>");
    }
}
