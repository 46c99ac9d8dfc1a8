using System.Text.Json;
using TinyTrain.Bench;

// Benchmarks, not tests: speed and learning figures on this machine, printed as a table or --json.
// Usage: dotnet run -c Release --project bench -- <name> [--json] [options]
var benchmarks = new Dictionary<string, Func<BenchArgs, object>>
{
    ["pretrain"] = PretrainBench.Run,
    ["inference"] = InferenceBench.Run,
    ["ood"] = OodBench.Run,
    ["tta"] = TtaBench.Run,
    ["transfer"] = TransferBench.Run,
    ["train-step"] = TrainStepBench.Run,
    ["memory"] = MemoryBench.Run,
    ["auto-scheme"] = AutoSchemeBench.Run,
    ["continual"] = ContinualBench.Run,
    ["fleet"] = FleetBench.Run,
};

if (args.Length == 0 || !benchmarks.TryGetValue(args[0], out var bench))
{
    Console.Error.WriteLine($"usage: dotnet run -c Release --project bench -- <{string.Join("|", benchmarks.Keys)}> [--json]");
    return 2;
}
var benchArgs = new BenchArgs(args[1..]);
try
{
    object result = bench(benchArgs);
    if (benchArgs.Json)
        Console.WriteLine(JsonSerializer.Serialize(result, result.GetType(), new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }));
    return 0;
}
catch (TinyTrain.TinyTrainException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}

namespace TinyTrain.Bench
{
    public sealed class BenchArgs(string[] args)
    {
        public bool Json => args.Contains("--json");

        public int Int(string name, int fallback)
        {
            int i = Array.IndexOf(args, "--" + name);
            return i >= 0 && i + 1 < args.Length && int.TryParse(args[i + 1], out int v) ? v : fallback;
        }

        public string Text(string name, string fallback)
        {
            int i = Array.IndexOf(args, "--" + name);
            return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
        }

        /// <summary>Human progress goes to stderr so that --json output stays one object.</summary>
        public void Log(string line) => Console.Error.WriteLine(line);
    }
}
