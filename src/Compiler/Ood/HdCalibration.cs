namespace TinyTrain.Compiler.Ood;

using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Runtime.Execution;
using TinyTrain.Runtime.Ood;
using TinyTrain.Runtime.Plans;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

/// <summary>
/// Builds hyperdimensional class prototypes from in-distribution images run through the int8 runtime: each
/// image's classifier features are projected exactly as the board will project them (<see cref="HdProjection"/>)
/// and scaled to unit length. With one prototype per class they are bundled (summed) per labelled class; with
/// several, each class's vectors are split by spherical k-means (deterministic: evenly spaced members as the
/// first centres) and each cluster is bundled. The sums are stored as the config says: int8 (the direction,
/// scaled to [-127, 127]) or bits (the signs).
/// </summary>
public static class HdCalibration
{
    /// <summary>Rounds of k-means at most; it stops earlier when no vector changes cluster.</summary>
    public const int KMeansRounds = 20;

    /// <param name="count">Use the first <paramref name="count"/> images of <paramref name="data"/> (0 = all).</param>
    public static HdPrototypes Build(PlanImage plan, Dataset data, HdConfig config, int count = 0, Action<int, int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(config);
        int classes = plan.NumClasses, perClass = config.PrototypesPerClass;
        if (data.NumClasses > classes)
            throw new TinyTrainException($"calibration data '{data.Name}' has {data.NumClasses} classes but the plan's model outputs {classes}");
        int samples = count > 0 ? Math.Min(count, data.Count) : data.Count;
        if (samples == 0)
            throw new TinyTrainException($"calibration data '{data.Name}' is empty; prototypes need in-distribution images");

        TensorInfo features = plan.Tensor(OodBinding.FeatureTensor(plan));
        int f = features.ElementCount, dims = config.Dimensions;
        var executor = new Executor(plan);
        var quantizer = InputQuantizer.For(plan);
        byte[] input = new byte[quantizer.Length];
        int[] h = new int[dims], buckets = new int[HdProjection.BucketCount];
        // One prototype per class needs only the running sums; several need every vector for k-means.
        double[] sums = new double[(long)classes * perClass * dims];
        var vectors = new List<float[]>[classes];
        for (int k = 0; k < classes; k++) vectors[k] = new List<float[]>();
        int[] seen = new int[classes];
        for (int i = 0; i < samples; i++)
        {
            quantizer.Fill(data, i, input, 0);
            executor.SetInput(input, 0);
            executor.Invoke();
            HdProjection.Project(config.Seed, dims, executor.Arena, features.ArenaOffset, f, features.ZeroPoint, buckets, h, 0);
            double length = 0;
            for (int d = 0; d < dims; d++) length += (double)h[d] * h[d];
            if (length > 0)   // features all at zero have no direction to bundle
            {
                length = Math.Sqrt(length);
                int label = data.Labels[i];
                if (perClass == 1)
                {
                    for (int d = 0; d < dims; d++) sums[(long)label * dims + d] += h[d] / length;
                }
                else
                {
                    float[] v = new float[dims];
                    for (int d = 0; d < dims; d++) v[d] = (float)(h[d] / length);
                    vectors[label].Add(v);
                }
                seen[label]++;
            }
            if (progress is not null && (i % 256 == 255 || i == samples - 1)) progress(i + 1, samples);
        }
        for (int k = 0; k < classes; k++)
        {
            if (seen[k] < perClass)
                throw new TinyTrainException(
                    $"calibration data '{data.Name}' has {(seen[k] == 0 ? "no usable image" : $"only {seen[k]} usable images")} of class {k} among its first {samples}; " +
                    $"{perClass} prototype{(perClass == 1 ? "" : "s")} per class need at least as many: use more images");
            if (perClass > 1) Cluster(vectors[k], perClass, dims, sums, (long)k * perClass * dims);
        }
        return new HdPrototypes(config, classes, f, Store(config, classes * perClass, sums));
    }

    // Spherical k-means on unit vectors: assign each to the centre of highest cosine, re-bundle, repeat.
    private static void Cluster(List<float[]> vectors, int clusters, int dims, double[] sums, long at)
    {
        int n = vectors.Count;
        double[] centres = new double[clusters * dims];
        for (int c = 0; c < clusters; c++)
        {
            float[] first = vectors[(int)((long)c * n / clusters)];
            for (int d = 0; d < dims; d++) centres[c * dims + d] = first[d];
        }
        int[] assigned = new int[n];
        Array.Fill(assigned, -1);
        double[] lengths = new double[clusters];
        for (int round = 0; round < KMeansRounds; round++)
        {
            for (int c = 0; c < clusters; c++)
            {
                double s = 0;
                for (int d = 0; d < dims; d++) s += centres[c * dims + d] * centres[c * dims + d];
                lengths[c] = Math.Sqrt(s);
            }
            bool changed = false;
            for (int i = 0; i < n; i++)
            {
                float[] v = vectors[i];
                int best = 0;
                double bestCos = double.NegativeInfinity;
                for (int c = 0; c < clusters; c++)
                {
                    double dot = 0;
                    for (int d = 0; d < dims; d++) dot += v[d] * centres[c * dims + d];
                    double cos = lengths[c] > 0 ? dot / lengths[c] : double.NegativeInfinity;
                    if (cos > bestCos)
                    {
                        bestCos = cos;
                        best = c;
                    }
                }
                changed |= assigned[i] != best;
                assigned[i] = best;
            }
            if (!changed) break;
            // A cluster that lost every member keeps its old centre.
            int[] members = new int[clusters];
            foreach (int c in assigned) members[c]++;
            for (int c = 0; c < clusters; c++)
                if (members[c] > 0) Array.Clear(centres, c * dims, dims);
            for (int i = 0; i < n; i++)
            {
                int c = assigned[i];
                float[] v = vectors[i];
                for (int d = 0; d < dims; d++) centres[c * dims + d] += v[d];
            }
        }
        Array.Copy(centres, 0, sums, at, (long)clusters * dims);
    }

    private static byte[] Store(HdConfig config, int prototypes, double[] sums)
    {
        int dims = config.Dimensions;
        byte[] data = new byte[(long)prototypes * config.PrototypeBytes];
        for (int p = 0; p < prototypes; p++)
        {
            long at = (long)p * dims;
            if (config.Storage == HdStorage.Bits)
            {
                for (int d = 0; d < dims; d++)
                    if (sums[at + d] > 0) data[p * (dims / 8) + (d >> 3)] |= (byte)(1 << (d & 7));
                continue;
            }
            double max = 0;
            for (int d = 0; d < dims; d++) max = Math.Max(max, Math.Abs(sums[at + d]));
            if (max == 0) continue;
            for (int d = 0; d < dims; d++)
                data[at + d] = (byte)(sbyte)Math.Clamp((int)Math.Round(sums[at + d] / max * 127, MidpointRounding.AwayFromZero), -127, 127);
        }
        return data;
    }
}
