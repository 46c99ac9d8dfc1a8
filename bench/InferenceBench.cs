using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Onnx;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Compiler.Zoo;
using TinyTrain.Runtime.Execution;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

namespace TinyTrain.Bench;

/// <summary>
/// `inference`: single-thread, batch-1 int8 latency of the TinyTrain runtime (Executor.Invoke) against
/// ONNX Runtime on the same plan exported as QDQ. Both engines get the same input, set up once, so
/// the timed calls are SetInput + Invoke (a copy of the input into the arena, then the forward ops)
/// and Run alone. After a warm-up the engines alternate, round by round
/// and in alternating order, so that noise on the machine hits both; each reports its median.
/// Weights do not change the speed, so the models have random weights (calibrated on real images
/// for cnn-s, on random inputs for mbv2).
/// </summary>
internal static class InferenceBench
{
    public static object Run(BenchArgs args)
    {
        int cnnRuns = args.Int("runs-cnn", 1000), mbv2Runs = args.Int("runs-mbv2", 200);
        args.Log($"inference: single thread, batch 1; ONNX Runtime {OrtEnv.Instance().GetVersionString()}; {Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture}");

        Dataset fashion = DataCatalog.Load("fashion-mnist-mini", Split.Train);
        var cnn = ModelZoo.Build("cnn-s", resolution: 28, classes: 10, seed: 0);
        var cnnCalibration = CalibrationSet.FromData(fashion, cnn.InputShape, 512);
        var mbv2 = ModelZoo.Build("mbv2-w0.35", resolution: 128, classes: 10, seed: 0);
        var mbv2Calibration = CalibrationSet.Random(mbv2.InputShape, 16, seed: 0);

        var rows = new List<object>
        {
            Measure(args, "cnn-s", 28, PlanCompiler.Compile(cnn, cnnCalibration, new CompileOptions()), cnnRuns, warmup: 50,
                (quantizer, input) => quantizer.Fill(fashion, 0, input, 0)),
            Measure(args, "mbv2-w0.35", 128, PlanCompiler.Compile(mbv2, mbv2Calibration, new CompileOptions()), mbv2Runs, warmup: 10,
                (_, input) => new Random(1).NextBytes(input)),
        };
        return new { benchmark = "inference", models = rows };
    }

    private static object Measure(BenchArgs args, string name, int resolution, CompileResult compiled, int runs, int warmup,
        Action<InputQuantizer, byte[]> fillInput)
    {
        var plan = PlanImage.Load(compiled.Image, name + ".ttplan");
        long macs = compiled.Plan.Ops.Sum(o => o.Macs);
        var quantizer = InputQuantizer.For(plan);
        byte[] input = new byte[quantizer.Length];
        fillInput(quantizer, input);

        var executor = new Executor(plan);
        // The arena reuses the input's bytes once the first op has read them, so each inference copies the
        // input in again (as a device does with each new sample); ORT reads its bound input buffer each run.
        Action invoke = () =>
        {
            executor.SetInput(input, 0);
            executor.Invoke();
        };
        using var ort = new OrtRunner(QdqExporter.ToBytes(plan), input, plan.NumClasses);

        // Warm up for at least a second of calls, then pause: .NET recompiles hot methods at tier 1 on a
        // background thread about 100 ms after they turn hot, and the timed runs must see that code.
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < warmup || clock.ElapsedMilliseconds < 1000; i++)
        {
            invoke();
            ort.Run();
        }
        Thread.Sleep(500);
        for (int i = 0; i < warmup; i++)
        {
            invoke();
            ort.Run();
        }
        int maxDiff = 0;
        for (int k = 0; k < plan.NumClasses; k++) maxDiff = Math.Max(maxDiff, Math.Abs(executor.Output(k) - ort.Logits[k]));

        var runtimeTicks = new long[runs];
        var ortTicks = new long[runs];
        for (int r = 0; r < runs; r++)
        {
            if ((r & 1) == 0)
            {
                runtimeTicks[r] = Time(invoke);
                ortTicks[r] = Time(ort.Run);
            }
            else
            {
                ortTicks[r] = Time(ort.Run);
                runtimeTicks[r] = Time(invoke);
            }
        }
        double runtimeMs = MedianMs(runtimeTicks), ortMs = MedianMs(ortTicks);
        args.Log($"{name} @{resolution}: {macs:N0} MACs, runtime {runtimeMs:F3} ms, ORT {ortMs:F3} ms, runtime/ORT {runtimeMs / ortMs:F2} " +
            $"(median of {runs} alternating runs; logits differ by at most {maxDiff} LSB on the benchmark input" +
            (maxDiff > 1 ? ": random weights, so one-step rounding differences compound layer by layer)" : ")"));
        return new
        {
            name,
            resolution,
            macs,
            runtime_ms = Math.Round(runtimeMs, 4),
            ort_ms = Math.Round(ortMs, 4),
            ratio = Math.Round(runtimeMs / ortMs, 3),
        };
    }

    private static long Time(Action action)
    {
        long start = Stopwatch.GetTimestamp();
        action();
        return Stopwatch.GetTimestamp() - start;
    }

    private static double MedianMs(long[] ticks)
    {
        long[] sorted = (long[])ticks.Clone();
        Array.Sort(sorted);
        int n = sorted.Length;
        double median = n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0;
        return median * 1000.0 / Stopwatch.Frequency;
    }

    /// <summary>An ORT session as the runtime is used: one thread, sequential, input and outputs bound once.</summary>
    private sealed class OrtRunner : IDisposable
    {
        private readonly InferenceSession _session;
        private readonly RunOptions _runOptions = new();
        private readonly string[] _inputNames = { QdqExporter.InputName };
        private readonly string[] _outputNames = { QdqExporter.Int8OutputName };
        private readonly OrtValue[] _inputs, _outputs;
        private readonly sbyte[] _logits;

        public OrtRunner(byte[] model, byte[] int8Input, int classes)
        {
            using var options = new SessionOptions
            {
                IntraOpNumThreads = 1,
                InterOpNumThreads = 1,
                ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
                GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            };
            _session = new InferenceSession(model, options);
            var x = new sbyte[int8Input.Length];
            Buffer.BlockCopy(int8Input, 0, x, 0, x.Length);
            long[] shape = Array.ConvertAll(_session.InputMetadata[QdqExporter.InputName].Dimensions, d => (long)d);
            _logits = new sbyte[classes];
            _inputs = new[] { OrtValue.CreateTensorValueFromMemory(x, shape) };
            _outputs = new[] { OrtValue.CreateTensorValueFromMemory(_logits, new long[] { 1, classes }) };
        }

        public sbyte[] Logits => _logits;

        public void Run() => _session.Run(_runOptions, _inputNames, _inputs, _outputNames, _outputs);

        public void Dispose()
        {
            _inputs[0].Dispose();
            _outputs[0].Dispose();
            _runOptions.Dispose();
            _session.Dispose();
        }
    }
}
