using System.Diagnostics;
using System.Globalization;
using TinyTrain.Compiler.Boards;
using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Learning;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Compiler.Training;
using TinyTrain.Compiler.Zoo;
using TinyTrain.Runtime.Execution;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

namespace TinyTrain.Bench;

/// <summary>
/// `auto-scheme`: does `sparse:auto` choose well? A zoo model (mbv2-w0.35 at 32x32 by default) is
/// pretrained in float on Fashion-MNIST, quantized (calibrated on Fashion-MNIST), then adapted to MNIST
/// at batch 1 by the int8 runtime under several SRAM budgets. At each budget three trainable sets are
/// compared, each the largest of its family that fits:
///   auto       sparse:auto, scored on 128 labelled MNIST training samples;
///   bias_k     bias:K (the biases of the last K convs) + classifier;
///   last_k     the last K convs' weights and biases in full + classifier;
/// plus the classifier alone (the smallest plan). Every run: same steps, sample order and seeds; the
/// learning rate of each run is chosen from --lrs on a validation slice of MNIST's train split (its
/// tail, never trained on), and the test split is reported at that rate.
/// </summary>
internal static class AutoSchemeBench
{
    public static object Run(BenchArgs args)
    {
        string modelName = args.Text("model", "mbv2-w0.35");
        int resolution = args.Int("resolution", 32);
        int steps = args.Int("steps", 1500);
        int evalCount = args.Int("eval", 2000);
        int valCount = args.Int("val", 1000);
        int seed = args.Int("seed", 0);
        float[] grid = Array.ConvertAll(args.Text("lrs", "0.003,0.01,0.03").Split(','), s => float.Parse(s, CultureInfo.InvariantCulture));
        long[] budgets = Array.ConvertAll(args.Text("budgets", "20KB,28KB,40KB,64KB").Split(','),
            s => ByteSize.Parse(s) ?? throw new TinyTrain.TinyTrainException($"--budgets: '{s}' is not a byte count"));
        var clock = Stopwatch.StartNew();

        Dataset sourceTrain = DataCatalog.Load("fashion-mnist", Split.Train), sourceTest = DataCatalog.Load("fashion-mnist", Split.Test);
        Dataset targetAll = DataCatalog.Load("mnist", Split.Train), targetTest = DataCatalog.Load("mnist", Split.Test);
        valCount = Math.Min(valCount, targetAll.Count / 2);
        Dataset pool = targetAll.Take(targetAll.Count - valCount);
        Dataset validation = targetAll.Subset(Enumerable.Range(targetAll.Count - valCount, valCount).ToArray());
        Dataset test = targetTest.Take(Math.Min(evalCount, targetTest.Count));

        var graph = ModelZoo.Build(modelName, resolution, 10, seed: 0);
        int epochs = args.Int("pretrain-epochs", 1);
        TrainResult pre = Trainer.Train(graph, sourceTrain, sourceTest, new TrainOptions { Epochs = epochs, Seed = 0 },
            onEpoch: e => args.Log($"pretrain fashion-mnist epoch {e.Epoch}/{e.Epochs}: loss {e.Loss:F4} test {e.TestAccuracy:P2}"));
        args.Log($"pretrained {modelName}@{resolution} on fashion-mnist ({epochs} epochs): test {pre.TestAccuracy:P2} in {pre.Elapsed.TotalSeconds:F0} s");

        var options = new CompileOptions { Training = new TrainingOptions { Qas = true, Momentum = false } };
        Quantized quantized = PlanCompiler.Quantize(graph, CalibrationSet.FromData(sourceTrain, graph.InputShape, 512), options, training: true);
        QuantizedModel model = quantized.Model;
        int convs = TrainableSet.ConvOps(model).Count;
        var scoreSamples = CalibrationSet.FromData(pool, graph.InputShape, 128);

        CompileResult Emit(TrainableSet set) => PlanCompiler.Emit(quantized, set, options);
        // The largest K of a family whose plan fits the budget (memory grows with K).
        (int K, CompileResult Plan)? Largest(Func<int, TrainableSet> family, long budget)
        {
            (int, CompileResult)? best = null;
            for (int k = 0; k <= convs; k++)
            {
                CompileResult r = Emit(family(k));
                if (r.Plan.SramBytes > budget) break;
                best = (k, r);
            }
            return best;
        }
        TrainableSet BiasK(int k) => TrainableSet.FromScheme(new SparseScheme(k, [], []), model, $"bias{k}");
        TrainableSet LastK(int k) => TrainableSet.FromScheme(new SparseScheme(k, Enumerable.Range(convs - k, k).ToArray(), Enumerable.Repeat(1.0, k).ToArray()), model, $"last{k}");

        CompileResult classifier = Emit(BiasK(0));
        var rows = new List<Row>();
        var runner = new Runner(pool, validation, test, steps, seed, grid);
        Row classifierRow = runner.Train("classifier", 0, "bias:0", classifier);
        args.Log($"classifier only: {classifier.Plan.SramBytes:N0} B, test {classifierRow.TestAccuracy:P2} (lr {classifierRow.LearningRate})");
        foreach (long budget in budgets)
        {
            var auto = SparseAuto.Search(quantized, options, scoreSamples, budget, seed: seed);
            CompileResult autoPlan = Emit(TrainableSet.FromScheme(auto.Scheme, model, "auto"));
            rows.Add(runner.Train("auto", budget, Describe(auto.Scheme), autoPlan));
            if (Largest(BiasK, budget) is { } bias) rows.Add(runner.Train("bias_k", budget, $"bias:{bias.K}", bias.Plan));
            if (Largest(LastK, budget) is { } last) rows.Add(runner.Train("last_k", budget, $"last {last.K} convs", last.Plan));
            foreach (Row r in rows.Where(r => r.BudgetBytes == budget))
                args.Log($"budget {ByteSize.Format(budget)}: {r.Method,-7} {r.Scheme,-60} {r.SramBytes,9:N0} B  test {r.TestAccuracy:P2} (val {r.ValidationAccuracy:P2}, lr {r.LearningRate})");
        }
        args.Log($"done in {clock.Elapsed.TotalSeconds:F0} s on {Environment.ProcessorCount} cores");
        return new
        {
            benchmark = "auto-scheme",
            model = modelName,
            resolution,
            source = "fashion-mnist",
            target = "mnist",
            pretrain_accuracy = Math.Round(pre.TestAccuracy, 4),
            steps,
            test_samples = test.Count,
            classifier_only = classifierRow,
            results = rows,
        };
    }

    private static string Describe(SparseScheme s)
        => $"n_bias {s.NBiasUpdate}, weights [{string.Join(",", s.ManualWeightIdx.Zip(s.WeightUpdateRatio, (i, r) => $"{i}:{r.ToString(CultureInfo.InvariantCulture)}"))}]";

    public sealed record Row(string Method, long BudgetBytes, string Scheme, long SramBytes, int ParamBytes, float LearningRate,
        double ValidationAccuracy, double TestAccuracy);

    private sealed class Runner(Dataset pool, Dataset validation, Dataset test, int steps, int seed, float[] grid)
    {
        /// <summary>Trains the plan once per rate (in parallel), keeps the rate with the best validation accuracy.</summary>
        public Row Train(string method, long budget, string scheme, CompileResult compiled)
        {
            var plan = PlanImage.Load(compiled.Image, $"{method}@{budget}");
            var results = new (double Val, double Test)[grid.Length];
            Parallel.For(0, grid.Length, i => results[i] = TrainOne(plan, grid[i]));
            int best = 0;
            for (int i = 1; i < grid.Length; i++) if (results[i].Val > results[best].Val) best = i;
            return new Row(method, budget, scheme, compiled.Plan.SramBytes, compiled.Plan.ParamBytes, grid[best],
                Math.Round(results[best].Val, 4), Math.Round(results[best].Test, 4));
        }

        private (double, double) TrainOne(PlanImage plan, float lr)
        {
            var executor = new Executor(plan) { LearningRate = lr };
            executor.Seed((uint)seed * 2654435761u + 1);
            var quantizer = InputQuantizer.For(plan);
            byte[] input = new byte[quantizer.Length];
            int[] order = Enumerable.Range(0, pool.Count).ToArray();
            var random = new Random(seed);
            random.Shuffle(order);
            for (int step = 0; step < steps; step++)
            {
                if (step > 0 && step % order.Length == 0) random.Shuffle(order);
                int index = order[step % order.Length];
                quantizer.Fill(pool, index, input, 0);
                executor.SetInput(input, 0);
                executor.TrainStep(pool.Labels[index]);
            }
            return (DeviceTraining.EvaluateTrained(executor, validation), DeviceTraining.EvaluateTrained(executor, test));
        }
    }
}
