namespace TinyTrain.Compiler.Quantization;

using TinyTrain.Compiler.Training;

/// <summary>
/// The source statistics of each NormAffine op's input (the folded conv's pre-activation u): per-channel mean and
/// variance over calibration samples and positions, in real units. Norm-statistics adaptation maps the running
/// statistics of the stream back onto these (the folded BatchNorm's own running statistics, measured where the
/// int8 model reads them).
/// </summary>
public static class NormStatistics
{
    public static void Run(Graphs.Graph folded, QuantizedModel model, CalibrationSet samples)
    {
        var norms = model.Ops.Where(o => o.Kind == QOpKind.NormAffine).ToList();
        if (norms.Count == 0) return;
        var sums = new Dictionary<QOp, (double[] Sum, double[] Squares, long Count)>();
        foreach (QOp op in norms) sums[op] = (new double[op.OutChannels], new double[op.OutChannels], 0);

        int batch = Math.Min(128, samples.Count);
        var net = new FloatNetwork(folded, batch);
        for (int start = 0; start < samples.Count; start += batch)
        {
            int n = Math.Min(batch, samples.Count - start);
            for (int s = 0; s < n; s++) samples.Fill(start + s, net.InputBuffer, s * folded.InputShape.Size);
            net.Forward(n, training: false);
            foreach (QOp op in norms)
            {
                QTensor u = model.Tensors[op.Inputs[0]];
                ReadOnlySpan<float> values = net.Activation(u.SourceNode, n);
                (double[] sum, double[] squares, long count) = sums[op];
                int plane = u.Shape.H * u.Shape.W, channels = u.Shape.C;
                for (int s = 0; s < n; s++)
                    for (int c = 0; c < channels; c++)
                    {
                        int at = (s * channels + c) * plane;
                        for (int i = 0; i < plane; i++)
                        {
                            double v = values[at + i];
                            sum[c] += v;
                            squares[c] += v * v;
                        }
                    }
                sums[op] = (sum, squares, count + (long)n * plane);
            }
        }
        foreach (QOp op in norms)
        {
            (double[] sum, double[] squares, long count) = sums[op];
            int channels = op.OutChannels;
            var stats = new float[2 * channels];
            for (int c = 0; c < channels; c++)
            {
                double mean = sum[c] / count;
                stats[c] = (float)mean;
                stats[channels + c] = (float)Math.Max(squares[c] / count - mean * mean, 0);
            }
            op.SourceStatistics = stats;
        }
    }
}
