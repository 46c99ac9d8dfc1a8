using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Onnx;
using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Runtime.Execution;
using TinyTrain.Runtime.Plans;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

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

/// <summary>How one op's output in ORT compares with the runtime's, both fed the same int8 inputs.</summary>
internal sealed record OpAgreement(int Index, string Name, OpKind Kind, int MaxDiff, long Differing, long Elements)
{
    public override string ToString() => $"{Index,3} {Kind,-16} {Name,-20} max {MaxDiff} LSB, {Differing}/{Elements} differ";
}

internal static class QdqTestSupport
{
    public static byte[] Export(PlanImage plan)
    {
        using var stream = new MemoryStream();
        TinyTrain.Compiler.Onnx.QdqExporter.Export(plan, stream);
        return stream.ToArray();
    }

    /// <summary>Runs the first <paramref name="count"/> images of <paramref name="data"/> through the runtime and ORT, end to end.</summary>
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

    /// <summary>
    /// Op by op: ORT runs every op of the export on the runtime's own int8 inputs to that op (each
    /// DequantizeLinear that reads an op's output reads a graph input instead, fed from the runtime),
    /// so a difference is that op's alone and is not carried forward.
    /// </summary>
    public static List<OpAgreement> CompareOpByOp(PlanImage plan, byte[] exported, Action<int, byte[]> fillInput, int count)
    {
        ModelProto model = ModelProto.Parser.ParseFrom(exported);
        // The export's uint8 value of each tensor: named after the tensor, the input's is "input.uint8".
        var tensorOf = new Dictionary<string, int>(StringComparer.Ordinal) { ["input.uint8"] = plan.InputTensor };
        var forward = new List<int>();     // the inference ops (a training plan interleaves Init and Save ops)
        for (int i = 0; i < plan.ForwardOpCount; i++)
            if (plan.Op(i).Phase == OpPhase.Forward) forward.Add(i);
        int ops = forward.Count;
        foreach (int i in forward) tensorOf[plan.Tensor(plan.Op(i).Output).Name()] = plan.Op(i).Output;
        var fed = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (NodeProto n in model.Graph.Node)
        {
            if (n.OpType != "DequantizeLinear" || !tensorOf.TryGetValue(n.Input[0], out int t)) continue;
            string name = n.Input[0] + ".fed";
            if (fed.TryAdd(name, t))
                model.Graph.Input.Add(UInt8ValueInfo(name, Shape(plan, t)));
            n.Input[0] = name;
        }
        var outputNames = new string[ops];
        for (int k = 0; k < ops; k++)
        {
            int output = plan.Op(forward[k]).Output;
            outputNames[k] = plan.Tensor(output).Name();
            model.Graph.Output.Add(UInt8ValueInfo(outputNames[k], Shape(plan, output)));
        }

        using var options = new SessionOptions { IntraOpNumThreads = 1, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
        using var session = new InferenceSession(model.ToByteArray(), options);
        using var run = new RunOptions();
        var executor = new Executor(plan);
        byte[] input = new byte[plan.Tensor(plan.InputTensor).ElementCount];
        var values = new byte[plan.TensorCount][];
        var maxDiff = new int[ops];
        var differing = new long[ops];
        var elements = new long[ops];
        for (int image = 0; image < count; image++)
        {
            fillInput(image, input);
            executor.SetInput(input, 0);
            values[plan.InputTensor] = Capture(executor, plan.Tensor(plan.InputTensor));
            for (int i = 0; i < plan.ForwardOpCount; i++)
            {
                executor.Run(i, i + 1);
                if (plan.Op(i).Phase == OpPhase.Forward)
                    values[plan.Op(i).Output] = Capture(executor, plan.Tensor(plan.Op(i).Output));
            }
            var inputs = new List<OrtValue> { OrtValue.CreateTensorValueFromMemory(Signed(input), Shape(plan, plan.InputTensor)) };
            var inputNames = new List<string> { "input" };
            foreach ((string name, int t) in fed)
            {
                inputNames.Add(name);
                inputs.Add(OrtValue.CreateTensorValueFromMemory(values[t], Shape(plan, t)));
            }
            using (IDisposableReadOnlyCollection<OrtValue> outputs = session.Run(run, inputNames, inputs, outputNames))
            {
                for (int k = 0; k < ops; k++)
                {
                    ReadOnlySpan<byte> ort = outputs[k].GetTensorDataAsSpan<byte>();
                    byte[] ours = values[plan.Op(forward[k]).Output];
                    for (int e = 0; e < ours.Length; e++)
                    {
                        int diff = Math.Abs(ort[e] - ours[e]);
                        maxDiff[k] = Math.Max(maxDiff[k], diff);
                        if (diff != 0) differing[k]++;
                    }
                    elements[k] += ours.Length;
                }
            }
            foreach (OrtValue v in inputs) v.Dispose();
        }
        var result = new List<OpAgreement>();
        for (int k = 0; k < ops; k++)
            result.Add(new OpAgreement(forward[k], outputNames[k], plan.Op(forward[k]).Kind, maxDiff[k], differing[k], elements[k]));
        return result;
    }

    // A tensor as the export holds it inside the graph: uint8 = int8 + 128.
    private static byte[] Capture(Executor executor, TensorInfo t)
    {
        var u = new byte[t.ElementCount];
        for (int k = 0; k < u.Length; k++) u[k] = (byte)(executor.Arena[t.ArenaOffset + k] ^ 0x80);
        return u;
    }

    private static sbyte[] Signed(byte[] int8AsBytes)
    {
        var s = new sbyte[int8AsBytes.Length];
        Buffer.BlockCopy(int8AsBytes, 0, s, 0, s.Length);
        return s;
    }

    // The exporter holds a fully connected op's output as (1, C) and every other tensor as (1, C, H, W).
    private static long[] Shape(PlanImage plan, int tensor)
    {
        TensorInfo t = plan.Tensor(tensor);
        for (int i = 0; i < plan.ForwardOpCount; i++)
            if (plan.Op(i).Output == tensor && plan.Op(i).Kind == OpKind.FullyConnected && plan.Op(i).Phase == OpPhase.Forward) return new long[] { 1, t.C };
        return new long[] { 1, t.C, t.H, t.W };
    }

    private static ValueInfoProto UInt8ValueInfo(string name, long[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (long d in dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Uint8, Shape = shape } },
        };
    }
}
