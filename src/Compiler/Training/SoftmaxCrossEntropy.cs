namespace TinyTrain.Compiler.Training;

/// <summary>Softmax cross-entropy averaged over a batch: logits are (N, K), labels in [0, K).</summary>
public static class SoftmaxCrossEntropy
{
    /// <summary>Returns the mean loss; writes dL/dlogits into dLogits and the number of correct top-1 predictions.</summary>
    public static float Compute(float[] logits, ReadOnlySpan<byte> labels, int n, int k, float[] dLogits, out int correct)
    {
        double loss = 0;
        correct = 0;
        for (int s = 0; s < n; s++)
        {
            int o = s * k;
            int label = labels[s];
            if (label >= k)
                throw new TinyTrainException($"label {label} is outside the model's {k} classes");
            float max = logits[o];
            int argmax = 0;
            for (int j = 1; j < k; j++)
                if (logits[o + j] > max) { max = logits[o + j]; argmax = j; }
            if (argmax == label) correct++;
            double sum = 0;
            for (int j = 0; j < k; j++) sum += Math.Exp(logits[o + j] - max);
            double logSum = Math.Log(sum) + max;
            loss += logSum - logits[o + label];
            for (int j = 0; j < k; j++)
            {
                float p = (float)Math.Exp(logits[o + j] - logSum);
                dLogits[o + j] = (p - (j == label ? 1f : 0f)) / n;
            }
        }
        return (float)(loss / n);
    }
}
