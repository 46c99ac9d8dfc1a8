using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using TinyTrain.Fleet.Agent;
using TinyTrain.Fleet.Messages;
using TinyTrain.Fleet.Payload;
using TinyTrain.Fleet.Transport;

namespace TinyTrain.Cli.Tests;

/// <summary>`tinytrain fleet aggregate` and `fleet keygen`: a merger and an ingest worker as real processes, a worker SIGKILLed mid-run, and every refusal.</summary>
public sealed class FleetAggregateCommandTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "tinytrain-cli-aggregate-" + Guid.NewGuid().ToString("N"));

    public FleetAggregateCommandTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    [Fact]
    public void Keygen_writes_a_key_pair_and_never_overwrites_one()
    {
        var r = CliRunner.Run("fleet", "keygen", "--name", "aggregator", "--out", _dir);
        Assert.True(r.ExitCode == 0, r.Stderr);
        using ECDsa key = FleetKeys.LoadPrivate(Path.Combine(_dir, "aggregator.pem"), "key");
        using ECDsa pub = FleetKeys.LoadPublic(Path.Combine(_dir, "aggregator.pub.pem"), "key");
        byte[] data = [1, 2, 3];
        byte[] signature = key.SignData(data, HashAlgorithmName.SHA256);
        Assert.True(pub.VerifyData(data, signature, HashAlgorithmName.SHA256));
        if (!OperatingSystem.IsWindows())
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(_dir, "aggregator.pem")));
        Assert.Contains("exists already; a key is not overwritten", CliRunner.AssertOneLineError(CliRunner.Run("fleet", "keygen", "--name", "aggregator", "--out", _dir)));
        Assert.Contains("cannot be part of an MQTT topic", CliRunner.AssertOneLineError(CliRunner.Run("fleet", "keygen", "--name", "a/b", "--out", _dir)));
    }

    [Fact]
    public void Aggregate_refuses_what_it_cannot_run_with_one_line_each()
    {
        string plan = Path.Combine(_dir, "p.ttplan");
        Assert.Equal(0, CliRunner.Run("compile", "cnn-s", "--update", "bias:1", "--calib", "mnist-mini", "-o", plan).ExitCode);
        Assert.Equal(0, CliRunner.Run("fleet", "keygen", "--name", "aggregator", "--out", _dir).ExitCode);
        string devices = Path.Combine(_dir, "devices");
        Assert.Equal(0, CliRunner.Run("fleet", "keygen", "--name", "dev0", "--out", devices).ExitCode);
        string key = Path.Combine(_dir, "aggregator.pem"), state = Path.Combine(_dir, "state");
        string[] good = ["fleet", "aggregate", "--broker", "mqtt://127.0.0.1:1", "--plan", plan, "--key", key, "--devices", devices, "--state", state];
        string Refusal(params string[] args) => CliRunner.AssertOneLineError(CliRunner.Run(args));
        string[] Without(string option) => [.. good.Where((_, i) => good[i] != option && (i == 0 || good[i - 1] != option))];
        string[] With(string option, string value) => [.. Without(option), option, value];

        Assert.Contains("missing --key FILE: the aggregator's private key", Refusal(Without("--key")));
        Assert.Contains("missing --broker", Refusal(Without("--broker")));
        Assert.Contains("missing --state DIR", Refusal(Without("--state")));
        Assert.Contains("missing --devices DIR", Refusal(Without("--devices")));
        Assert.Contains($"aggregator key {Path.Combine(_dir, "nope.pem")} does not exist", Refusal(With("--key", Path.Combine(_dir, "nope.pem"))));
        Assert.Contains("holds only a public key", Refusal(With("--key", Path.Combine(_dir, "aggregator.pub.pem"))));
        File.WriteAllText(Path.Combine(_dir, "junk.pem"), "not a key");
        Assert.Contains("is not an EC private key in PEM", Refusal(With("--key", Path.Combine(_dir, "junk.pem"))));
        Assert.Contains("not an MQTT URL", Refusal(With("--broker", "http://127.0.0.1:1883")));
        File.WriteAllBytes(Path.Combine(_dir, "junk.ttplan"), [1, 2, 3, 4]);
        string badPlan = Refusal(With("--plan", Path.Combine(_dir, "junk.ttplan")));
        Assert.Contains("junk.ttplan", badPlan);
        Assert.Contains("no such plan file", Refusal(With("--plan", Path.Combine(_dir, "nope.ttplan"))));
        Directory.CreateDirectory(Path.Combine(_dir, "empty"));
        Assert.Contains("holds no *.pub.pem files", Refusal(With("--devices", Path.Combine(_dir, "empty"))));
        Assert.Contains("--role must be single, worker or merger", Refusal(With("--role", "leader")));
        Assert.Contains("--role worker needs --id NAME", Refusal(With("--role", "worker")));
        Assert.Contains("--role worker needs --aggregator-key FILE", Refusal([.. With("--role", "worker"), "--id", "w1"]));
        Assert.Contains("--role merger needs --workers DIR", Refusal(With("--role", "merger")));
        Assert.Contains("unknown part 'avg'", Refusal(With("--aggregation", "avg")));
        // Everything right but no broker there: says so.
        Assert.Contains("cannot reach broker mqtt://127.0.0.1:1", Refusal(good));
    }

    [Fact]
    public async Task A_merger_and_an_ingest_worker_as_processes_keep_one_global_when_the_worker_is_killed()
    {
        string plan = Path.Combine(_dir, "p.ttplan");
        Assert.Equal(0, CliRunner.Run("compile", "cnn-s", "--update", "bias:1", "--calib", "mnist-mini", "-o", plan).ExitCode);
        string keys = Path.Combine(_dir, "keys"), devices = Path.Combine(_dir, "devices"), workers = Path.Combine(_dir, "workers");
        Assert.Equal(0, CliRunner.Run("fleet", "keygen", "--name", "aggregator", "--out", keys).ExitCode);
        Assert.Equal(0, CliRunner.Run("fleet", "keygen", "--name", "w1", "--out", keys).ExitCode);
        Directory.CreateDirectory(workers);
        File.Copy(Path.Combine(keys, "w1.pub.pem"), Path.Combine(workers, "w1.pub.pem"));
        FleetModel model = FleetModel.FromPlan(TinyTrain.Runtime.Plans.Plan.Load(File.ReadAllBytes(plan), plan), "adapt");
        var topics = new FleetTopics("cli", model.ModelId, model.Task);
        var deviceKeys = new Dictionary<string, ECDsa>();
        Directory.CreateDirectory(devices);
        for (int i = 0; i < 3; i++)
        {
            deviceKeys[$"dev{i}"] = FleetKeys.Create();
            File.WriteAllText(Path.Combine(devices, $"dev{i}.pub.pem"), deviceKeys[$"dev{i}"].ExportSubjectPublicKeyInfoPem());
        }
        ECDsa aggregatorPublic = FleetKeys.LoadPublic(Path.Combine(keys, "aggregator.pub.pem"), "key");

        await using EmbeddedBroker broker = await EmbeddedBroker.StartAsync();
        string url = $"mqtt://127.0.0.1:{broker.Port.ToString(CultureInfo.InvariantCulture)}";
        string[] common = ["fleet", "aggregate", "--broker", url, "--fleet", "cli", "--plan", plan, "--buffer", "4", "--seconds", "120"];
        string[] mergerArgs = [.. common, "--role", "merger", "--key", Path.Combine(keys, "aggregator.pem"), "--workers", workers, "--state", Path.Combine(_dir, "merger")];
        string[] workerArgs = [.. common, "--role", "worker", "--id", "w1", "--key", Path.Combine(keys, "w1.pem"), "--aggregator-key", Path.Combine(keys, "aggregator.pub.pem"),
            "--devices", devices, "--state", Path.Combine(_dir, "w1")];
        using var merger = new Child(mergerArgs);
        var worker = new Child(workerArgs);
        var agents = new List<DeviceAgent>();
        try
        {
            await merger.WaitFor("stopping after 120 s");
            await worker.WaitFor("stopping after 120 s");
            foreach ((string id, ECDsa key) in deviceKeys)
            {
                var agent = new DeviceAgent(id, key, aggregatorPublic, model, topics, broker.Endpoint, Path.Combine(_dir, id), "cli") { ResendAfter = TimeSpan.FromSeconds(3) };
                await agent.StartAsync(TimeSpan.FromSeconds(20));
                agents.Add(agent);
            }
            var delta = new float[model.Layout.TotalCount];
            for (int round = 0; round < 2; round++)
                foreach (DeviceAgent agent in agents) await agent.PublishUpdateAsync(delta, 3);
            // The worker is SIGKILLed while updates arrive; the devices keep sending; it starts again from its state directory.
            worker.Kill();
            worker.Dispose();
            for (int round = 0; round < 2; round++)
                foreach (DeviceAgent agent in agents) await agent.PublishUpdateAsync(delta, 3);
            worker = new Child(workerArgs);
            await Until(() => agents.All(a => a.Outbox.PendingCount == 0 && a.StagedVersion == 3), 60);
        }
        finally
        {
            foreach (DeviceAgent agent in agents) await agent.DisposeAsync();
            worker.Terminate();
            worker.Dispose();
            merger.Terminate();
        }
        // SIGTERM: a clean stop with the totals: 12 updates, 3 rounds of 4, each once.
        Assert.Contains("stopped: global version 3, 12 updates accepted, 0 buffered", merger.Output);
        Assert.Contains("global version 3 published (4 updates", merger.Output);
    }

    private static async Task Until(Func<bool> condition, double seconds)
    {
        DateTime deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("condition not met in time");
            await Task.Delay(50);
        }
    }

    /// <summary>A `tinytrain` process running beside the test, its output collected.</summary>
    private sealed class Child : IDisposable
    {
        private readonly Process _process;
        private readonly System.Text.StringBuilder _output = new();

        public Child(string[] args)
        {
            var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "tinytrain.dll"));
            foreach (string a in args) info.ArgumentList.Add(a);
            info.Environment["NO_COLOR"] = "1";
            info.Environment["COLUMNS"] = "400";
            _process = Process.Start(info)!;
            _process.OutputDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
            _process.ErrorDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
        }

        public string Output { get { lock (_output) return _output.ToString(); } }

        public async Task WaitFor(string text)
        {
            DateTime deadline = DateTime.UtcNow.AddSeconds(60);
            while (!Output.Contains(text, StringComparison.Ordinal))
            {
                if (_process.HasExited || DateTime.UtcNow > deadline) throw new InvalidOperationException($"tinytrain did not say '{text}':\n{Output}");
                await Task.Delay(50);
            }
        }

        public void Kill()
        {
            if (!_process.HasExited) Process.Start("kill", ["-KILL", _process.Id.ToString(CultureInfo.InvariantCulture)])!.WaitForExit();
            _process.WaitForExit();
        }

        public void Terminate()
        {
            if (!_process.HasExited) Process.Start("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)])!.WaitForExit();
            if (!_process.WaitForExit(30_000)) _process.Kill();
            _process.WaitForExit();
        }

        public void Dispose() => _process.Dispose();
    }
}
