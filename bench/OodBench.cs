using System.Diagnostics;
using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Ood;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Compiler.Training;
using TinyTrain.Compiler.Zoo;
using TinyTrain.Runtime.Execution;
using TinyTrain.Runtime.Ood;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

namespace TinyTrain.Bench;

/// <summary>
/// `ood`: out-of-distribution detection by the int8 runtime. For each pair, cnn-s is trained in float on the
/// in-distribution set's training split except its last --calib-images (seed 0, the CLI's default epochs; 8 on
/// the minis), compiled to an int8 inference plan, and each score is calibrated on that training split only:
/// hyperdimensional prototypes on its first images (--proto-images), the threshold at 95 % true-positive rate
/// on the held-out last --calib-images (seen by neither the model nor the prototypes). Every figure is then
/// measured on the test splits, which no calibration saw: AUROC (exact,
/// rank-sum), FPR at 95 % TPR (threshold from the test in-distribution scores, the literature's metric), and
/// the TPR/FPR at the calibrated threshold (what a device would see). SRAM is what the scorer adds beside the
/// arena; time is the score alone after Invoke, single thread. The HD scores get --budget bytes each (D chosen
/// by HdConfig.ForBudget, at most 4096).
/// Pairs: MNIST in / Fashion-MNIST out and Fashion-MNIST in / MNIST out (full sets from the cache; --mini for
/// the bundled ones).
/// </summary>
internal static class OodBench
{
    public static object Run(BenchArgs args)
    {
        bool mini = Environment.GetCommandLineArgs().Contains("--mini");
        int budget = args.Int("budget", 16 * 1024);
        int protoImages = args.Int("proto-images", 5000);
        int calibImages = args.Int("calib-images", 1000);
        int seed = args.Int("seed", 0);
        int epochsOverride = args.Int("epochs", 0);
        string suffix = mini ? "-mini" : "";
        (string In, string Out)[] pairs = { ("mnist" + suffix, "fashion-mnist" + suffix), ("fashion-mnist" + suffix, "mnist" + suffix) };
        args.Log($"ood: cnn-s, int8 runtime, single thread; HD budget {budget} B; prototypes from up to {protoImages} training images, " +
            $"threshold from the last {calibImages}; {Environment.ProcessorCount} cores");

        var rows = new List<object>();
        var models = new List<object>();
        foreach (var (inName, outName) in pairs)
        {
            Dataset train = DataCatalog.Load(inName, Split.Train), test = DataCatalog.Load(inName, Split.Test);
            Dataset outTest = DataCatalog.Load(outName, Split.Test);
            int calibStart = Math.Max(train.Count - calibImages, 1);
            int protoCount = Math.Min(protoImages, calibStart);
            int epochs = epochsOverride > 0 ? epochsOverride : mini ? 8 : TrainOptions.DefaultEpochs(train.Count);
            var graph = ModelZoo.Build("cnn-s", classes: train.NumClasses, seed: seed);
            // The trainer takes the first MaxSamples images: the threshold's images stay unseen.
            TrainResult trained = Trainer.Train(graph, train, test, new TrainOptions { Epochs = epochs, Seed = seed, MaxSamples = calibStart },
                onEpoch: e => args.Log($"{inName} epoch {e.Epoch}/{e.Epochs}: loss {e.Loss:F4} test {e.TestAccuracy:P2}"));
            CompileResult compiled = PlanCompiler.Compile(graph, CalibrationSet.FromData(train, graph.InputShape, 512), new CompileOptions());
            var plan = PlanImage.Load(compiled.Image, $"cnn-s-{inName}.ttplan");
            float int8Accuracy = PlanEvaluator.Evaluate(plan, test).Accuracy;
            args.Log($"{inName}: cnn-s float {trained.TestAccuracy:P2}, int8 {int8Accuracy:P2} ({calibStart} train x {epochs} epochs, {trained.Elapsed.TotalSeconds:F0} s)");

            var scorers = new List<IOodScorer> { new MaxSoftmaxScorer(plan), new EnergyScorer(plan) };
            foreach (var (storage, perClass) in new[] { (HdStorage.Int8, 1), (HdStorage.Int8, 4), (HdStorage.Bits, 1), (HdStorage.Bits, 4) })
            {
                HdConfig config = HdConfig.ForBudget(budget, plan.NumClasses, storage, HdConfig.DefaultSeed, perClass);
                var clock = Stopwatch.StartNew();
                scorers.Add(new HdScorer(plan, HdCalibration.Build(plan, train, config, protoCount)));
                args.Log($"{inName}: {config} ({config.SramBytes(plan.NumClasses)} B SRAM), prototypes from {protoCount} images in {clock.Elapsed.TotalSeconds:F1} s");
            }

            var calib = Score(plan, scorers, train, calibStart, train.Count - calibStart, out _, out _);
            var inScores = Score(plan, scorers, test, 0, test.Count, out double[] inMicros, out double invokeMicros);
            var outScores = Score(plan, scorers, outTest, 0, outTest.Count, out double[] outMicros, out _);
            models.Add(new
            {
                @in = inName,
                epochs,
                train_images = calibStart,
                prototype_images = protoCount,
                threshold_images = train.Count - calibStart,
                float_accuracy = Math.Round(trained.TestAccuracy, 4),
                int8_accuracy = Math.Round(int8Accuracy, 4),
                invoke_us = Math.Round(invokeMicros, 1),
            });
            for (int s = 0; s < scorers.Count; s++)
            {
                IOodScorer scorer = scorers[s];
                OodThreshold threshold = OodCalibration.Threshold(calib[s]);
                double auroc = OodMetrics.Auroc(inScores[s], outScores[s]);
                double fpr95 = OodMetrics.FprAtTpr(inScores[s], outScores[s]);
                double tpr = OodMetrics.AcceptedRate(inScores[s], threshold.Value);
                double fpr = OodMetrics.AcceptedRate(outScores[s], threshold.Value);
                double micros = (inMicros[s] * inScores[s].Length + outMicros[s] * outScores[s].Length) / (inScores[s].Length + outScores[s].Length);
                HdConfig? config = (scorer as HdScorer)?.Prototypes.Config;
                args.Log($"{inName,-18} {outName,-18} {scorer.Name,-12} AUROC {auroc:F4}  FPR95 {fpr95:F4}  " +
                    $"at calibrated threshold: TPR {tpr:F4} FPR {fpr:F4}  SRAM {scorer.SramBytes,6} B  {micros,7:F1} us" +
                    (config is null ? "" : $"  (D {config.Dimensions})"));
                rows.Add(new
                {
                    @in = inName,
                    @out = outName,
                    score = scorer.Name,
                    auroc = Math.Round(auroc, 4),
                    fpr95 = Math.Round(fpr95, 4),
                    sram_bytes = scorer.SramBytes,
                    us_per_sample = Math.Round(micros, 1),
                    dimensions = config?.Dimensions,
                    prototypes_per_class = config?.PrototypesPerClass,
                    threshold = threshold.Value,
                    tpr_at_threshold = Math.Round(tpr, 4),
                    fpr_at_threshold = Math.Round(fpr, 4),
                    in_images = inScores[s].Length,
                    out_images = outScores[s].Length,
                });
            }
        }
        return new { benchmark = "ood", budget_bytes = budget, models, pairs = rows };
    }

    // One Invoke per image, then every scorer on it; each scorer's time is its Score call alone.
    private static float[][] Score(PlanImage plan, List<IOodScorer> scorers, Dataset data, int start, int count,
        out double[] microsPerSample, out double invokeMicros)
    {
        var executor = new Executor(plan);
        var quantizer = InputQuantizer.For(plan);
        byte[] input = new byte[quantizer.Length];
        float[][] scores = new float[scorers.Count][];
        long[] ticks = new long[scorers.Count];
        long invokeTicks = 0;
        for (int s = 0; s < scorers.Count; s++) scores[s] = new float[count];
        for (int i = 0; i < count; i++)
        {
            quantizer.Fill(data, start + i, input, 0);
            long t0 = Stopwatch.GetTimestamp();
            executor.SetInput(input, 0);
            executor.Invoke();
            invokeTicks += Stopwatch.GetTimestamp() - t0;
            for (int s = 0; s < scorers.Count; s++)
            {
                long t = Stopwatch.GetTimestamp();
                scores[s][i] = scorers[s].Score(executor);
                ticks[s] += Stopwatch.GetTimestamp() - t;
            }
        }
        double perTick = 1e6 / Stopwatch.Frequency / Math.Max(1, count);
        microsPerSample = Array.ConvertAll(ticks, t => t * perTick);
        invokeMicros = invokeTicks * perTick;
        return scores;
    }
}
