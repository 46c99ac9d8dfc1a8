namespace TinyTrain.Compiler.Compilation;

using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Runtime.Execution;

public sealed record EvalResult(float Accuracy, int Samples, int Correct);

/// <summary>Accuracy of a plan run by the int8 runtime, sample by sample (batch 1, as on the device).</summary>
public static class PlanEvaluator
{
    public static EvalResult Evaluate(Runtime.Plans.Plan plan, Dataset data, int maxSamples = 0, Action<int, int>? progress = null)
    {
        if (data.NumClasses > plan.NumClasses)
            throw new TinyTrainException($"data set '{data.Name}' has {data.NumClasses} classes but the plan's model outputs {plan.NumClasses}");
        var executor = new Executor(plan);
        var quantizer = InputQuantizer.For(plan);
        byte[] input = new byte[quantizer.Length];
        int count = maxSamples > 0 ? Math.Min(maxSamples, data.Count) : data.Count, correct = 0;
        for (int i = 0; i < count; i++)
        {
            quantizer.Fill(data, i, input, 0);
            executor.SetInput(input, 0);
            executor.Invoke();
            if (executor.ArgMax() == data.Labels[i]) correct++;
            if (progress is not null && (i % 256 == 255 || i == count - 1)) progress(i + 1, count);
        }
        return new EvalResult(count == 0 ? 0f : (float)correct / count, count, correct);
    }
}
