using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using TinyTrain.Fleet.Aggregation;
using TinyTrain.Fleet.Messages;
using TinyTrain.Fleet.Payload;
using TinyTrain.Fleet.Transport;
using TinyTrain.Runtime.Execution;

namespace TinyTrain.Cli.Commands;

/// <summary>
/// `tinytrain fleet aggregate`: an aggregator as its own process, until Ctrl+C or SIGTERM. Roles: `single` (takes the
/// devices' updates and publishes the global), `worker` (one of several that share the updates through a shared
/// subscription and hand them to the merger) and `merger` (the one that combines the workers' partials and publishes
/// the global). State (journal, snapshot, outbox) lives in --state, so a killed process starts again where it was.
/// </summary>
internal static class FleetAggregateCommand
{
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(20);

    public static int Run(string[] args, CommandContext context)
    {
        var a = new Arguments(args, new HashSet<string>());
        string role = a.Option("role") ?? "single";
        string? brokerText = a.Option("broker");
        string? ca = a.Option("ca");
        string fleetId = a.Option("fleet") ?? "default";
        string? planPath = a.Option("plan");
        string task = a.Option("task") ?? "adapt";
        string? keyPath = a.Option("key");
        string? devicesDir = a.Option("devices");
        string? stateDir = a.Option("state");
        string aggregation = a.Option("aggregation") ?? "mean";
        int buffer = a.Int("buffer", 1, 1_000_000) ?? 10;
        string group = a.Option("group") ?? "aggregators";
        string? id = a.Option("id");
        string? workersDir = a.Option("workers");
        string? aggregatorKeyPath = a.Option("aggregator-key");
        double? seconds = a.Float("seconds");
        a.EnsureAllUsed(0);

        if (role is not ("single" or "worker" or "merger")) throw new UsageException($"--role must be single, worker or merger, got '{role}'");
        if (brokerText is null) throw new UsageException("missing --broker mqtt://host:port (the fleet's broker; `tinytrain fleet broker` starts one)");
        BrokerEndpoint broker = BrokerEndpoint.Parse(brokerText, ca);
        if (planPath is null) throw new UsageException("missing --plan plan.ttplan (the devices' plan: it fixes the model identity and the adapter's layout)");
        if (keyPath is null)
            throw new UsageException(role == "worker"
                ? "missing --key FILE: this worker's private key (PEM), registered with the merger; make one with `tinytrain fleet keygen`"
                : "missing --key FILE: the aggregator's private key (PEM) that signs globals and receipts; make one with `tinytrain fleet keygen`");
        if (stateDir is null) throw new UsageException("missing --state DIR (journal, snapshot and outbox: what lets a restarted aggregator lose nothing)");
        if (role == "worker" && id is null) throw new UsageException("--role worker needs --id NAME (its key's name at the merger)");
        if (role == "worker" && aggregatorKeyPath is null) throw new UsageException("--role worker needs --aggregator-key FILE: the merger's public key (PEM), to verify its receipts");
        if (role == "merger" && workersDir is null) throw new UsageException("--role merger needs --workers DIR: one {id}.pub.pem per ingest worker");
        if (role != "merger" && devicesDir is null) throw new UsageException("missing --devices DIR: one {device-id}.pub.pem per registered device");
        if (seconds is <= 0) throw new UsageException($"--seconds must be positive, got {seconds}");
        fleetId = FleetTopics.CheckName("fleet id", fleetId);
        if (id is not null) FleetTopics.CheckName("worker id", id);
        group = FleetTopics.CheckName("aggregator group", group);
        AggregatorOptions options = AggregatorOptions.Parse(aggregation, new AggregatorOptions { BufferSize = buffer });

        var plan = PlanFile.Load(planPath);
        FleetModel model = FleetModel.FromPlan(plan, task);
        ECDsa key = FleetKeys.LoadPrivate(keyPath, role == "worker" ? "worker key" : "aggregator key");
        Dictionary<string, ECDsa> devices = devicesDir is null ? [] : FleetKeys.LoadPublicDirectory(devicesDir, "device");
        Dictionary<string, ECDsa>? workers = workersDir is null ? null : FleetKeys.LoadPublicDirectory(workersDir, "worker");
        ECDsa? aggregatorPublic = aggregatorKeyPath is null ? null : FleetKeys.LoadPublic(aggregatorKeyPath, "aggregator key");
        var topics = new FleetTopics(fleetId, model.ModelId, model.Task);
        // A long-running process's log: plain lines, one per event, never wrapped.
        void Log(string line)
        {
            lock (context.Stdout)
            {
                context.Stdout.WriteLine(line);
                context.Stdout.Flush();
            }
        }

        using var stop = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; stop.Cancel(); };
        Console.CancelKeyPress += onCancel;
        using PosixSignalRegistration onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
        try
        {
            return (role == "worker"
                ? RunWorker(broker, id!, topics, new UpdateValidator(model, devices, options.MaxMessageBytes), key, aggregatorPublic!, stateDir, group, Log, seconds, stop.Token)
                : RunAggregator(broker, topics, model, options, devices, workers, key, plan, stateDir, role == "merger", Log, seconds, stop.Token)).GetAwaiter().GetResult();
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    private static async Task<int> RunAggregator(BrokerEndpoint broker, FleetTopics topics, FleetModel model, AggregatorOptions options,
        Dictionary<string, ECDsa> devices, Dictionary<string, ECDsa>? workers, ECDsa key, TinyTrain.Runtime.Plans.Plan plan, string stateDir, bool merger,
        Action<string> log, double? seconds, CancellationToken stop)
    {
        var store = new AggregatorStore(stateDir);
        AggregatorState state = store.LoadSnapshot() ?? new AggregatorState { Global = model.Layout.Read(new Executor(plan).Params) };
        var aggregator = new Aggregator(model, options, devices, key, state, workers)
        {
            Log = (reason, detail) => log($"refused ({RejectReasons.Name(reason)}): {detail}"),
        };
        int replayed = store.Recover(aggregator);
        string role = merger ? $"merger of {workers!.Count} ingest workers ({string.Join(", ", workers.Keys)})" : $"aggregator for {devices.Count} devices";
        await using var service = new AggregatorService(broker, (merger ? "merger-" : "aggregator-") + topics.Fleet, topics, aggregator, store,
            group: null, merger: merger)
        {
            RoundClosed = version => log($"global version {version} published ({aggregator.LastRoundContributors} updates; accepted {aggregator.State.Accepted}, " +
                                         $"refused {aggregator.State.Rejected.Values.Sum()} in all)"),
        };
        await service.StartAsync(ConnectTimeout, stop);
        log($"{role} on {broker}, topics {topics.Root}/, aggregation {options.Describe()}, round of {options.BufferSize}; " +
            $"global version {state.Version}, {replayed} journal records replayed; " + (seconds is null ? "Ctrl+C or SIGTERM stops it" : $"stopping after {seconds} s"));
        await Wait(seconds, stop);
        log($"stopped: global version {aggregator.State.Version}, {aggregator.State.Accepted} updates accepted, {aggregator.State.Buffer.Count} buffered for the next round, " +
            $"refused: {Refusals(aggregator.State.Rejected)}" + (merger ? $", {aggregator.State.DuplicatePartials} partials sent twice (taken once)" : ""));
        return 0;
    }

    private static async Task<int> RunWorker(BrokerEndpoint broker, string id, FleetTopics topics, UpdateValidator validator, ECDsa key, ECDsa mergerKey,
        string stateDir, string group, Action<string> log, double? seconds, CancellationToken stop)
    {
        await using var worker = new IngestWorker(broker, id, topics, validator, key, mergerKey, stateDir, group)
        {
            Log = (reason, detail) => log($"refused ({RejectReasons.Name(reason)}): {detail}"),
        };
        await worker.StartAsync(ConnectTimeout, stop);
        log($"ingest worker '{id}' on {broker}, " + (worker.Shared ? $"sharing {topics.SharedUpdates(group)}" : $"alone on {topics.Updates} (the broker has no shared subscriptions)") +
            $", handing partials to the merger on {topics.Partial(id)}; {worker.Pending} waiting from before; " + (seconds is null ? "Ctrl+C or SIGTERM stops it" : $"stopping after {seconds} s"));
        await Wait(seconds, stop);
        log($"stopped: {worker.Handled} updates taken, {worker.Receipted} receipted by the merger, {worker.Pending} waiting in the outbox (sent at the next start)");
        return 0;
    }

    private static async Task Wait(double? seconds, CancellationToken stop)
    {
        try
        {
            await Task.Delay(seconds is double s ? TimeSpan.FromSeconds(s) : Timeout.InfiniteTimeSpan, stop);
        }
        catch (OperationCanceledException)
        {
            // Ctrl+C or SIGTERM.
        }
    }

    private static string Refusals(Dictionary<string, long> rejected)
        => rejected.Count == 0 ? "none" : string.Join(", ", rejected.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key} {p.Value.ToString(CultureInfo.InvariantCulture)}"));
}
