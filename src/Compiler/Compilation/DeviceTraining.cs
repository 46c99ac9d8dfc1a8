namespace TinyTrain.Compiler.Compilation;

using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Runtime.Execution;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

public sealed record DeviceTrainingOptions
{
    public int Steps { get; init; } = 1000;
    public float LearningRate { get; init; } = 0.01f;
    /// <summary>Used only by plans compiled with momentum state (compile --momentum); 0 = plain SGD.</summary>
    public float Momentum { get; init; }
    public int Seed { get; init; }
    /// <summary>Test samples for the before/after accuracy (0 = the whole test split).</summary>
    public int EvalSamples { get; init; }
}

public sealed record DeviceTrainingResult(float AccuracyBefore, float AccuracyAfter, int Steps, int Skipped, float MeanLoss,
    int ArenaBytes, int HighWaterBytes, double StepsPerSecond);

/// <summary>
/// On-device learning as the board does it, on the desktop: batch 1, samples in a seeded shuffled
/// order, the int8 runtime's training step, accuracy before and after on the test split.
/// </summary>
public static class DeviceTraining
{
    /// <param name="trained">Called with the executor after the last step (to keep what it learned, e.g. as an adapter pack).</param>
    public static DeviceTrainingResult Run(PlanImage plan, Dataset train, Dataset test, DeviceTrainingOptions options, Action<int, int>? progress = null,
        Action<Executor>? trained = null)
    {
        if (options.Steps < 0) throw new TinyTrainException($"--steps must be at least 0 (got {options.Steps})");
        if (!(options.LearningRate > 0) || !float.IsFinite(options.LearningRate))
            throw new TinyTrainException($"--lr must be a positive number (got {options.LearningRate})");
        if (train.NumClasses > plan.NumClasses)
            throw new TinyTrainException($"data set '{train.Name}' has {train.NumClasses} classes but the plan's model outputs {plan.NumClasses}");
        if (options.Momentum != 0 && plan.StateBytes == 0)
            throw new TinyTrainException($"{plan.Source}: momentum {options.Momentum} asked for, but the plan keeps no optimizer state; compile it with --momentum");
        if (!(options.Momentum >= 0 && options.Momentum < 1))
            throw new TinyTrainException($"--momentum must be in [0, 1), got {options.Momentum}");
        var executor = new Executor(plan) { LearningRate = options.LearningRate, Momentum = options.Momentum };
        if (!executor.CanTrain)
            throw new TinyTrainException($"{plan.Source}: this plan has no trainable set; compile it with --update bias:K, sparse:scheme.json or full");
        executor.Seed((uint)options.Seed * 2654435761u + 1);
        float before = PlanEvaluator.Evaluate(plan, test, options.EvalSamples).Accuracy;

        var quantizer = InputQuantizer.For(plan);
        byte[] input = new byte[quantizer.Length];
        int[] order = new int[train.Count];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        var random = new Random(options.Seed);
        random.Shuffle(order);
        double lossSum = 0;
        int done = 0;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (int step = 0; step < options.Steps; step++)
        {
            if (step > 0 && step % order.Length == 0) random.Shuffle(order);
            int index = order[step % order.Length];
            quantizer.Fill(train, index, input, 0);
            executor.SetInput(input, 0);
            lossSum += executor.TrainStep(train.Labels[index]);
            done++;
            if (progress is not null && (step % 100 == 99 || step == options.Steps - 1)) progress(step + 1, options.Steps);
        }
        double seconds = clock.Elapsed.TotalSeconds;
        trained?.Invoke(executor);
        float after = EvaluateTrained(executor, test, options.EvalSamples);
        quantizer.Fill(train, 0, input, 0);
        int highWater = ArenaProbe.MeasureTrainStep(plan, input, 0, train.Labels[0]);
        return new DeviceTrainingResult(before, after, done, 0, done == 0 ? 0f : (float)(lossSum / done), plan.ArenaBytes, highWater,
            seconds > 0 ? done / seconds : 0);
    }

    /// <summary>Accuracy with the executor's current (trained) parameters.</summary>
    public static float EvaluateTrained(Executor executor, Dataset test, int maxSamples = 0)
    {
        var quantizer = InputQuantizer.For(executor.Plan);
        byte[] input = new byte[quantizer.Length];
        int count = maxSamples > 0 ? Math.Min(maxSamples, test.Count) : test.Count, correct = 0;
        for (int i = 0; i < count; i++)
        {
            quantizer.Fill(test, i, input, 0);
            executor.SetInput(input, 0);
            executor.Invoke();
            if (executor.ArgMax() == test.Labels[i]) correct++;
        }
        return count == 0 ? 0f : (float)correct / count;
    }
}
