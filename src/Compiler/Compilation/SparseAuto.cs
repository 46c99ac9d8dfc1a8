namespace TinyTrain.Compiler.Compilation;

using TinyTrain.Compiler.Learning;
using TinyTrain.Compiler.Planning;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Runtime.Execution;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

/// <summary>What `--update sparse:auto` chose, and why.</summary>
public sealed record AutoScheme(SparseScheme Scheme, long SramBytes, long BudgetBytes, long SmallestBytes, double Score, double FullScore,
    int Compiles, IReadOnlyList<string> Steps)
{
    /// <summary>Share of the full update's first-order gain that the chosen scheme keeps.</summary>
    public double ScoreShare => FullScore > 0 ? Score / FullScore : 0;
}

/// <summary>
/// `--update sparse:auto --budget B`: chooses which conv biases and which weights (and what fraction of
/// their input channels) to update so that the whole training step (arena + writable parameters +
/// optimizer state) fits B bytes.
///
/// How it chooses:
/// 1. Scores. The full-update plan runs on labelled calibration samples; every update op reports its
///    real-unit gradients (Executor.GradientProbe) and nothing is learned. A parameter's score is its mean
///    squared gradient (the empirical Fisher). With QAS the int8 update is plain SGD in real units, so a
///    step of rate lr on a set S lowers the loss by about lr * sum_S g^2: the sum of scores is the set's
///    first-order gain. A conv's bias scores sum over its channels; its weights at ratio r score the
///    first r of its input channels (the channels a scheme trains).
/// 2. Search. From the smallest plan (classifier only), moves are: update the bias of one more conv from
///    the output (the scheme's n_bias_update), or raise one conv's weight ratio to the next of
///    1/8, 1/4, 1/2, 1. Each move's cost is the real increase of the compiled plan's SRAM. Greedy by gain
///    per byte, lazily re-evaluated (a move's gain is fixed, its cost is recompiled only when it reaches
///    the top), taking only moves that keep the plan within the budget, until none is left.
/// The classifier is always trained in full, as in every scheme.
/// </summary>
public static class SparseAuto
{
    public static readonly double[] Ratios = [0, 0.125, 0.25, 0.5, 1];
    private const int DefaultScoreSamples = 128;

    /// <summary>
    /// Emits <paramref name="scheme"/> with <paramref name="options"/>; with StreamInput, a scheme that trains the first layers
    /// (no frozen stage can read the input band by band) keeps its input in the arena instead of being refused, so that the
    /// search weighs it at what it really costs.
    /// </summary>
    public static CompileResult Emit(Quantized quantized, SparseScheme scheme, CompileOptions options)
    {
        TrainableSet trainable = TrainableSet.FromScheme(scheme, quantized.Model, "auto");
        if (!options.StreamInput) return PlanCompiler.Emit(quantized, trainable, options);
        try
        {
            return PlanCompiler.Emit(quantized, trainable, options);
        }
        catch (TinyTrainException)
        {
            return PlanCompiler.Emit(quantized, trainable, options with { StreamInput = false });
        }
    }

    public static AutoScheme Search(Quantized quantized, CompileOptions options, CalibrationSet samples, long budgetBytes,
        int scoreSamples = DefaultScoreSamples, int seed = 0)
    {
        QuantizedModel model = quantized.Model;
        List<int> convs = TrainableSet.ConvOps(model);
        var cache = new Dictionary<string, long>();
        int compiles = 0;
        long Sram(SparseScheme scheme)
        {
            string key = Key(scheme);
            if (cache.TryGetValue(key, out long bytes)) return bytes;
            compiles++;
            // Stages further in are left to the final plan (SparseAuto.Emit): they would multiply the search's compile time, and
            // they only lower a plan's SRAM, so the chosen scheme still fits.
            EmittedPlan plan = Emit(quantized, scheme, options with { PatchMidStages = false }).Plan;
            return cache[key] = plan.SramBytes;
        }

        var state = new State(0, new int[convs.Count]);
        long smallest = Sram(state.ToScheme());
        if (budgetBytes < smallest)
            throw new TinyTrainException($"--budget {budgetBytes:N0} B: no sparse scheme fits; the smallest (classifier only) needs {smallest:N0} B of SRAM; give a budget of at least that");

        LayerScores scores = LayerScores.Measure(quantized, options, samples, Math.Min(scoreSamples, samples.Count), seed);
        var steps = new List<string>();
        long current = smallest;
        // Lazy greedy: a move's gain is fixed; its cost (bytes added) is known from when it was last compiled
        // and refreshed only when the move comes out on top. Memory only grows, so a move that once broke
        // the budget is not tried again.
        var knownCost = new Dictionary<string, long>();
        var dropped = new HashSet<string>();
        while (true)
        {
            var moves = new List<Move>();
            if (state.Bias < convs.Count)
            {
                int conv = convs.Count - 1 - state.Bias;
                moves.Add(new Move("bias", state with { Bias = state.Bias + 1 }, scores.Bias[conv], $"bias of conv {conv} ({model.Ops[convs[conv]].Name})"));
            }
            for (int c = 0; c < convs.Count; c++)
            {
                int level = state.Levels[c], next = NextLevel(scores.WeightChannels[c].Length, level);
                if (next < 0) continue;
                int[] levels = (int[])state.Levels.Clone();
                levels[c] = next;
                double gain = scores.Weights(c, Ratios[next]) - scores.Weights(c, Ratios[level]);
                moves.Add(new Move($"w{c}", state with { Levels = levels }, gain, $"weights of conv {c} ({model.Ops[convs[c]].Name}) at ratio {Ratios[next]}"));
            }
            moves.RemoveAll(m => !(m.Gain > 0) || dropped.Contains(m.Key));
            double Value(Move m) => m.Gain / Math.Max(knownCost.GetValueOrDefault(m.Key), 1);
            Move? taken = null;
            while (moves.Count > 0)
            {
                Move top = moves.MaxBy(Value)!;
                long bytes = Sram(top.Next.ToScheme());
                knownCost[top.Key] = bytes - current;
                if (bytes > budgetBytes)
                {
                    dropped.Add(top.Key);
                    moves.Remove(top);
                    continue;
                }
                if (moves.All(m => m == top || Value(m) <= Value(top)))
                {
                    taken = top;
                    current = bytes;
                    break;
                }
            }
            if (taken is null) break;
            state = taken.Next;
            steps.Add($"{taken.What}: +{taken.Gain:G3} score, {current:N0} B");
        }

        var full = new State(convs.Count, Enumerable.Repeat(Ratios.Length - 1, convs.Count).ToArray());
        return new AutoScheme(state.ToScheme(), current, budgetBytes, smallest, scores.Of(state), scores.Of(full), compiles, steps);
    }

    /// <summary>Input channels a ratio level trains (a scheme trains at least one).</summary>
    private static int Channels(int inputs, int level) => level == 0 ? 0 : Math.Max(1, (int)(inputs * Ratios[level]));

    /// <summary>The next level that trains more channels (the highest ratio of those that train as many), or -1.</summary>
    private static int NextLevel(int inputs, int level)
    {
        int next = level + 1;
        while (next < Ratios.Length && Channels(inputs, next) == Channels(inputs, level)) next++;
        if (next >= Ratios.Length) return -1;
        while (next + 1 < Ratios.Length && Channels(inputs, next + 1) == Channels(inputs, next)) next++;
        return next;
    }

    private sealed record Move(string Key, State Next, double Gain, string What);

    private static string Key(SparseScheme s) => $"{s.NBiasUpdate}|{string.Join(",", s.ManualWeightIdx)}|{string.Join(",", s.WeightUpdateRatio)}";

    private sealed record State(int Bias, int[] Levels)
    {
        public SparseScheme ToScheme()
        {
            var idx = new List<int>();
            var ratio = new List<double>();
            for (int c = 0; c < Levels.Length; c++)
                if (Levels[c] > 0)
                {
                    idx.Add(c);
                    ratio.Add(Ratios[Levels[c]]);
                }
            return new SparseScheme(Bias, idx.ToArray(), ratio.ToArray());
        }
    }

    /// <summary>Per-conv empirical Fisher scores: of its bias, and per input channel of its weights.</summary>
    private sealed class LayerScores
    {
        public required double[] Bias { get; init; }
        /// <summary>[conv][input channel]: summed over output channels and taps.</summary>
        public required double[][] WeightChannels { get; init; }

        public double Weights(int conv, double ratio)
        {
            if (ratio <= 0) return 0;
            double[] channels = WeightChannels[conv];
            int take = Math.Max(1, (int)(channels.Length * ratio));   // as TrainableSet counts them
            double sum = 0;
            for (int i = 0; i < take; i++) sum += channels[i];
            return sum;
        }

        public double Of(State state)
        {
            double sum = 0;
            for (int c = Bias.Length - state.Bias; c < Bias.Length; c++) sum += Bias[c];
            for (int c = 0; c < state.Levels.Length; c++) sum += Weights(c, Ratios[state.Levels[c]]);
            return sum;
        }

        public static LayerScores Measure(Quantized quantized, CompileOptions options, CalibrationSet samples, int count, int seed)
        {
            QuantizedModel model = quantized.Model;
            List<int> convs = TrainableSet.ConvOps(model);
            var convOf = new Dictionary<int, int>();
            for (int c = 0; c < convs.Count; c++) convOf[convs[c]] = c;
            var bias = new double[convs.Count];
            var weights = new double[convs.Count][];
            for (int c = 0; c < convs.Count; c++) weights[c] = new double[TrainableSet.InputChannels(model.Ops[convs[c]], model)];

            // A tool plan, never shipped: its memory does not matter, and a full update cannot stream its input.
            EmittedPlan emitted = PlanCompiler.Emit(quantized, TrainableSet.Parse("full", model), options with { StreamInput = false }).Plan;
            var plan = PlanImage.Load(emitted.Image, "sparse:auto scores");
            int initOps = plan.OpCount - emitted.Program.Ops.Count;
            // Nothing is learned while scoring: rate 0, and the source parameters restored after every sample.
            var executor = new Executor(plan) { LearningRate = 0f };
            executor.GradientProbe = (index, dw, db) =>
            {
                int layer = emitted.Program.Ops[index - initOps].Layer;
                if (!convOf.TryGetValue(layer, out int c)) return;   // the classifier: always trained
                foreach (float g in db) bias[c] += (double)g * g;
                double[] channels = weights[c];
                if (dw.Length == 0) return;
                int perChannel = dw.Length / (model.Ops[layer].Kind == QOpKind.DepthwiseConv ? channels.Length : model.Ops[layer].OutChannels * channels.Length);
                if (model.Ops[layer].Kind == QOpKind.DepthwiseConv)
                {
                    for (int i = 0; i < dw.Length; i++) channels[i / perChannel] += (double)dw[i] * dw[i];
                }
                else
                {
                    // [out][in][taps]
                    for (int i = 0; i < dw.Length; i++) channels[i / perChannel % channels.Length] += (double)dw[i] * dw[i];
                }
            };
            var random = new Random(seed);
            float[] input = new float[model.Tensors[model.Input].Shape.Size];
            for (int i = 0; i < count; i++)
            {
                samples.Fill(i, input, 0);
                if (!executor.TrySetInput(input, 0)) continue;
                executor.TrainStep(samples.Label(i) ?? random.Next(plan.NumClasses));
                executor.Reset();
            }
            if (count > 0)
            {
                for (int c = 0; c < convs.Count; c++)
                {
                    bias[c] /= count;
                    for (int i = 0; i < weights[c].Length; i++) weights[c][i] /= count;
                }
            }
            return new LayerScores { Bias = bias, WeightChannels = weights };
        }
    }
}
