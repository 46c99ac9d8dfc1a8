using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using TinyTrain.Fleet.Agent;
using TinyTrain.Fleet.Aggregation;
using TinyTrain.Fleet.Messages;
using TinyTrain.Fleet.Payload;
using TinyTrain.Fleet.Simulation;
using TinyTrain.Fleet.Transport;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

namespace TinyTrain.Bench;

/// <summary>
/// Fleet adaptation over MQTT through Mosquitto on loopback (started and stopped here): accuracy of 100 devices over 20
/// rounds (fleet vs local-only vs none), 10 % malicious devices with robust vs plain averaging, the broker killed by its
/// pid and restarted mid-run plus the aggregator crashed and restarted (every acknowledged update aggregated exactly
/// once?), and ingest throughput with one aggregator, two independent ones on a shared subscription, and two ingest
/// workers on a shared subscription feeding one merger (one global).
/// Options: --devices N --rounds R --seed S --updates M (throughput) --signal KILL|TERM (how the broker is stopped),
/// --robust AGGREGATION (the robust run's mode, default mean+clip), --only restart|throughput|merged (just that part).
/// </summary>
internal static class FleetBench
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    public static object Run(BenchArgs args)
    {
        int devices = args.Int("devices", 100), rounds = args.Int("rounds", 20), seed = args.Int("seed", 0), updates = args.Int("updates", 2000);
        string signal = args.Text("signal", "KILL");
        string only = args.Text("only", "");
        string work = Path.Combine(Path.GetTempPath(), "tinytrain-fleet-bench-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(work);
        PlanImage plan = FleetBaseModel.Build(log: args.Log);
        using var mosquitto = Mosquitto.Start(work, args);
        try
        {
            BrokerEndpoint broker = mosquitto.Endpoint;
            SimulationReport Simulate(string label, double malicious, string aggregation)
            {
                args.Log($"-- {label}: {devices} devices, {rounds} rounds, malicious {malicious:P0}, {aggregation}");
                var options = new SimulationOptions
                {
                    Devices = devices,
                    Rounds = rounds,
                    Seed = seed,
                    MaliciousFraction = malicious,
                    Broker = broker,
                    Aggregation = AggregatorOptions.Parse(aggregation, new AggregatorOptions { BufferSize = int.MaxValue }),
                };
                return FleetSimulation.RunAsync(plan, options, args.Log, r => args.Log(
                    $"   round {r.Round,2}: fleet {r.FleetAccuracy:P1} local-only {r.LocalOnlyAccuracy:P1} none {r.NoAdaptationAccuracy:P1} " +
                    $"{r.BytesPerDevice:N0} B/device rejected {string.Join(",", r.Rejected.Where(p => p.Value > 0).Select(p => $"{p.Key}={p.Value}"))} ({r.Seconds:F1} s)")).GetAwaiter().GetResult();
            }
            if (only == "restart") return Restart(plan, mosquitto, work, signal, args).GetAwaiter().GetResult();
            // Each row on a fresh Mosquitto: a row that fell behind leaves its queued messages in the broker's store,
            // which (autosave_on_changes) it rewrites after every change, and would slow the rows after it.
            int row = 0;
            Task<double> Fresh(Func<BrokerEndpoint, Task<double>> measure) => Task.Run(async () =>
            {
                using var own = Mosquitto.Start(Path.Combine(work, $"row{++row}"), args);
                return await measure(own.Endpoint);
            });
            // Side by side in one run: one fsync per message (groups of one, MQTTnet's 10 s timeout: how it was) and
            // group commit (up to 64 messages per fsync, 60 s timeout for the bulk clients).
            if (only == "merged")
            {
                double m0 = Fresh(e => Throughput(plan, e, work, updates, 2, args, merged: true, batch: 1, window: int.MaxValue)).GetAwaiter().GetResult();
                double m1 = Fresh(e => Throughput(plan, e, work, updates, 2, args, merged: true, batch: 1)).GetAwaiter().GetResult();
                double m64 = Fresh(e => Throughput(plan, e, work, updates, 2, args, merged: true)).GetAwaiter().GetResult();
                args.Log($"throughput, two ingest workers + one merger: as before (one fsync per message, 10 s timeout, no send window) {m0:F0} updates/s, " +
                         $"one fsync per message with the window {m1:F0} updates/s, group commit {m64:F0} updates/s");
                return new { throughput_two_workers_and_merger_before = m0, throughput_two_workers_and_merger_per_message = m1, throughput_two_workers_and_merger = m64 };
            }
            if (only == "throughput")
            {
                double a1 = Fresh(e => Throughput(plan, e, work, updates, 1, args, batch: 1)).GetAwaiter().GetResult();
                double a = Fresh(e => Throughput(plan, e, work, updates, 1, args)).GetAwaiter().GetResult();
                double b = Fresh(e => Throughput(plan, e, work, updates, 2, args)).GetAwaiter().GetResult();
                double c1 = Fresh(e => Throughput(plan, e, work, updates, 2, args, merged: true, batch: 1)).GetAwaiter().GetResult();
                double c = Fresh(e => Throughput(plan, e, work, updates, 2, args, merged: true)).GetAwaiter().GetResult();
                args.Log($"throughput: one aggregator {a1:F0} (one fsync per message) / {a:F0} (group commit) updates/s, two independent on a shared subscription {b:F0} updates/s, " +
                         $"two ingest workers + one merger (one global) {c1:F0} (one fsync per message) / {c:F0} (group commit) updates/s");
                return new
                {
                    throughput_one_aggregator_per_message = a1,
                    throughput_one_aggregator = a,
                    throughput_two_aggregators = b,
                    throughput_two_workers_and_merger_per_message = c1,
                    throughput_two_workers_and_merger = c,
                };
            }
            SimulationReport clean = Simulate("clean fleet", 0, "mean");
            SimulationReport plain = Simulate("10% malicious, plain averaging", 0.1, "mean");
            SimulationReport robust = Simulate("10% malicious, robust", 0.1, args.Text("robust", "mean+clip"));
            object restart = Restart(plan, mosquitto, work, signal, args).GetAwaiter().GetResult();
            double one = Throughput(plan, broker, work, updates, 1, args).GetAwaiter().GetResult();
            double two = Throughput(plan, broker, work, updates, 2, args).GetAwaiter().GetResult();
            double merged = Throughput(plan, broker, work, updates, 2, args, merged: true).GetAwaiter().GetResult();

            object Last(SimulationReport r) => new
            {
                aggregation = r.Aggregation,
                malicious = r.Malicious,
                fleet_accuracy = r.Rounds[^1].FleetAccuracy,
                local_only_accuracy = r.Rounds[^1].LocalOnlyAccuracy,
                no_adaptation_accuracy = r.Rounds[^1].NoAdaptationAccuracy,
                bytes_per_device_per_round = r.Rounds[^1].BytesPerDevice,
                rejected = r.RejectedTotal,
                exactly_once = r.AggregatedExactlyOnce,
                seconds = r.Seconds,
            };
            args.Log("");
            args.Log($"fleet: {devices} devices x {rounds} rounds, Mosquitto on loopback, cnn-s bias:2 ({clean.TrainedParameters:N0} trained parameters), seed {seed}");
            args.Log($"| run | aggregation | fleet | local-only | no adaptation | bytes/device/round | rejected |");
            foreach ((string name, SimulationReport r) in new[] { ("clean", clean), ("10 % malicious", plain), ("10 % malicious", robust) })
                args.Log($"| {name} | {r.Aggregation} | {r.Rounds[^1].FleetAccuracy:P1} | {r.Rounds[^1].LocalOnlyAccuracy:P1} | {r.Rounds[^1].NoAdaptationAccuracy:P1} | " +
                                  $"{r.Rounds[^1].BytesPerDevice:N0} | {string.Join(", ", r.RejectedTotal.Where(p => p.Value > 0).Select(p => $"{p.Key} {p.Value}"))} |");
            args.Log($"restart: {System.Text.Json.JsonSerializer.Serialize(restart)}");
            args.Log($"throughput: one aggregator {one:F0} updates/s, two independent on a shared subscription {two:F0} updates/s, " +
                     $"two ingest workers + one merger (one global) {merged:F0} updates/s");
            return new
            {
                devices,
                rounds,
                seed,
                trained_parameters = clean.TrainedParameters,
                clean = Last(clean),
                malicious_plain = Last(plain),
                malicious_robust = Last(robust),
                restart,
                throughput_one_aggregator = one,
                throughput_two_aggregators = two,
                throughput_two_workers_and_merger = merged,
                clean_rounds = clean.Rounds,
                plain_rounds = plain.Rounds,
                robust_rounds = robust.Rounds,
            };
        }
        finally
        {
            mosquitto.Dispose();
            try { Directory.Delete(work, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>
    /// 20 devices send updates continuously; mid-run Mosquitto is stopped by its pid with the signal and started again,
    /// and the aggregator is crashed (no ack, no disconnect) and started again from its journal. Then: is every update
    /// the broker acknowledged, and the aggregator receipted, aggregated exactly once?
    /// </summary>
    private static async Task<object> Restart(PlanImage plan, Mosquitto mosquitto, string work, string signal, BenchArgs args)
    {
        const int Devices = 20, PerDevice = 30;
        FleetModel model = FleetModel.FromPlan(plan, "restart");
        var topics = new FleetTopics("restart-" + Guid.NewGuid().ToString("N")[..6], model.ModelId, model.Task);
        var keys = new Dictionary<string, ECDsa>();
        var registry = new Dictionary<string, ECDsa>();
        for (int d = 0; d < Devices; d++) { keys[$"r{d}"] = FleetKeys.Create(); registry[$"r{d}"] = FleetKeys.FromPublicKey(FleetKeys.PublicKey(keys[$"r{d}"])); }
        ECDsa aggKey = FleetKeys.Create();
        string aggDir = Path.Combine(work, "restart-agg");
        // No staleness bound here: while the broker or the aggregator is down, devices keep learning on the global they
        // have, and their late updates must still be aggregated (down-weighted), not refused, for the exactly-once count.
        var options = new AggregatorOptions { BufferSize = 25, MaxStaleness = int.MaxValue };
        (AggregatorService, Aggregator) StartAggregator()
        {
            var store = new AggregatorStore(aggDir);
            var aggregator = new Aggregator(model, options, registry, aggKey, store.LoadSnapshot() ?? new AggregatorState { Global = new float[model.Layout.TotalCount] });
            store.Recover(aggregator);
            return (new AggregatorService(mosquitto.Endpoint, "agg-" + topics.Fleet, topics, aggregator, store, group: null), aggregator);
        }
        var (service, aggregator) = StartAggregator();
        await service.StartAsync(Timeout);
        var agents = new List<DeviceAgent>();
        for (int d = 0; d < Devices; d++)
        {
            var agent = new DeviceAgent($"r{d}", keys[$"r{d}"], FleetKeys.FromPublicKey(FleetKeys.PublicKey(aggKey)), model, topics, mosquitto.Endpoint,
                Path.Combine(work, "restart-dev", $"r{d}"), "dev-" + topics.Fleet);
            await agent.StartAsync(Timeout);
            agents.Add(agent);
        }
        var rng = new Random(1);
        var delta = new float[model.Layout.TotalCount];
        for (int j = 0; j < delta.Length; j++) delta[j] = (float)(rng.NextDouble() - 0.5);
        var clock = Stopwatch.StartNew();
        int brokerRestarts = 0, aggregatorRestarts = 0;
        var parameters = new byte[plan.SramParamBytes];
        for (int step = 0; step < PerDevice; step++)
        {
            // Devices take up each new global as it comes (so their updates stay within the aggregator's staleness bound).
            foreach (DeviceAgent a in agents) a.TryApplyGlobal(parameters);
            await Task.WhenAll(agents.Select(a => a.PublishUpdateAsync(delta, 1)));
            if (step == PerDevice / 3)
            {
                args.Log($"   stopping Mosquitto (pid {mosquitto.Pid}) with SIG{signal} mid-run; restarting it");
                mosquitto.Stop(signal);
                await Task.WhenAll(agents.Select(a => a.PublishUpdateAsync(delta, 1)));  // into the outboxes while it is down
                step++;
                mosquitto.Restart();
                brokerRestarts++;
            }
            if (step == 2 * PerDevice / 3)
            {
                args.Log($"   crashing the aggregator mid-run (accepted {aggregator.State.Accepted}, version {aggregator.State.Version}); restarting it from its journal");
                service.Abandon();
                (service, aggregator) = StartAggregator();
                await service.StartAsync(Timeout);
                aggregatorRestarts++;
            }
        }
        int total = Devices * PerDevice;
        DateTime deadline = DateTime.UtcNow.AddSeconds(90);
        while ((agents.Sum(a => a.Outbox.PendingCount) > 0 || aggregator.State.Accepted < total) && DateTime.UtcNow < deadline) await Task.Delay(50);
        await service.CloseRoundAsync();
        int acknowledged = agents.Sum(a => a.Acknowledged);
        int receipted = agents.Sum(a => a.Receipted);
        int pending = agents.Sum(a => a.Outbox.PendingCount);
        var aggregated = aggregator.State.Aggregated;
        int distinct = aggregated.Distinct().Count();
        var expected = new HashSet<string>();
        for (int d = 0; d < Devices; d++) for (int s = 1; s <= PerDevice; s++) expected.Add($"r{d}:{s}");
        int lost = expected.Count(e => !aggregated.Contains(e));
        string refused = string.Join(",", aggregator.State.Rejected.Where(p => p.Value > 0).Select(p => p.Key + "=" + p.Value));
        args.Log($"   {total} updates, {acknowledged} acknowledged by the broker, {receipted} receipted by the aggregator ({pending} still in outboxes), {aggregated.Count} aggregated ({distinct} distinct), not aggregated {lost}, refused {refused}");
        foreach (DeviceAgent a in agents) await a.DisposeAsync();
        await service.DisposeAsync();
        return new
        {
            signal,
            devices = Devices,
            updates = total,
            acknowledged,
            receipted,
            still_in_outboxes = pending,
            aggregated = aggregated.Count,
            duplicates = aggregated.Count - distinct,
            lost,
            resends_refused_as_replays = aggregator.Rejected(RejectReason.Replayed),
            broker_restarts = brokerRestarts,
            aggregator_restarts = aggregatorRestarts,
            seconds = clock.Elapsed.TotalSeconds,
        };
    }

    /// <summary>
    /// Updates per second that <paramref name="aggregators"/> aggregators ingest (verify, journal to disk, ack), each on
    /// its own; or, <paramref name="merged"/>, that many ingest workers on the shared subscription plus one merger (the
    /// fleet's one global): counted when the merger has decided every update.
    /// </summary>
    /// <param name="batch">The most messages one group commit covers (1: one fsync per message, with MQTTnet's default 10 s timeout).</param>
    /// <param name="window">Partials a worker may have out without the merger's receipt (int.MaxValue: unbounded, as before).</param>
    private static async Task<double> Throughput(PlanImage plan, BrokerEndpoint broker, string work, int updates, int aggregators, BenchArgs args, bool merged = false,
        int batch = 64, int window = IngestWorker.DefaultWindow)
    {
        TimeSpan timeout = batch == 1 ? FleetConnection.DefaultTimeout : FleetConnection.BulkTimeout;
        string run = Guid.NewGuid().ToString("N")[..6];
        const int Devices = 50;
        FleetModel model = FleetModel.FromPlan(plan, "throughput");
        var topics = new FleetTopics("tp-" + Guid.NewGuid().ToString("N")[..6], model.ModelId, model.Task);
        var keys = new Dictionary<string, ECDsa>();
        var registry = new Dictionary<string, ECDsa>();
        for (int d = 0; d < Devices; d++) { keys[$"t{d}"] = FleetKeys.Create(); registry[$"t{d}"] = FleetKeys.FromPublicKey(FleetKeys.PublicKey(keys[$"t{d}"])); }
        ECDsa aggKey = FleetKeys.Create();
        var services = new List<AggregatorService>();
        var workers = new List<IngestWorker>();
        var aggregatorOptions = new AggregatorOptions { BufferSize = 100, Mode = AggregationMode.TrimmedMean, ClipNorm = -1, MaxStaleness = int.MaxValue };
        if (merged)
        {
            var workerKeys = new Dictionary<string, ECDsa>();
            for (int i = 0; i < aggregators; i++) workerKeys[$"w{i}"] = FleetKeys.Create();
            var store = new AggregatorStore(Path.Combine(work, $"tpm{aggregators}-{run}-merger"));
            var merger = new Aggregator(model, aggregatorOptions, registry, aggKey, new AggregatorState { Global = new float[model.Layout.TotalCount] },
                workerKeys.ToDictionary(p => p.Key, p => FleetKeys.FromPublicKey(FleetKeys.PublicKey(p.Value))));
            store.Recover(merger);
            var service = new AggregatorService(broker, "merger-" + topics.Fleet, topics, merger, store, group: null, merger: true, timeout: timeout) { MaxBatch = batch };
            await service.StartAsync(Timeout);
            services.Add(service);
            ECDsa mergerPublic = FleetKeys.FromPublicKey(FleetKeys.PublicKey(aggKey));
            foreach ((string id, ECDsa key) in workerKeys)
            {
                var worker = new IngestWorker(broker, id, topics, new UpdateValidator(model, registry, aggregatorOptions.MaxMessageBytes), key, mergerPublic,
                    Path.Combine(work, $"tpm{aggregators}-{run}-{id}"), timeout: timeout) { MaxBatch = batch, Window = window };
                await worker.StartAsync(Timeout);
                if (!worker.Shared) throw new TinyTrainException("the broker did not grant the shared subscription");
                workers.Add(worker);
            }
        }
        for (int i = 0; i < (merged ? 0 : aggregators); i++)
        {
            var store = new AggregatorStore(Path.Combine(work, $"tp{aggregators}-{run}-{i}"));
            var aggregator = new Aggregator(model, aggregatorOptions, registry, aggKey, new AggregatorState { Global = new float[model.Layout.TotalCount] });
            store.Recover(aggregator);
            var service = new AggregatorService(broker, $"agg{i}-" + topics.Fleet, topics, aggregator, store, timeout: timeout) { MaxBatch = batch };
            await service.StartAsync(Timeout);
            if (!service.Shared) throw new TinyTrainException("the broker did not grant the shared subscription");
            services.Add(service);
        }
        var rng = new Random(2);
        var delta = new float[model.Layout.TotalCount];
        for (int j = 0; j < delta.Length; j++) delta[j] = (float)(rng.NextDouble() - 0.5);
        byte[] payload = FleetSerializer.Serialize(TensorPayload.Encode(model.Layout, delta));
        var messages = new List<(string Device, byte[] Bytes)>(updates);
        for (int i = 0; i < updates; i++)
        {
            string device = $"t{i % Devices}";
            var update = new UpdateEnvelope
            {
                DeviceId = device,
                ModelId = model.ModelId,
                AdapterKind = model.AdapterKind,
                Task = model.Task,
                SampleCount = 16,
                Sequence = i / Devices + 1,
                Payload = payload,
            };
            messages.Add((device, SignedMessage.Sign(update, device, keys[device])));
        }
        var publishers = new List<FleetConnection>();
        for (int p = 0; p < 4; p++)
        {
            var c = new FleetConnection(broker, $"pub{p}-" + topics.Fleet);
            await c.ConnectAsync(Timeout);
            publishers.Add(c);
        }
        var clock = Stopwatch.StartNew();
        // Each publisher sends the updates of its own devices, in order (sequence numbers grow per device).
        await Task.WhenAll(publishers.Select((c, p) => Task.Run(async () =>
        {
            for (int i = 0; i < messages.Count; i++)
                if (i % Devices % publishers.Count == p) await c.PublishAsync(topics.Update(messages[i].Device), messages[i].Bytes);
        })));
        DateTime deadline = DateTime.UtcNow.AddSeconds(300);
        // Every update here is valid: the merger is done when it has accepted each (a second copy refused as a replay,
        // or a worker's resent partial, is not progress).
        long Decided() => merged ? services[0].Aggregator.State.Accepted : services.Sum(s => s.Handled);
        while (Decided() < updates && DateTime.UtcNow < deadline) await Task.Delay(5);
        double seconds = clock.Elapsed.TotalSeconds;
        long handled = Decided();
        long accepted = services.Sum(s => s.Aggregator.State.Accepted);
        string split = merged ? string.Join("/", workers.Select(w => $"{w.Handled} ({w.Disconnects} disconnects{(w.LastDisconnect is null ? "" : ": " + w.LastDisconnect)})")) : string.Join("/", services.Select(s => s.Handled));
        string who = (merged ? $"{aggregators} ingest workers + 1 merger" : $"{aggregators} aggregator(s)") + (batch == 1 ? ", one fsync per message" : $", group commit (<= {batch})") +
                     (merged ? (window == int.MaxValue ? ", no send window" : $", send window {window}") : "");
        args.Log($"-- throughput, {who}: {handled} of {updates} updates ({messages[0].Bytes.Length:N0} B each) in {seconds:F1} s, " +
                 $"{services.Sum(x => x.Commits)} journal commits, accepted {accepted}, rejected {string.Join(",", services.SelectMany(x => x.Aggregator.State.Rejected).Select(p => p.Key + "=" + p.Value))}; split {split}" +
                 (merged ? $"; global version {services[0].Aggregator.State.Version}, {services[0].Aggregator.State.Aggregated.Count + services[0].Aggregator.State.Buffer.Count} " +
                           $"updates in rounds or buffered, {services[0].Aggregator.State.Aggregated.Distinct().Count() + services[0].Aggregator.State.Buffer.Count} distinct" : ""));
        foreach (var c in publishers) await c.DisposeAsync();
        foreach (var w in workers) await w.DisposeAsync();
        foreach (var s in services) await s.DisposeAsync();
        return handled / seconds;
    }

    /// <summary>Mosquitto on a free loopback port with persistence, as its own process (so it can be stopped by pid).</summary>
    private sealed class Mosquitto : IDisposable
    {
        private readonly string _conf;
        private Process _process;

        private Mosquitto(string conf, int port, Process process)
        {
            _conf = conf;
            Port = port;
            _process = process;
        }

        public int Port { get; }
        public int Pid => _process.Id;
        public BrokerEndpoint Endpoint => new("127.0.0.1", Port, false);

        public static Mosquitto Start(string work, BenchArgs args)
        {
            string binary = Environment.GetEnvironmentVariable("TINYTRAIN_MOSQUITTO") ?? (File.Exists("/usr/sbin/mosquitto") ? "/usr/sbin/mosquitto" : "mosquitto");
            int port;
            using (var listener = new TcpListener(IPAddress.Loopback, 0)) { listener.Start(); port = ((IPEndPoint)listener.LocalEndpoint).Port; }
            string dir = Path.Combine(work, "mosquitto");
            Directory.CreateDirectory(dir);
            string conf = Path.Combine(dir, "mosquitto.conf");
            File.WriteAllText(conf, $"user {Environment.UserName}\nlistener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {dir}/\n" +
                                    "autosave_interval 1\nautosave_on_changes true\nmax_queued_messages 100000\nmax_inflight_messages 100\n");
            var m = new Mosquitto(conf, port, Launch(binary, conf, port));
            args.Log($"Mosquitto ({binary}, pid {m.Pid}) on 127.0.0.1:{port}, persistence on");
            return m;
        }

        private static string Binary => Environment.GetEnvironmentVariable("TINYTRAIN_MOSQUITTO") ?? (File.Exists("/usr/sbin/mosquitto") ? "/usr/sbin/mosquitto" : "mosquitto");

        private static Process Launch(string binary, string conf, int port)
        {
            Process process;
            try
            {
                process = Process.Start(new ProcessStartInfo(binary, ["-c", conf]) { RedirectStandardError = true, UseShellExecute = false })!;
            }
            catch (System.ComponentModel.Win32Exception)
            {
                throw new TinyTrainException("the fleet benchmark needs Mosquitto: apt-get install mosquitto (or set TINYTRAIN_MOSQUITTO to its path)");
            }
            process.ErrorDataReceived += (_, _) => { };
            process.BeginErrorReadLine();
            DateTime deadline = DateTime.UtcNow.AddSeconds(10);
            while (true)
            {
                try
                {
                    using var client = new TcpClient();
                    client.Connect(IPAddress.Loopback, port);
                    return process;
                }
                catch (SocketException) when (DateTime.UtcNow < deadline && !process.HasExited)
                {
                    Thread.Sleep(50);
                }
            }
        }

        public void Stop(string signal)
        {
            Process.Start("kill", [$"-{signal}", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!.WaitForExit();
            _process.WaitForExit(10_000);
        }

        public void Restart()
        {
            _process.Dispose();
            _process = Launch(Binary, _conf, Port);
        }

        public void Dispose()
        {
            try { if (!_process.HasExited) _process.Kill(); } catch (InvalidOperationException) { }
            _process.Dispose();
        }
    }
}
