namespace TinyTrain.Compiler.Quantization;

using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Training;

/// <summary>
/// Post-training calibration: runs the folded float graph on real samples and sets each lowered
/// tensor's range. Min/max over all samples is TFLite's converter default; with a percentile below
/// 100 the range keeps that share of the values on each side (a second pass fills a histogram), so
/// that a few outliers do not coarsen the int8 step for everything else.
/// </summary>
public static class Calibrator
{
    private const int Bins = 4096;

    public static void Run(Graphs.Graph folded, QuantizedModel model, CalibrationSet samples, double percentile = 100)
    {
        if (!(percentile > 50 && percentile <= 100))
            throw new TinyTrainException($"calibration percentile {percentile} must be in (50, 100]");
        foreach (QTensor t in model.Tensors)
        {
            t.Min = float.PositiveInfinity;
            t.Max = float.NegativeInfinity;
        }
        ForEachBatch(folded, model, samples, (t, values) =>
        {
            float min = t.Min, max = t.Max;
            foreach (float v in values)
            {
                if (!float.IsFinite(v))
                    throw new TinyTrainException($"calibration: tensor '{t.Name}' takes a non-finite value on a calibration sample; the model or the data is broken");
                if (v < min) min = v;
                if (v > max) max = v;
            }
            t.Min = min;
            t.Max = max;
        });
        if (percentile < 100) ClipToPercentile(folded, model, samples, percentile);
        ApplyRangeHints(folded, model);
    }

    // An adapter's output that is zero on every calibration sample (it starts at zero) takes a share of
    // the range of the tensor it is added to, so that it has room to grow once trained.
    private static void ApplyRangeHints(Graphs.Graph folded, QuantizedModel model)
    {
        foreach (QTensor t in model.Tensors)
        {
            Graphs.Node node = folded.Nodes[t.SourceNode];
            if (node.RangeLike is null) continue;
            QTensor like = model.Tensors.Find(x => x.Name == node.RangeLike)
                ?? throw new TinyTrainException($"node '{node.Name}': its range hint names tensor '{node.RangeLike}', which the model does not have");
            if (node.RangeFraction < 0)
            {
                // Symmetric: a branch added to a ReLU output (all >= 0) must also be able to lower it.
                float side = -node.RangeFraction * Math.Max(-like.Min, like.Max);
                t.Min = Math.Min(t.Min, -side);
                t.Max = Math.Max(t.Max, side);
                continue;
            }
            t.Min = Math.Min(t.Min, node.RangeFraction * like.Min);
            t.Max = Math.Max(t.Max, node.RangeFraction * like.Max);
        }
    }

    private static void ClipToPercentile(Graphs.Graph folded, QuantizedModel model, CalibrationSet samples, double percentile)
    {

        var histograms = new Dictionary<QTensor, long[]>();
        foreach (QTensor t in model.Tensors) histograms[t] = new long[Bins];
        ForEachBatch(folded, model, samples, (t, values) =>
        {
            long[] h = histograms[t];
            float width = (t.Max - t.Min) / Bins;
            if (!(width > 0)) return;
            foreach (float v in values) h[Math.Clamp((int)((v - t.Min) / width), 0, Bins - 1)]++;
        });
        foreach (QTensor t in model.Tensors)
        {
            long[] h = histograms[t];
            long total = h.Sum();
            if (total == 0 || !(t.Max > t.Min)) continue;
            long cut = (long)(total * (100 - percentile) / 100);
            float width = (t.Max - t.Min) / Bins;
            int low = 0, high = Bins - 1;
            for (long seen = 0; low < Bins - 1 && seen + h[low] <= cut; low++) seen += h[low];
            for (long seen = 0; high > low && seen + h[high] <= cut; high--) seen += h[high];
            float min = t.Min + low * width, max = t.Min + (high + 1) * width;
            // Never narrow a side that holds zero (ReLU outputs start at exactly 0).
            t.Min = t.Min >= 0 ? t.Min : Math.Min(min, 0f);
            t.Max = Math.Max(max, 0f);
        }
    }

    private static void ForEachBatch(Graphs.Graph folded, QuantizedModel model, CalibrationSet samples, Action<QTensor, ReadOnlySpan<float>> visit)
    {
        int batch = Math.Min(128, samples.Count);
        var net = new FloatNetwork(folded, batch);
        for (int start = 0; start < samples.Count; start += batch)
        {
            int n = Math.Min(batch, samples.Count - start);
            for (int s = 0; s < n; s++) samples.Fill(start + s, net.InputBuffer, s * folded.InputShape.Size);
            net.Forward(n, training: false);
            foreach (QTensor t in model.Tensors) visit(t, net.Activation(t.SourceNode, n));
        }
    }
}

/// <summary>Calibration inputs in the model's float input layout: real images, or seeded random ones for architectures without data.</summary>
public sealed class CalibrationSet
{
    private readonly Dataset? _data;
    private readonly Graphs.Shape _shape;
    private readonly int _seed;

    private CalibrationSet(Dataset? data, Graphs.Shape shape, int count, int seed)
    {
        _data = data;
        _shape = shape;
        Count = count;
        _seed = seed;
    }

    public int Count { get; }
    public string Description => _data is null ? $"{Count} random inputs (seed {_seed})" : $"{Count} images of {_data.Name}";

    public static CalibrationSet FromData(Dataset data, Graphs.Shape inputShape, int count)
    {
        if (data.Count == 0) throw new TinyTrainException($"calibration data '{data.Name}' is empty");
        return new CalibrationSet(data, inputShape, Math.Min(count, data.Count), 0);
    }

    /// <summary>Uniform [0, 1] inputs, for planning memory of architectures that have no trained weights or data.</summary>
    public static CalibrationSet Random(Graphs.Shape inputShape, int count, int seed) => new(null, inputShape, count, seed);

    /// <summary>The sample's label when the set comes from labelled data; null for random inputs.</summary>
    public int? Label(int index) => _data is null ? null : _data.Labels[index];

    public void Fill(int index, float[] destination, int offset)
    {
        if (_data is not null)
        {
            InputLayout.Fill(_data, index, _shape, destination, offset);
            return;
        }
        var random = new Random(unchecked(_seed * 1_000_003 + index));   // deterministic across processes, unlike HashCode
        for (int i = 0; i < _shape.Size; i++) destination[offset + i] = (float)random.NextDouble();
    }
}
