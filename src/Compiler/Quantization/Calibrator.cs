namespace TinyTrain.Compiler.Quantization;

using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Training;

/// <summary>
/// Post-training calibration: runs the folded float graph on real samples and records each
/// lowered tensor's range (min and max over all samples, as TFLite's converter does).
/// </summary>
public static class Calibrator
{
    public static void Run(Graph.Graph folded, QuantizedModel model, CalibrationSet samples)
    {
        int batch = Math.Min(128, samples.Count);
        var net = new FloatNetwork(folded, batch);
        foreach (QTensor t in model.Tensors)
        {
            t.Min = float.PositiveInfinity;
            t.Max = float.NegativeInfinity;
        }
        for (int start = 0; start < samples.Count; start += batch)
        {
            int n = Math.Min(batch, samples.Count - start);
            for (int s = 0; s < n; s++) samples.Fill(start + s, net.InputBuffer, s * folded.InputShape.Size);
            net.Forward(n, training: false);
            foreach (QTensor t in model.Tensors)
            {
                ReadOnlySpan<float> values = net.Activation(t.SourceNode, n);
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
            }
        }
    }
}

/// <summary>Calibration inputs in the model's float input layout: real images, or seeded random ones for architectures without data.</summary>
public sealed class CalibrationSet
{
    private readonly Dataset? _data;
    private readonly Graph.Shape _shape;
    private readonly int _seed;

    private CalibrationSet(Dataset? data, Graph.Shape shape, int count, int seed)
    {
        _data = data;
        _shape = shape;
        Count = count;
        _seed = seed;
    }

    public int Count { get; }
    public string Description => _data is null ? $"{Count} random inputs (seed {_seed})" : $"{Count} images of {_data.Name}";

    public static CalibrationSet FromData(Dataset data, Graph.Shape inputShape, int count)
    {
        if (data.Count == 0) throw new TinyTrainException($"calibration data '{data.Name}' is empty");
        return new CalibrationSet(data, inputShape, Math.Min(count, data.Count), 0);
    }

    /// <summary>Uniform [0, 1] inputs, for planning memory of architectures that have no trained weights or data.</summary>
    public static CalibrationSet Random(Graph.Shape inputShape, int count, int seed) => new(null, inputShape, count, seed);

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
