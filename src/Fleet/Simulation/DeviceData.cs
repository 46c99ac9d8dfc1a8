namespace TinyTrain.Fleet.Simulation;

using TinyTrain.Compiler.Data;
using TinyTrain.Emulator.Corruptions;

/// <summary>
/// One emulated device's non-IID world: its own corruption (MNIST-C) at its own severity and a class skew (two
/// favoured classes drawn <see cref="SkewWeight"/> times as often), labelled training samples per round from the
/// train split, and a held-out evaluation set from the test split under the same corruption and skew.
/// </summary>
public sealed class DeviceData
{
    public const int SkewWeight = 4;

    private DeviceData(string corruption, double severity, int[] favoured, float[][] train, int[] trainLabels, float[][] eval, int[] evalLabels)
    {
        Corruption = corruption;
        Severity = severity;
        Favoured = favoured;
        Train = train;
        TrainLabels = trainLabels;
        Eval = eval;
        EvalLabels = evalLabels;
    }

    public string Corruption { get; }
    public double Severity { get; }
    public int[] Favoured { get; }
    public float[][] Train { get; }
    public int[] TrainLabels { get; }
    public float[][] Eval { get; }
    public int[] EvalLabels { get; }

    public static DeviceData Create(Dataset train, Dataset test, string corruption, double severity, int trainCount, int evalCount, ulong seed)
    {
        // System.Random with a seed is deterministic across machines (its seeded algorithm is fixed).
        var rng = new Random((int)(seed ^ (seed >> 32)));
        int classes = train.NumClasses;
        int first = rng.Next(0, classes), second = (first + 1 + rng.Next(0, classes - 1)) % classes;
        int[] favoured = [first, second];
        ICorruption c = CorruptionCatalog.Get(corruption);
        (float[][] x, int[] y) Draw(Dataset data, int count)
        {
            var byClass = new List<int>[classes];
            for (int k = 0; k < classes; k++) byClass[k] = [];
            for (int i = 0; i < data.Count; i++) byClass[data.Labels[i]].Add(i);
            var inputs = new float[count][];
            var labels = new int[count];
            var corrupted = new byte[data.PixelsPerImage];
            int totalWeight = classes + 2 * (SkewWeight - 1);
            for (int s = 0; s < count; s++)
            {
                int pick = rng.Next(0, totalWeight);
                int label = pick < 2 * SkewWeight ? favoured[pick / SkewWeight] : Other(pick - 2 * SkewWeight, favoured);
                List<int> pool = byClass[label];
                int index = pool[rng.Next(0, pool.Count)];
                c.Apply(data.Image(index), corrupted, data.Cols, data.Rows, severity, (ulong)rng.NextInt64());
                var input = new float[corrupted.Length];
                for (int p = 0; p < input.Length; p++) input[p] = corrupted[p] * (1f / 255f);
                inputs[s] = input;
                labels[s] = label;
            }
            return (inputs, labels);
        }
        (float[][] trainX, int[] trainY) = Draw(train, trainCount);
        (float[][] evalX, int[] evalY) = Draw(test, evalCount);
        return new DeviceData(corruption, severity, favoured, trainX, trainY, evalX, evalY);
    }

    /// <summary>The k-th class that is not favoured.</summary>
    private static int Other(int k, int[] favoured)
    {
        int a = Math.Min(favoured[0], favoured[1]), b = Math.Max(favoured[0], favoured[1]);
        if (k >= a) k++;
        if (k >= b) k++;
        return k;
    }
}
