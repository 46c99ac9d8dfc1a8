using TinyTrain.Compiler.Data;

namespace TinyTrain.Compiler.Training;

public sealed record TrainOptions
{
    /// <summary>The default epoch count: about 100,000 samples seen, at least 4 and at most 30 epochs
    /// (4 on Fashion-MNIST's 60,000 training images, 13 on MNIST's 7,996).</summary>
    public static int DefaultEpochs(int trainSamples) => Math.Clamp((int)Math.Ceiling(100_000.0 / Math.Max(1, trainSamples)), 4, 30);

    public int Epochs { get; init; } = 4;
    public int BatchSize { get; init; } = 64;
    public float LearningRate { get; init; } = 0.05f;
    public float Momentum { get; init; } = 0.9f;
    public float WeightDecay { get; init; } = 5e-4f;
    public int Seed { get; init; }
    /// <summary>Use at most this many training samples (0 = all).</summary>
    public int MaxSamples { get; init; }
}

public sealed record EpochReport(int Epoch, int Epochs, float Loss, float TrainAccuracy, float TestAccuracy);

public sealed record TrainResult(float TestAccuracy, float FinalLoss, int Steps, TimeSpan Elapsed, IReadOnlyList<EpochReport> Epochs);

/// <summary>
/// Float training on the CPU: shuffled mini-batches from a seed, SGD with momentum, a short linear
/// warm-up then cosine decay of the learning rate, evaluation on the test split after each epoch.
/// </summary>
public static class Trainer
{
    public static TrainResult Train(Graphs.Graph graph, Dataset train, Dataset test, TrainOptions options,
        Action<int, int>? onStep = null, Action<EpochReport>? onEpoch = null)
    {
        Validate(graph, train, options);
        int samples = options.MaxSamples > 0 ? Math.Min(options.MaxSamples, train.Count) : train.Count;
        int batch = Math.Min(options.BatchSize, samples);
        int stepsPerEpoch = samples / batch;
        int totalSteps = stepsPerEpoch * options.Epochs;
        int warmup = Math.Min(totalSteps / 20, 200);

        var net = new FloatNetwork(graph, batch);
        var sgd = new Sgd(graph, options.Momentum, options.WeightDecay);
        var random = new Random(options.Seed);
        int[] order = new int[samples];
        for (int i = 0; i < samples; i++) order[i] = i;
        byte[] labels = new byte[batch];
        float[] dLogits = new float[batch * graph.NumClasses];
        var reports = new List<EpochReport>();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        int step = 0;
        float lastLoss = 0f;
        for (int epoch = 0; epoch < options.Epochs; epoch++)
        {
            random.Shuffle(order);
            double lossSum = 0;
            int correct = 0;
            for (int b = 0; b < stepsPerEpoch; b++)
            {
                for (int s = 0; s < batch; s++)
                {
                    int index = order[b * batch + s];
                    InputLayout.Fill(train, index, graph.InputShape, net.InputBuffer, s * graph.InputShape.Size);
                    labels[s] = train.Labels[index];
                }
                float[] logits = net.Forward(batch, training: true);
                float loss = SoftmaxCrossEntropy.Compute(logits, labels, batch, graph.NumClasses, dLogits, out int ok);
                if (!float.IsFinite(loss))
                    throw new TinyTrainException($"training diverged at step {step} (loss {loss}); lower the learning rate (now {options.LearningRate})");
                net.Backward(dLogits, batch);
                sgd.Step(net.Gradients, LearningRate(options.LearningRate, step, totalSteps, warmup));
                lossSum += loss;
                correct += ok;
                lastLoss = loss;
                step++;
                onStep?.Invoke(step, totalSteps);
            }
            float testAccuracy = Evaluate(graph, test);
            var report = new EpochReport(epoch + 1, options.Epochs, (float)(lossSum / Math.Max(1, stepsPerEpoch)),
                (float)correct / Math.Max(1, stepsPerEpoch * batch), testAccuracy);
            reports.Add(report);
            onEpoch?.Invoke(report);
        }
        float final = reports.Count > 0 ? reports[^1].TestAccuracy : Evaluate(graph, test);
        return new TrainResult(final, lastLoss, step, clock.Elapsed, reports);
    }

    /// <summary>Top-1 accuracy of the graph (inference mode) on a data set.</summary>
    public static float Evaluate(Graphs.Graph graph, Dataset data, int maxSamples = 0)
    {
        int count = maxSamples > 0 ? Math.Min(maxSamples, data.Count) : data.Count;
        if (count == 0) return 0f;
        int batch = Math.Min(256, count);
        var net = new FloatNetwork(graph, batch);
        int k = graph.NumClasses, correct = 0;
        for (int start = 0; start < count; start += batch)
        {
            int n = Math.Min(batch, count - start);
            for (int s = 0; s < n; s++)
                InputLayout.Fill(data, start + s, graph.InputShape, net.InputBuffer, s * graph.InputShape.Size);
            float[] logits = net.Forward(n, training: false);
            for (int s = 0; s < n; s++)
                if (ArgMax(logits, s * k, k) == data.Labels[start + s]) correct++;
        }
        return (float)correct / count;
    }

    public static int ArgMax(float[] values, int offset, int count)
    {
        int best = 0;
        for (int j = 1; j < count; j++)
            if (values[offset + j] > values[offset + best]) best = j;
        return best;
    }

    private static float LearningRate(float peak, int step, int total, int warmup)
    {
        if (step < warmup) return peak * (step + 1) / warmup;
        double progress = (double)(step - warmup) / Math.Max(1, total - warmup);
        return (float)(peak * 0.5 * (1 + Math.Cos(Math.PI * progress)));
    }

    private static void Validate(Graphs.Graph graph, Dataset train, TrainOptions options)
    {
        if (options.Epochs < 1)
            throw new TinyTrainException($"--epochs must be at least 1 (got {options.Epochs})");
        if (options.BatchSize < 1)
            throw new TinyTrainException($"--batch must be at least 1 (got {options.BatchSize})");
        if (!(options.LearningRate > 0) || !float.IsFinite(options.LearningRate))
            throw new TinyTrainException($"--lr must be a positive number (got {options.LearningRate})");
        if (train.Count == 0)
            throw new TinyTrainException($"data set '{train.Name}' has no training samples");
        if (train.NumClasses > graph.NumClasses)
            throw new TinyTrainException($"data set '{train.Name}' has {train.NumClasses} classes but model '{graph.Name}' outputs {graph.NumClasses}; build it with --classes {train.NumClasses}");
    }
}
