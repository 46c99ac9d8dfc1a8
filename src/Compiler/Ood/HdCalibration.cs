namespace TinyTrain.Compiler.Ood;

using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Runtime.Execution;
using TinyTrain.Runtime.Ood;
using TinyTrain.Runtime.Plan;
using PlanImage = TinyTrain.Runtime.Plan.Plan;

/// <summary>
/// Builds hyperdimensional class prototypes from in-distribution images run through the int8 runtime: each
/// image's classifier features are projected exactly as the board will project them (<see cref="HdProjection"/>),
/// scaled to unit length and bundled (summed) into the prototype of its labelled class; the sums are then
/// stored as the config says: int8 (the direction, scaled to [-127, 127]) or bits (the signs).
/// </summary>
public static class HdCalibration
{
    public static HdPrototypes Build(PlanImage plan, Dataset data, HdConfig config, int count = 0, Action<int, int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(config);
        int classes = plan.NumClasses;
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
        int[] h = new int[dims];
        double[] sums = new double[classes * dims];
        int[] seen = new int[classes];
        for (int i = 0; i < samples; i++)
        {
            quantizer.Fill(data, i, input, 0);
            executor.SetInput(input, 0);
            executor.Invoke();
            HdProjection.Project(config.Seed, dims, executor.Arena, features.ArenaOffset, f, features.ZeroPoint, h, 0);
            double length = 0;
            for (int d = 0; d < dims; d++) length += (double)h[d] * h[d];
            if (length == 0) continue;   // features all at zero: no direction to bundle
            length = Math.Sqrt(length);
            int label = data.Labels[i], at = label * dims;
            for (int d = 0; d < dims; d++) sums[at + d] += h[d] / length;
            seen[label]++;
            if (progress is not null && (i % 256 == 255 || i == samples - 1)) progress(i + 1, samples);
        }
        for (int k = 0; k < classes; k++)
        {
            if (seen[k] == 0)
                throw new TinyTrainException(
                    $"calibration data '{data.Name}' has no usable image of class {k} among its first {samples}; every class needs a prototype: use more images");
        }
        return new HdPrototypes(config, classes, f, Store(config, classes, sums));
    }

    private static byte[] Store(HdConfig config, int classes, double[] sums)
    {
        int dims = config.Dimensions;
        byte[] data = new byte[config.StateBytes(classes)];
        for (int k = 0; k < classes; k++)
        {
            int at = k * dims;
            if (config.Storage == HdStorage.Bits)
            {
                for (int d = 0; d < dims; d++)
                    if (sums[at + d] > 0) data[k * (dims / 8) + (d >> 3)] |= (byte)(1 << (d & 7));
                continue;
            }
            double max = 0;
            for (int d = 0; d < dims; d++) max = Math.Max(max, Math.Abs(sums[at + d]));
            for (int d = 0; d < dims; d++)
                data[at + d] = (byte)(sbyte)Math.Clamp((int)Math.Round(sums[at + d] / max * 127, MidpointRounding.AwayFromZero), -127, 127);
        }
        return data;
    }
}
