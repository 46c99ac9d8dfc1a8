namespace TinyTrain.Fleet.Simulation;

using System.Diagnostics;
using System.Security.Cryptography;
using TinyTrain.Compiler.Boards;
using TinyTrain.Compiler.Data;
using TinyTrain.Emulator.Device;
using TinyTrain.Fleet.Agent;
using TinyTrain.Fleet.Aggregation;
using TinyTrain.Fleet.Messages;
using TinyTrain.Fleet.Payload;
using TinyTrain.Fleet.Transport;
using TinyTrain.Runtime.Execution;
using TinyTrain.Runtime.Ood;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

/// <summary>
/// N emulated devices in one process over a real broker. Each device runs two copies of the plan under its board's
/// limits: one that learns alone (local-only), one that learns and shares through the fleet (publishes its delta,
/// applies each new global adapter). Per round: each device learns from its labelled samples, sends its update, the
/// aggregator combines what it accepted, every device verifies and applies the new global; accuracy is measured on each
/// device's held-out data, beside the plan with no adaptation.
/// </summary>
public static class FleetSimulation
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    /// <summary>How long the first connect retries: a broker that is not there is reported soon.</summary>
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(5);
    public const string Task = "adapt";

    private sealed class SimDevice
    {
        public required string Id;
        public required DeviceData Data;
        public required Executor Fleet;
        public required Executor Local;
        public required DeviceAgent Agent;
        public MaliciousKind? Malicious;
        public bool Late;
        public (float[] Delta, long Base)? Held;
        public float[] Delta = [];
        public long BytesBefore;
        public double FleetAccuracy, LocalAccuracy, NoneAccuracy, OodRate;
    }

    public static async Task<SimulationReport> RunAsync(PlanImage plan, SimulationOptions o, Action<string>? log = null, Action<RoundReport>? onRound = null,
        CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(o);
        Check(o);
        var clock = Stopwatch.StartNew();
        BoardProfile board = BoardCatalog.Get(o.Board);
        FleetModel model = FleetModel.FromPlan(plan, Task);
        Dataset train = DataCatalog.Load(o.Data, Split.Train), test = DataCatalog.Load(o.Data, Split.Test);
        var input = plan.Tensor(plan.InputTensor);
        if (input.ElementCount != train.PixelsPerImage || plan.NumClasses != train.NumClasses)
            throw new TinyTrainException($"{plan.Source} takes {input.C}x{input.H}x{input.W} inputs and {plan.NumClasses} classes; the fleet simulation streams {o.Data} (1x28x28, {train.NumClasses} classes)");

        bool ownDirectory = o.StateDirectory is null;
        string directory = o.StateDirectory ?? Path.Combine(Path.GetTempPath(), "tinytrain-fleet-sim-" + Guid.NewGuid().ToString("N"));
        EmbeddedBroker? embedded = o.Broker is null ? await EmbeddedBroker.StartAsync().ConfigureAwait(false) : null;
        BrokerEndpoint broker = o.Broker ?? embedded!.Endpoint;
        var topics = new FleetTopics(o.Fleet, model.ModelId, Task);
        log?.Invoke($"broker {broker}{(embedded is null ? "" : " (embedded)")}; topics {topics.Root}/...; model {model.ModelId}, {model.Layout.TotalCount} trained parameters ({model.Describe()})");

        // Devices: data (non-IID), keys, two runtimes each.
        var rng = new Random(o.Seed);
        int maliciousCount = (int)Math.Round(o.MaliciousFraction * o.Devices);
        var order = new int[o.Devices];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        rng.Shuffle(order);
        var maliciousRank = new int[o.Devices];
        Array.Fill(maliciousRank, -1);
        for (int m = 0; m < maliciousCount; m++) maliciousRank[order[m]] = m;
        var severities = new double[o.Devices];
        var late = new bool[o.Devices];
        for (int d = 0; d < o.Devices; d++)
        {
            severities[d] = 0.8 + 0.4 * rng.NextDouble();
            late[d] = maliciousRank[d] < 0 && rng.NextDouble() < o.LateFraction;
        }
        var data = new DeviceData[o.Devices];
        Parallel.For(0, o.Devices, d => data[d] = DeviceData.Create(train, test, o.Corruptions[d % o.Corruptions.Count], severities[d],
            o.Rounds * o.SamplesPerRound, o.EvalSamples, (ulong)(o.Seed * 1_000_003L + d * 7919L + 1)));

        var registry = new Dictionary<string, ECDsa>();
        ECDsa aggregatorKey = FleetKeys.Create();
        ECDsa aggregatorPublic = FleetKeys.FromPublicKey(FleetKeys.PublicKey(aggregatorKey));
        var devices = new SimDevice[o.Devices];
        float[] initial;
        {
            var probe = new Executor(plan);
            initial = model.Layout.Read(probe.Params);
        }
        for (int d = 0; d < o.Devices; d++)
        {
            string id = $"d{d:D3}";
            ECDsa key = FleetKeys.Create();
            registry[id] = FleetKeys.FromPublicKey(FleetKeys.PublicKey(key));
            // EmulatedDevice binds the plan under the board's limits (refusing one that does not fit).
            var fleet = new EmulatedDevice(plan, board, o.LearningRate, (uint)(o.Seed * 2 * o.Devices + 2 * d + 1)).Executor;
            var local = new EmulatedDevice(plan, board, o.LearningRate, (uint)(o.Seed * 2 * o.Devices + 2 * d + 1)).Executor;
            devices[d] = new SimDevice
            {
                Id = id,
                Data = data[d],
                Fleet = fleet,
                Local = local,
                Late = late[d],
                Malicious = maliciousRank[d] < 0 ? null : (MaliciousKind)(maliciousRank[d] % 3),
                Agent = new DeviceAgent(id, key, aggregatorPublic, model, topics, broker, Path.Combine(directory, "devices", id), o.Fleet),
            };
        }

        var store = new AggregatorStore(Path.Combine(directory, "aggregator"));
        var aggregator = new Aggregator(model, o.Aggregation, registry, aggregatorKey, new AggregatorState { Global = initial });
        store.Recover(aggregator);
        var rounds = new List<RoundReport>();
        int highWater = 0;
        AggregatorService? service = null;
        try
        {
            service = new AggregatorService(broker, "aggregator-" + o.Fleet, topics, aggregator, store, group: null);
            await service.StartAsync(ConnectTimeout, cancel).ConfigureAwait(false);
            await Parallel.ForEachAsync(devices, cancel, async (device, token) => await device.Agent.StartAsync(ConnectTimeout, token).ConfigureAwait(false)).ConfigureAwait(false);
            log?.Invoke($"{o.Devices} devices connected ({maliciousCount} malicious, {late.Count(x => x)} late), aggregation {o.Aggregation.Describe()}, board {board.Id}");

            var scorer = new MaxSoftmaxScorer(plan);
            Parallel.ForEach(devices, device => device.NoneAccuracy = Evaluate(device.Fleet, device.Data, scorer, out _));
            var rejectedBefore = new Dictionary<string, long>();
            for (int round = 1; round <= o.Rounds; round++)
            {
                cancel.ThrowIfCancellationRequested();
                var roundClock = Stopwatch.StartNew();
                long acceptedBefore = aggregator.State.Accepted;
                foreach (SimDevice device in devices) device.BytesBefore = device.Agent.BytesSent;

                // 1. Learn locally, both runtimes, from this round's labelled samples.
                int first = (round - 1) * o.SamplesPerRound;
                Parallel.ForEach(devices, device =>
                {
                    float[] before = model.Layout.Read(device.Fleet.Params);
                    for (int s = first; s < first + o.SamplesPerRound; s++)
                    {
                        Learn(device.Fleet, device.Data.Train[s], device.Data.TrainLabels[s]);
                        Learn(device.Local, device.Data.Train[s], device.Data.TrainLabels[s]);
                    }
                    float[] after = model.Layout.Read(device.Fleet.Params);
                    for (int j = 0; j < after.Length; j++) after[j] -= before[j];
                    device.Delta = after;
                });

                // 2. Send: late devices send last round's update now (built on the previous global).
                int sent = 0, lateSent = 0;
                long handledBefore = service.Handled;
                var sends = new List<Task>();
                foreach (SimDevice device in devices)
                {
                    if (device.Held is { } held)
                    {
                        sends.Add(device.Agent.PublishUpdateAsync(held.Delta, o.SamplesPerRound, baseVersion: held.Base));
                        device.Held = null;
                        sent++;
                        lateSent++;
                    }
                    if (device.Late)
                    {
                        device.Held = (device.Delta, device.Agent.GlobalVersion);
                        continue;
                    }
                    float[] delta = Tamper(device.Delta, device.Malicious);
                    var metrics = new Dictionary<string, float> { ["fleet_accuracy"] = (float)device.FleetAccuracy };
                    sends.Add(device.Agent.PublishUpdateAsync(delta, o.SamplesPerRound, metrics));
                    sent++;
                }
                await System.Threading.Tasks.Task.WhenAll(sends).ConfigureAwait(false);
                await Until(() => service.Handled >= handledBefore + sent, $"the aggregator to take round {round}'s {sent} updates (handled {service.Handled - handledBefore}, {devices.Sum(x => x.Agent.Outbox.Count)} unacknowledged in outboxes)", cancel).ConfigureAwait(false);

                // 3. Close the round, then every device verifies and applies the new global at a step boundary.
                await service.CloseRoundAsync().ConfigureAwait(false);
                long version = aggregator.State.Version;
                await Until(() => devices.All(x => x.Agent.GlobalVersion >= version || x.Agent.StagedVersion >= version), $"every device to receive global version {version}", cancel).ConfigureAwait(false);
                Parallel.ForEach(devices, device =>
                {
                    device.Agent.TryApplyGlobal(device.Fleet.Params);
                    device.FleetAccuracy = Evaluate(device.Fleet, device.Data, scorer, out device.OodRate);
                    device.LocalAccuracy = Evaluate(device.Local, device.Data, scorer, out _);
                });
                foreach (SimDevice device in devices) highWater = Math.Max(highWater, Math.Max(device.Fleet.HighWaterMark(), device.Local.HighWaterMark()));
                await Parallel.ForEachAsync(devices, cancel, async (device, _) =>
                    await device.Agent.PublishTelemetryAsync((float)device.FleetAccuracy, (float)device.OodRate, device.Fleet.HighWaterMark(), round * o.SamplesPerRound).ConfigureAwait(false)).ConfigureAwait(false);

                var rejected = new Dictionary<string, long>();
                foreach (RejectReason reason in Enum.GetValues<RejectReason>())
                {
                    string name = RejectReasons.Name(reason);
                    long total = aggregator.Rejected(reason);
                    rejected[name] = total - rejectedBefore.GetValueOrDefault(name);
                    rejectedBefore[name] = total;
                }
                var honest = devices.Where(x => x.Malicious is null).ToArray();
                var report = new RoundReport(round, version,
                    honest.Average(x => x.FleetAccuracy), honest.Average(x => x.LocalAccuracy), honest.Average(x => x.NoneAccuracy),
                    devices.Average(x => (double)(x.Agent.BytesSent - x.BytesBefore)), aggregator.State.Accepted - acceptedBefore, lateSent,
                    rejected, roundClock.Elapsed.TotalSeconds);
                rounds.Add(report);
                onRound?.Invoke(report);
            }
        }
        finally
        {
            if (service is not null) await service.DisposeAsync().ConfigureAwait(false);
            else store.Dispose();
            foreach (SimDevice device in devices) await device.Agent.DisposeAsync().ConfigureAwait(false);
            if (embedded is not null) await embedded.DisposeAsync().ConfigureAwait(false);
            if (ownDirectory)
            {
                try { Directory.Delete(directory, recursive: true); } catch (IOException) { }
            }
        }

        var totals = new Dictionary<string, long>();
        foreach (var pair in aggregator.State.Rejected) totals[pair.Key] = pair.Value;
        bool exactlyOnce = aggregator.State.Aggregated.Count == aggregator.State.Aggregated.Distinct().Count()
                           && aggregator.State.Aggregated.Count + aggregator.State.Buffer.Count == aggregator.State.Accepted;
        return new SimulationReport(o.Devices, maliciousCount, o.Rounds, o.Seed, broker.ToString(), o.Aggregation.Describe(), model.ModelId,
            model.Layout.TotalCount, board.Id, highWater, rounds, exactlyOnce, totals, clock.Elapsed.TotalSeconds);
    }

    private static void Check(SimulationOptions o)
    {
        if (o.Devices < 1) throw new TinyTrainException($"--devices must be at least 1, got {o.Devices}");
        if (o.Devices > 10_000) throw new TinyTrainException($"--devices {o.Devices} is more than one process emulates (at most 10,000)");
        if (o.Rounds < 1) throw new TinyTrainException($"--rounds must be at least 1, got {o.Rounds}");
        if (!(o.MaliciousFraction >= 0 && o.MaliciousFraction < 1)) throw new TinyTrainException($"--malicious must be a fraction in [0, 1), got {o.MaliciousFraction}");
        if (!(o.LateFraction >= 0 && o.LateFraction <= 1)) throw new TinyTrainException($"--late must be a fraction in [0, 1], got {o.LateFraction}");
        if (o.SamplesPerRound < 1) throw new TinyTrainException($"--samples must be at least 1, got {o.SamplesPerRound}");
        if (o.EvalSamples < 1) throw new TinyTrainException($"--eval-samples must be at least 1, got {o.EvalSamples}");
        if (o.Corruptions.Count == 0) throw new TinyTrainException("the simulation needs at least one corruption");
    }

    private static void Learn(Executor executor, float[] x, int label)
    {
        if (executor.TrySetInput(x, 0)) executor.TrainStep(label);
    }

    private static double Evaluate(Executor executor, DeviceData data, MaxSoftmaxScorer scorer, out double oodRate)
    {
        int correct = 0, flagged = 0;
        for (int s = 0; s < data.Eval.Length; s++)
        {
            if (!executor.TrySetInput(data.Eval[s], 0)) continue;
            executor.Invoke();
            if (executor.ArgMax() == data.EvalLabels[s]) correct++;
            if (scorer.Score(executor) < 0.5f) flagged++;
        }
        oodRate = (double)flagged / data.Eval.Length;
        return (double)correct / data.Eval.Length;
    }

    private static float[] Tamper(float[] delta, MaliciousKind? kind)
    {
        if (kind is null) return delta;
        var result = new float[delta.Length];
        for (int j = 0; j < delta.Length; j++)
            result[j] = kind switch
            {
                MaliciousKind.Scaled => delta[j] * 20f,
                MaliciousKind.SignFlipped => delta[j] * -5f,
                _ => float.NaN,
            };
        return result;
    }

    private static async Task Until(Func<bool> condition, string what, CancellationToken cancel)
    {
        DateTime deadline = DateTime.UtcNow + Timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TinyTrainException($"timed out after {Timeout.TotalSeconds:F0} s waiting for {what}; is the broker overloaded or gone?");
            await System.Threading.Tasks.Task.Delay(10, cancel).ConfigureAwait(false);
        }
    }
}
