using System.Diagnostics;
using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Onnx;
using TinyTrain.Compiler.Ood;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Compiler.Training;
using TinyTrain.Compiler.Zoo;
using TinyTrain.Emulator.Corruptions;
using TinyTrain.Runtime.Adaptation;
using TinyTrain.Runtime.Execution;
using TinyTrain.Runtime.Ood;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

namespace TinyTrain.Bench;

/// <summary>
/// `tta`: test-time adaptation by the int8 runtime, no labels. For each data set (MNIST, Fashion-MNIST), cnn-s is
/// trained in float on clean images (seed 0; Fashion-MNIST on its first --fashion-train images to keep the run
/// short), compiled to int8 (calibrated on 512 clean training images) as a source plan and one plan per method.
/// Each MNIST-C corruption of the emulator (severity --severity, seed --corruption-seed) is applied to the first
/// --samples test images and streamed at batch 1 through a fresh device: the accuracy is online (each sample is
/// predicted before it is learned from, as Tent reports). Every method runs behind the same guards
/// (<see cref="TestTimeAdapter"/>: NaN refused, constant images and samples above the entropy filter not learned
/// from, clipped steps), once without and once with the OOD gate ("+ood-gate": samples whose maximum softmax
/// probability is below the 95 %-TPR threshold, calibrated on 1,000 clean held-out training images, are not learned
/// from, and a sustained OOD rate resets the device to the source model).
/// mean_recovery = mean over corruptions of (method - source) / (clean - source), over the corruptions that cost
/// accuracy (source below clean). extra_sram_bytes = (arena + params + state) of the method's plan minus the source
/// plan's. Stability: all corruptions in sequence, --rounds rounds, then the clean test images, with no reset in
/// between; the clean accuracy at the end against the source model's.
/// </summary>
internal static class TtaBench
{
    public static object Run(BenchArgs args)
    {
        int samples = args.Int("samples", 500);
        // --first N streams test images [N, N + samples) instead: a slice the README's table does not use, for choosing settings.
        int first = args.Int("first", 0);
        float distill = args.Int("distill-milli", (int)(Compiler.Learning.TrainingOptions.DefaultDistillWeight * 1000)) / 1000f;
        int rounds = args.Int("rounds", 10);
        int roundSamples = args.Int("round-samples", 50);
        int fashionTrain = args.Int("fashion-train", 20000);
        double severity = args.Int("severity-tenths", 10) / 10.0;
        ulong corruptionSeed = (ulong)args.Int("corruption-seed", 1);
        // Each method runs without and with the OOD gate: a maximum softmax threshold set on clean images also rejects
        // most strongly corrupted ones (fog), so the gate trades adaptation for safety.
        string[] gates = args.Text("gates", "off,on").Split(',');
        float anchor = args.Int("anchor-milli", (int)(Compiler.Learning.NormRefs.Anchor * 1000)) / 1000f;
        float lr = args.Int("lr-milli", 0) > 0 ? args.Int("lr-milli", 0) / 1000f : 0.05f;
        string[] methods = args.Text("methods", "tta:norm,tta:tent:2").Split(',');
        string[] sets = args.Text("data", "mnist,fashion-mnist").Split(',');
        args.Log($"tta: cnn-s, int8 runtime, batch 1, {samples} test images per corruption (severity {severity}, seed {corruptionSeed}), " +
            $"test images from {first}, methods {string.Join(", ", methods)}, lr {lr}, distill {distill}; stability {rounds} rounds x {roundSamples} images per corruption");

        var results = new List<object>();
        object? firstSource = null, firstMethods = null;
        foreach (string name in sets)
        {
            var clock = Stopwatch.StartNew();
            Dataset train = DataCatalog.Load(name, Split.Train), test = DataCatalog.Load(name, Split.Test);
            if (first < 0 || first >= test.Count)
                throw new ArgumentException($"--first {first}: {name} has test images 0..{test.Count - 1}");
            int held = 1000, trainCount = Math.Min(train.Count - held, name.StartsWith("fashion", StringComparison.Ordinal) ? fashionTrain : train.Count);
            // --model-cache DIR keeps the trained float model between runs (same seed and data give the same model).
            string cache = args.Text("model-cache", "");
            string cached = cache.Length > 0 ? Path.Combine(cache, $"tta-cnn-s-{name}-{trainCount}.onnx") : "";
            TinyTrain.Compiler.Graphs.Graph graph;
            float floatAccuracy;
            if (cached.Length > 0 && File.Exists(cached))
            {
                graph = OnnxImporter.Import(cached);
                floatAccuracy = Trainer.Evaluate(graph, test);
            }
            else
            {
                graph = ModelZoo.Build("cnn-s", classes: train.NumClasses, seed: 0);
                TrainResult trained = Trainer.Train(graph, train, test, new TrainOptions { Epochs = TrainOptions.DefaultEpochs(trainCount), Seed = 0, MaxSamples = trainCount });
                floatAccuracy = trained.TestAccuracy;
                if (cached.Length > 0)
                {
                    Directory.CreateDirectory(cache);
                    OnnxExporter.Export(graph, cached);
                }
            }
            args.Log($"{name}: float {floatAccuracy:P2} ({trainCount} training images)");
            var calibration = CalibrationSet.FromData(train, graph.InputShape, 512);
            CompileResult source = PlanCompiler.Compile(graph, calibration, new CompileOptions());
            var sourcePlan = PlanImage.Load(source.Image, $"cnn-s-{name}.ttplan");
            float msp = OodCalibration.Calibrate(sourcePlan, new MaxSoftmaxScorer(sourcePlan), train, train.Count - held, held).Value;

            var corruptions = new List<string> { "clean" };
            corruptions.AddRange(CorruptionCatalog.Names);
            var streams = new Dictionary<string, Dataset>();
            foreach (string c in corruptions) streams[c] = Corrupt(test, first, samples, c, severity, corruptionSeed);

            var sourceAccuracy = new Dictionary<string, double>();
            foreach (string c in corruptions) sourceAccuracy[c] = PlanEvaluator.Evaluate(sourcePlan, streams[c]).Accuracy;
            args.Log($"{name}: source int8 clean {sourceAccuracy["clean"]:P1}, mean corrupted {corruptions.Skip(1).Average(c => sourceAccuracy[c]):P1}; MSP threshold {msp:F3}");

            var methodRows = new List<object>();
            foreach (string method in methods)
                foreach (string gateMode in gates)
                {
                    bool gate = gateMode == "on";
                    string label = gate ? method + "+ood-gate" : method;
                    CompileResult compiled = PlanCompiler.Compile(graph, calibration, new CompileOptions { Update = method, Training = new Compiler.Learning.TrainingOptions { NormAnchor = anchor, DistillWeight = distill } });
                    var plan = PlanImage.Load(compiled.Image, $"cnn-s-{name}-{method}.ttplan");
                    long extra = Sram(plan) - Sram(sourcePlan);
                    var accuracy = new Dictionary<string, double>();
                    var stats = new Dictionary<string, object>();
                    foreach (string c in corruptions)
                    {
                        var adapter = new TestTimeAdapter(new Executor(plan) { LearningRate = lr }, gate ? msp : 0f);
                        accuracy[c] = Stream(adapter, streams[c], 0, streams[c].Count);
                        stats[c] = new { adapted = adapter.Adapted, ood = adapter.OutOfDistribution, resets = adapter.Resets };
                    }
                    double recovery = Recovery(corruptions, sourceAccuracy, accuracy);
                    args.Log($"{name} {label}: mean recovery {recovery:P1}, extra SRAM {extra} B, clean {accuracy["clean"]:P1}, mean corrupted {corruptions.Skip(1).Average(c => accuracy[c]):P1}");
                    foreach (string c in corruptions)
                        args.Log($"    {c,-14} source {sourceAccuracy[c]:P1}  {label} {accuracy[c]:P1}");

                    // Long run: every corruption in sequence, several rounds, then clean images; nothing reset between.
                    var longRun = new TestTimeAdapter(new Executor(plan) { LearningRate = lr }, gate ? msp : 0f);
                    for (int r = 0; r < rounds; r++)
                        foreach (string c in corruptions.Skip(1))
                            Stream(longRun, streams[c], (r * roundSamples) % Math.Max(1, samples - roundSamples + 1), Math.Min(roundSamples, samples));
                    double cleanAfter = Stream(longRun, streams["clean"], 0, streams["clean"].Count);
                    args.Log($"{name} {label}: after {rounds} rounds of all corruptions, clean {cleanAfter:P1} (source {sourceAccuracy["clean"]:P1}); resets {longRun.Resets}");

                    methodRows.Add(new
                    {
                        name = label,
                        ood_gate = gate,
                        mean_recovery = Math.Round(recovery, 4),
                        extra_sram_bytes = extra,
                        accuracy = Round(accuracy),
                        stability = new { rounds, images_per_corruption = roundSamples, clean_after = Math.Round(cleanAfter, 4), clean_source = Math.Round(sourceAccuracy["clean"], 4), resets = longRun.Resets },
                        guards = stats,
                    });
                }
            firstSource ??= Round(sourceAccuracy);
            firstMethods ??= methodRows;
            results.Add(new
            {
                data = name,
                train_images = trainCount,
                float_accuracy = Math.Round(floatAccuracy, 4),
                test_images_per_corruption = samples,
                msp_threshold = msp,
                source = Round(sourceAccuracy),
                methods = methodRows,
                seconds = Math.Round(clock.Elapsed.TotalSeconds, 1),
            });
        }
        // The issue's keys at the top level are those of the first data set (MNIST); every set is under "models".
        return new { benchmark = "tta", severity, corruption_seed = corruptionSeed, first_test_image = first, learning_rate = lr, anchor, distill_weight = distill, source = firstSource, methods = firstMethods, models = results };
    }

    // Online accuracy of images [start, start + count): each is predicted, then (if trusted) learned from.
    private static double Stream(TestTimeAdapter adapter, Dataset data, int start, int count)
    {
        var values = new float[data.PixelsPerImage];
        int correct = 0;
        for (int i = start; i < start + count; i++)
        {
            data.CopyImage(i, values);
            if (adapter.Step(values, 0) == data.Labels[i]) correct++;
        }
        return count == 0 ? 0 : (double)correct / count;
    }

    private static Dataset Corrupt(Dataset test, int first, int count, string corruption, double severity, ulong seed)
    {
        count = Math.Min(count, test.Count - first);
        int pixels = test.PixelsPerImage;
        var images = new byte[count * pixels];
        var labels = new byte[count];
        ICorruption c = CorruptionCatalog.Get(corruption);
        for (int i = 0; i < count; i++)
        {
            c.Apply(test.Image(first + i), images.AsSpan(i * pixels, pixels), test.Cols, test.Rows, severity, seed + (ulong)(first + i));
            labels[i] = test.Labels[first + i];
        }
        return new Dataset($"{test.Name}-{corruption}", Split.Test, images, labels, test.ClassNames, test.Rows, test.Cols);
    }

    private static double Recovery(List<string> corruptions, Dictionary<string, double> source, Dictionary<string, double> method)
    {
        double sum = 0;
        int n = 0;
        foreach (string c in corruptions.Skip(1))
        {
            double drop = source["clean"] - source[c];
            if (drop <= 0) continue;
            sum += (method[c] - source[c]) / drop;
            n++;
        }
        return n == 0 ? 0 : sum / n;
    }

    private static long Sram(PlanImage plan) => (long)plan.ArenaBytes + plan.SramParamBytes + plan.StateBytes;

    private static Dictionary<string, double> Round(Dictionary<string, double> values) =>
        values.ToDictionary(kv => kv.Key, kv => Math.Round(kv.Value, 4));
}
