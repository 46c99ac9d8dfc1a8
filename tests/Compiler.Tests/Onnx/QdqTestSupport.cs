using Microsoft.ML.OnnxRuntime;
using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Runtime.Execution;
using PlanImage = TinyTrain.Runtime.Plan.Plan;

namespace TinyTrain.Compiler.Tests.Onnx;

/// <summary>
/// One ONNX Runtime session over a QDQ model, batch 1, single thread, with its input and outputs
/// bound once (as the benchmark does), so that Run only runs.
/// </summary>
internal sealed class OrtInt8Session : IDisposable
{
    private readonly InferenceSession _session;
    private readonly RunOptions _run = new();
    private readonly OrtValue _input, _logits, _logitsFloat;
    private readonly string[] _inputNames = { "input" }, _outputNames = { "logits_int8", "logits" };
    private readonly sbyte[] _x, _y;
    private readonly float[] _yFloat;

    public OrtInt8Session(byte[] model, int inputLength, int classes, string? optimizedModelPath = null)
    {
        using var options = new SessionOptions
        {
            IntraOpNumThreads = 1,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        if (optimizedModelPath is not null) options.OptimizedModelFilePath = optimizedModelPath;
        _session = new InferenceSession(model, options);
        NodeMetadata input = _session.InputMetadata["input"];
        long[] shape = Array.ConvertAll(input.Dimensions, d => (long)d);
        _x = new sbyte[inputLength];
        _y = new sbyte[classes];
        _yFloat = new float[classes];
        _input = OrtValue.CreateTensorValueFromMemory(_x, shape);
        _logits = OrtValue.CreateTensorValueFromMemory(_y, new long[] { 1, classes });
        _logitsFloat = OrtValue.CreateTensorValueFromMemory(_yFloat, new long[] { 1, classes });
    }

    /// <summary>The int8 logits of the last <see cref="Run"/> (a live buffer, not a copy).</summary>
    public sbyte[] Logits => _y;

    public float[] LogitsFloat => _yFloat;

    public void SetInput(byte[] int8AsBytes) => Buffer.BlockCopy(int8AsBytes, 0, _x, 0, _x.Length);

    public void Run() => _session.Run(_run, _inputNames, new[] { _input }, _outputNames, new[] { _logits, _logitsFloat });

    public void Dispose()
    {
        _input.Dispose();
        _logits.Dispose();
        _logitsFloat.Dispose();
        _run.Dispose();
        _session.Dispose();
    }
}

/// <summary>How closely ORT's int8 logits follow the runtime's over a set of images.</summary>
internal sealed record Agreement(int Images, int Logits, int MaxDiff, int DifferingLogits, int SameTop1, int[] Histogram)
{
    public double FractionDiffering => (double)DifferingLogits / Logits;
    public double Top1Agreement => (double)SameTop1 / Images;

    public override string ToString() =>
        $"{Images} images: max |runtime - ORT| = {MaxDiff} LSB, {DifferingLogits}/{Logits} logits differ ({FractionDiffering:P3}), " +
        $"top-1 identical on {SameTop1}/{Images} ({Top1Agreement:P2}); diff histogram [0, 1, 2, >2] = [{string.Join(", ", Histogram)}]";
}

internal static class QdqTestSupport
{
    public static byte[] Export(PlanImage plan)
    {
        using var stream = new MemoryStream();
        TinyTrain.Compiler.Onnx.QdqExporter.Export(plan, stream);
        return stream.ToArray();
    }

    /// <summary>Runs the first <paramref name="count"/> images of <paramref name="data"/> through the runtime and ORT.</summary>
    public static Agreement Compare(PlanImage plan, byte[] model, Dataset data, int count)
    {
        var executor = new Executor(plan);
        var quantizer = InputQuantizer.For(plan);
        int classes = plan.NumClasses;
        using var ort = new OrtInt8Session(model, quantizer.Length, classes);
        byte[] input = new byte[quantizer.Length];
        int maxDiff = 0, differing = 0, sameTop1 = 0;
        var histogram = new int[4];
        count = Math.Min(count, data.Count);
        for (int i = 0; i < count; i++)
        {
            quantizer.Fill(data, i, input, 0);
            executor.SetInput(input, 0);
            executor.Invoke();
            ort.SetInput(input);
            ort.Run();
            int ortTop1 = 0;
            for (int k = 0; k < classes; k++)
            {
                int diff = Math.Abs(executor.Output(k) - ort.Logits[k]);
                maxDiff = Math.Max(maxDiff, diff);
                if (diff != 0) differing++;
                histogram[Math.Min(diff, 3)]++;
                if (ort.Logits[k] > ort.Logits[ortTop1]) ortTop1 = k;
            }
            if (ortTop1 == executor.ArgMax()) sameTop1++;
        }
        return new Agreement(count, count * classes, maxDiff, differing, sameTop1, histogram);
    }
}
