using System.Globalization;
using System.Net;
using Spectre.Console;
using TinyTrain.Fleet.Aggregation;
using TinyTrain.Fleet.Simulation;
using TinyTrain.Fleet.Transport;

namespace TinyTrain.Cli.Commands;

/// <summary>
/// `tinytrain fleet broker` (an embedded MQTT broker on loopback) and `tinytrain fleet simulate` (N emulated devices
/// adapting together over a real broker: fleet vs local-only vs no adaptation, bytes sent, refused updates by reason).
/// </summary>
internal static class FleetCommand
{
    private const string Help = "say what: `tinytrain fleet broker [--port 1883]`, `tinytrain fleet simulate --devices 20 --rounds 10`, `tinytrain fleet aggregate ...` or `tinytrain fleet keygen --name N`";

    public static int Run(string[] args, CommandContext context)
    {
        if (args.Length == 0) throw new UsageException(Help);
        return args[0] switch
        {
            "broker" => Broker(args[1..], context),
            "simulate" => Simulate(args[1..], context),
            "aggregate" => FleetAggregateCommand.Run(args[1..], context),
            "keygen" => FleetKeygenCommand.Run(args[1..], context),
            _ => throw new UsageException($"unknown fleet command '{args[0]}'; {Help}"),
        };
    }

    private static int Broker(string[] args, CommandContext context)
    {
        var a = new Arguments(args, new HashSet<string>());
        int port = a.Int("port", 1, 65535) ?? 1883;
        string bind = a.Option("bind") ?? "127.0.0.1";
        double? seconds = a.Float("seconds");
        a.EnsureAllUsed(0);
        if (!IPAddress.TryParse(bind, out IPAddress? address)) throw new UsageException($"--bind must be an IP address, got '{bind}'");
        if (seconds is <= 0) throw new UsageException($"--seconds must be positive, got {seconds}");
        return RunBroker(port, address, seconds, context).GetAwaiter().GetResult();
    }

    private static async Task<int> RunBroker(int port, IPAddress address, double? seconds, CommandContext context)
    {
        await using EmbeddedBroker broker = await EmbeddedBroker.StartAsync(port, address);
        context.Console.MarkupLine($"MQTT v5 broker (MQTTnet, persistent sessions in memory) on [bold]mqtt://{address}:{port}[/]; " +
                                   (seconds is null ? "Ctrl+C stops it" : $"stopping after {seconds} s"));
        using var stop = new CancellationTokenSource();
        ConsoleCancelEventHandler handler = (_, e) => { e.Cancel = true; stop.Cancel(); };
        Console.CancelKeyPress += handler;
        try
        {
            await Task.Delay(seconds is double s ? TimeSpan.FromSeconds(s) : Timeout.InfiniteTimeSpan, stop.Token);
        }
        catch (OperationCanceledException)
        {
            // Ctrl+C.
        }
        finally
        {
            Console.CancelKeyPress -= handler;
        }
        context.Console.MarkupLine("broker stopped");
        return 0;
    }

    private static int Simulate(string[] args, CommandContext context)
    {
        var a = new Arguments(args, new HashSet<string> { "json" });
        int devices = a.Int("devices", 1, 10_000) ?? 20;
        int rounds = a.Int("rounds", 1, 1000) ?? 10;
        int seed = a.Int("seed", 0) ?? 0;
        float malicious = a.Float("malicious") ?? 0f;
        float late = a.Float("late") ?? 0.1f;
        int samples = a.Int("samples", 1, 10_000) ?? 16;
        int evalSamples = a.Int("eval-samples", 1, 10_000) ?? 100;
        float lr = a.Float("lr") ?? 0.01f;
        string brokerText = a.Option("broker") ?? "embedded";
        string? ca = a.Option("ca");
        string aggregation = a.Option("aggregation") ?? (malicious > 0 ? "trimmed:0.2+clip" : "mean");
        string? planPath = a.Option("plan");
        string? plotPath = a.Option("plot");
        bool json = a.Flag("json");
        a.EnsureAllUsed(0);
        if (!(malicious >= 0 && malicious < 1)) throw new UsageException($"--malicious must be a fraction in [0, 1), e.g. 0.1, got {malicious}");
        if (!(late >= 0 && late <= 1)) throw new UsageException($"--late must be a fraction in [0, 1], got {late}");
        if (!(lr > 0)) throw new UsageException($"--lr must be positive, got {lr}");
        if (plotPath is not null && string.IsNullOrWhiteSpace(plotPath)) throw new UsageException("--plot needs a file name, e.g. --plot fleet.png");
        BrokerEndpoint? broker = brokerText == "embedded" ? null : BrokerEndpoint.Parse(brokerText, ca);
        AggregatorOptions aggregator = AggregatorOptions.Parse(aggregation, new AggregatorOptions { BufferSize = int.MaxValue });
        IAnsiConsole console = Consoles.ForMode(context, json);

        var plan = planPath is null
            ? FleetBaseModel.Build(log: line => console.MarkupLine(Markup.Escape(line)))
            : PlanFile.Load(planPath);
        var options = new SimulationOptions
        {
            Devices = devices,
            Rounds = rounds,
            Seed = seed,
            MaliciousFraction = malicious,
            LateFraction = late,
            SamplesPerRound = samples,
            EvalSamples = evalSamples,
            LearningRate = lr,
            Broker = broker,
            Aggregation = aggregator,
        };
        console.MarkupLine($"fleet of [bold]{devices}[/] emulated devices, {rounds} rounds, {samples} labelled samples per device per round, " +
                           $"malicious {malicious:P0}, aggregation [bold]{Markup.Escape(aggregator.Describe())}[/], seed {seed}");
        var table = new Table().Border(TableBorder.Rounded).Title("per round (accuracy on each honest device's own data)")
            .AddColumn("round").AddColumn(new TableColumn("fleet").RightAligned()).AddColumn(new TableColumn("local-only").RightAligned())
            .AddColumn(new TableColumn("no adaptation").RightAligned()).AddColumn(new TableColumn("bytes/device").RightAligned())
            .AddColumn(new TableColumn("accepted").RightAligned()).AddColumn("rejected");
        SimulationReport report = FleetSimulation.RunAsync(plan, options, line => console.MarkupLine(Markup.Escape(line)), round =>
        {
            string rejected = string.Join(", ", round.Rejected.Where(p => p.Value > 0).Select(p => $"{p.Key} {p.Value}"));
            console.MarkupLine($"round {round.Round,3}: fleet {round.FleetAccuracy:P1}, local-only {round.LocalOnlyAccuracy:P1}, " +
                               $"no adaptation {round.NoAdaptationAccuracy:P1}, {round.BytesPerDevice:N0} B/device, accepted {round.Accepted}" +
                               (rejected.Length > 0 ? $", rejected: {Markup.Escape(rejected)}" : "") + $" ({round.Seconds:F1} s)");
            table.AddRow(round.Round.ToString(CultureInfo.InvariantCulture), $"{round.FleetAccuracy:P1}", $"{round.LocalOnlyAccuracy:P1}",
                $"{round.NoAdaptationAccuracy:P1}", $"{round.BytesPerDevice:N0}", round.Accepted.ToString(CultureInfo.InvariantCulture),
                rejected.Length == 0 ? "-" : Markup.Escape(rejected));
        }).GetAwaiter().GetResult();
        console.Write(table);
        console.MarkupLine($"every accepted update aggregated exactly once: {(report.AggregatedExactlyOnce ? "[green]yes[/]" : "[red]no[/]")}; " +
                           $"SRAM high-water {report.SramHighWaterBytes:N0} B on {report.Board}; {report.Seconds:F1} s");
        if (plotPath is not null)
        {
            report.WritePlot(plotPath);
            console.MarkupLine($"wrote [bold]{Markup.Escape(plotPath)}[/]");
        }
        if (json)
        {
            context.Stdout.WriteLine(report.ToJson());
            context.Stdout.Flush();
        }
        return 0;
    }
}
