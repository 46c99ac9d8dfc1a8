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
/// `train-step`: time of one training step of cnn-s. The int8 plan of the sparse scheme
/// (bench/schemes/cnn-s.json), Executor.SetInput + TrainStep at batch 1, one thread, against the
/// project's float training of the same (BatchNorm-folded) model with FloatNetwork: copy the input,
/// forward, softmax cross-entropy, backward of every parameter, plain SGD step, at batch 1 and at
/// batch 64 (reported per sample). FloatNetwork spreads a batch over Environment.ProcessorCount
/// workers (batch 1 runs on one), so the batch-64 figure uses every core; run with
/// DOTNET_PROCESSOR_COUNT=1 to pin it to one. After a warm-up the three alternate, round by round and
/// in rotating order, so that noise on the machine hits all of them; each reports its median.
/// Weights do not change the speed, so the model has random weights (calibrated on real images).
/// </summary>
internal static class TrainStepBench
{
    public static object Run(BenchArgs args)
    {
        int rounds = args.Int("rounds", 100), perRound = args.Int("per-round", 20);
        const int Batch = 64;
        args.Log($"train-step: cnn-s, int8 sparse (batch 1, one thread) vs float full (batch 1 and {Batch}); " +
            $"{rounds} rounds of {perRound} int8 + {perRound} float b1 steps + 1 float b{Batch} step; {Environment.ProcessorCount} cores");

        Dataset data = DataCatalog.Load("mnist-mini", Split.Train);
        var graph = ModelZoo.Build("cnn-s", classes: 10, seed: 0);
        SparseScheme scheme = SparseScheme.Load(args.Text("scheme", TransferBench.SchemeFile("cnn-s.json")));
        CompileResult compiled = PlanCompiler.Compile(graph, CalibrationSet.FromData(data, graph.InputShape, 512), new CompileOptions
        {
            Trainable = m => TrainableSet.FromScheme(scheme, m, "cnn-s.json"),
            Training = new TrainingOptions { Qas = true },
        });
        var plan = PlanImage.Load(compiled.Image, "cnn-s-sparse.ttplan");
        Graph folded = compiled.Folded;
        int k = folded.NumClasses, size = folded.InputShape.Size;
        const float Lr = 0.001f;   // small, so thousands of steps on a few samples stay finite; the rate does not change the work

        // Inputs prepared before timing: the int8 bytes the device would receive, and the same images as floats.
        var quantizer = InputQuantizer.For(plan);
        byte[][] int8Inputs = new byte[Batch][];
        float[] floatInputs = new float[Batch * size];
        byte[] labels = new byte[Batch];
        for (int s = 0; s < Batch; s++)
        {
            int8Inputs[s] = new byte[quantizer.Length];
            quantizer.Fill(data, s, int8Inputs[s], 0);
            InputLayout.Fill(data, s, folded.InputShape, floatInputs, s * size);
            labels[s] = data.Labels[s];
        }

        var executor = new Executor(plan) { LearningRate = Lr, Momentum = 0f };
        executor.Seed(1);
        int int8Sample = 0;
        Action int8Step = () =>
        {
            executor.SetInput(int8Inputs[int8Sample], 0);
            executor.TrainStep(labels[int8Sample]);
            int8Sample = (int8Sample + 1) % Batch;
        };

        Graph g1 = folded.Clone();
        var net1 = new FloatNetwork(g1, 1);
        var sgd1 = new Sgd(g1, momentum: 0f, weightDecay: 0f);
        float[] d1 = new float[k];
        int floatSample = 0;
        Action floatStep1 = () =>
        {
            Array.Copy(floatInputs, floatSample * size, net1.InputBuffer, 0, size);
            float[] logits = net1.Forward(1, training: true);
            SoftmaxCrossEntropy.Compute(logits, labels.AsSpan(floatSample, 1), 1, k, d1, out _);
            net1.Backward(d1, 1);
            sgd1.Step(net1.Gradients, Lr);
            floatSample = (floatSample + 1) % Batch;
        };

        Graph g64 = folded.Clone();
        var net64 = new FloatNetwork(g64, Batch);
        var sgd64 = new Sgd(g64, momentum: 0f, weightDecay: 0f);
        float[] d64 = new float[Batch * k];
        Action floatStep64 = () =>
        {
            Array.Copy(floatInputs, net64.InputBuffer, Batch * size);
            float[] logits = net64.Forward(Batch, training: true);
            SoftmaxCrossEntropy.Compute(logits, labels, Batch, k, d64, out _);
            net64.Backward(d64, Batch);
            sgd64.Step(net64.Gradients, Lr);
        };

        // Warm up for at least a second (tier-1 recompilation of hot methods), pause, then measure.
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < 20 || clock.ElapsedMilliseconds < 1500; i++)
        {
            int8Step();
            floatStep1();
            if (i % 8 == 0) floatStep64();
        }
        Thread.Sleep(500);

        var int8Ticks = new List<long>(rounds * perRound);
        var b1Ticks = new List<long>(rounds * perRound);
        var b64Ticks = new List<long>(rounds);
        for (int r = 0; r < rounds; r++)
        {
            for (int phase = 0; phase < 3; phase++)
            {
                switch ((r + phase) % 3)
                {
                    case 0:
                        for (int i = 0; i < perRound; i++) int8Ticks.Add(Time(int8Step));
                        break;
                    case 1:
                        for (int i = 0; i < perRound; i++) b1Ticks.Add(Time(floatStep1));
                        break;
                    default:
                        b64Ticks.Add(Time(floatStep64));
                        break;
                }
            }
        }
        if (!float.IsFinite(executor.LastLoss)) throw new InvalidOperationException("int8 loss is not finite");

        double int8Ms = MedianMs(int8Ticks), b1Ms = MedianMs(b1Ticks), b64Ms = MedianMs(b64Ticks), b64PerSample = b64Ms / Batch;
        args.Log($"{"",-34}{"ms/step",10}{"ms/sample",11}");
        args.Log($"{"int8 sparse, batch 1 (1 thread)",-34}{int8Ms,10:F3}{int8Ms,11:F3}");
        args.Log($"{"float full, batch 1 (1 thread)",-34}{b1Ms,10:F3}{b1Ms,11:F3}");
        args.Log($"{$"float full, batch {Batch} ({Math.Min(Environment.ProcessorCount, Batch)} threads)",-34}{b64Ms,10:F3}{b64PerSample,11:F3}");
        args.Log($"float b1 / int8: {b1Ms / int8Ms:F2}x; float b{Batch} per sample / int8: {b64PerSample / int8Ms:F2}x " +
            $"(medians of {int8Ticks.Count}, {b1Ticks.Count}, {b64Ticks.Count} steps; int8 plan: arena {plan.ArenaBytes:N0} B, " +
            $"{compiled.Plan.Ops.Sum(o => o.Macs):N0} MACs per step)");
        LogOpBreakdown(args, executor, int8Inputs, labels, int8Ms);
        return new
        {
            benchmark = "train-step",
            model = "cnn-s",
            int8_sparse_ms = Math.Round(int8Ms, 4),
            float_full_b1_ms = Math.Round(b1Ms, 4),
            float_full_b64_ms_per_sample = Math.Round(b64PerSample, 4),
            ratio_float_b1_over_int8 = Math.Round(b1Ms / int8Ms, 3),
            ratio_float_b64_per_sample_over_int8 = Math.Round(b64PerSample / int8Ms, 3),
            float_b64_threads = Math.Min(Environment.ProcessorCount, Batch),
            cores = Environment.ProcessorCount,
        };
    }

    /// <summary>
    /// Where the int8 step's time goes, by op kind: the plan's ops run one at a time with Executor.Run
    /// (a tool's view: the forward ops then skip the ReLU masks that TrainStep has them write).
    /// </summary>
    private static void LogOpBreakdown(BenchArgs args, Executor executor, byte[][] inputs, byte[] labels, double stepMs)
    {
        PlanImage plan = executor.Plan;
        const int Steps = 100;
        var ticks = new long[plan.OpCount][];
        for (int i = 0; i < plan.OpCount; i++) ticks[i] = new long[Steps];
        for (int s = 0; s < Steps; s++)
        {
            executor.SetInput(inputs[s % inputs.Length], 0);
            executor.TrainStep(labels[s % inputs.Length]);   // sets the label that the loss op of the timed pass reads
            executor.SetInput(inputs[s % inputs.Length], 0);
            for (int i = 0; i < plan.OpCount; i++)
            {
                long start = Stopwatch.GetTimestamp();
                executor.Run(i, i + 1);
                ticks[i][s] = Stopwatch.GetTimestamp() - start;
            }
        }
        var byKind = new Dictionary<string, (int Ops, double Ms)>();
        for (int i = 0; i < plan.OpCount; i++)
        {
            string kind = plan.Op(i).Kind.ToString();
            byKind.TryGetValue(kind, out var entry);
            byKind[kind] = (entry.Ops + 1, entry.Ms + MedianMs([.. ticks[i]]));
        }
        args.Log($"int8 step by op kind (sum of per-op medians over {Steps} op-by-op passes; the full step's median is {stepMs:F3} ms):");
        foreach ((string kind, (int ops, double ms)) in byKind.OrderByDescending(e => e.Value.Ms))
            if (ms >= 0.001) args.Log($"  {kind,-28}{ops,3} ops {ms,9:F3} ms");
    }

    private static long Time(Action action)
    {
        long start = Stopwatch.GetTimestamp();
        action();
        return Stopwatch.GetTimestamp() - start;
    }

    private static double MedianMs(List<long> ticks)
    {
        long[] sorted = ticks.ToArray();
        Array.Sort(sorted);
        int n = sorted.Length;
        double median = n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0;
        return median * 1000.0 / Stopwatch.Frequency;
    }
}
