namespace TinyTrain.Fleet.Tests;

using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using TinyTrain.Fleet.Agent;
using TinyTrain.Fleet.Aggregation;
using TinyTrain.Fleet.Messages;
using TinyTrain.Fleet.Transport;
using Xunit.Abstractions;

/// <summary>The same code against Mosquitto: shared subscriptions, login, TLS, and a broker stopped by its pid and started again.</summary>
public sealed class MosquittoTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    private static async Task<(AggregatorService Service, Aggregator Aggregator)> StartAggregator(FleetFixture fleet, BrokerEndpoint broker, FleetTopics topics,
        string name, AggregatorOptions? options = null, string? group = "aggregators")
    {
        string dir = Path.Combine(fleet.Directory, name);
        var store = new AggregatorStore(dir);
        Aggregator aggregator = fleet.NewAggregator(options, store.LoadSnapshot());
        store.Recover(aggregator);
        var service = new AggregatorService(broker, name + "-" + topics.Fleet, topics, aggregator, store, group);
        await service.StartAsync(Timeout);
        return (service, aggregator);
    }

    private static DeviceAgent Agent(FleetFixture fleet, string id, BrokerEndpoint broker, FleetTopics topics)
        => new(id, fleet.Keys[id], FleetKeys.FromPublicKey(FleetKeys.PublicKey(fleet.AggregatorKey)), fleet.Model, topics, broker,
            Path.Combine(fleet.Directory, id), "dev-" + topics.Fleet);

    private static FleetTopics NewTopics(FleetFixture fleet) => new("t" + Guid.NewGuid().ToString("N")[..8], fleet.Model.ModelId, fleet.Model.Task);

    [Fact]
    public async Task TwoAggregatorsShareTheUpdatesThroughASharedSubscription()
    {
        if (!ExternalBroker.Available(output)) return;
        using var fleet = new FleetFixture(1);
        BrokerEndpoint broker = BrokerEndpoint.Parse(ExternalBroker.Url!);
        FleetTopics topics = NewTopics(fleet);
        var (a, aggA) = await StartAggregator(fleet, broker, topics, "agg-a");
        var (b, aggB) = await StartAggregator(fleet, broker, topics, "agg-b");
        await using (a)
        await using (b)
        {
            Assert.True(a.Shared && b.Shared);
            await using DeviceAgent agent = Agent(fleet, "dev0", broker, topics);
            await agent.StartAsync(Timeout);
            for (int i = 0; i < 20; i++) await agent.PublishUpdateAsync(FleetFixture.Delta(1), 1);
            await EmbeddedBrokerTests.Until(() => a.Handled + b.Handled == 20);
            // Each message went to exactly one of the two.
            Assert.Equal(20, aggA.State.Buffer.Count + aggB.State.Buffer.Count + aggA.State.Rejected.Values.Sum() + aggB.State.Rejected.Values.Sum());
            Assert.True(a.Handled > 0 && b.Handled > 0, $"handled {a.Handled} and {b.Handled}");
        }
    }

    [Fact]
    public async Task LoginIsRequiredAndAWrongPasswordIsRefusedWithAClearMessage()
    {
        if (!ExternalBroker.Available(output, ExternalBroker.AuthUrl)) return;
        using var fleet = new FleetFixture(1);
        BrokerEndpoint broker = BrokerEndpoint.Parse(ExternalBroker.AuthUrl!);
        FleetTopics topics = NewTopics(fleet);
        var (service, aggregator) = await StartAggregator(fleet, broker, topics, "agg-auth");
        await using (service)
        {
            await using DeviceAgent agent = Agent(fleet, "dev0", broker, topics);
            await agent.StartAsync(Timeout);
            await agent.PublishUpdateAsync(FleetFixture.Delta(1), 1);
            await EmbeddedBrokerTests.Until(() => aggregator.State.Accepted == 1);
        }
        await using var wrong = new FleetConnection(broker with { Password = "wrong" }, "intruder");
        var e = await Assert.ThrowsAsync<TinyTrainException>(() => wrong.ConnectAsync(Timeout));
        Assert.Contains("bad user name or password", e.Message);
    }

    [Fact]
    public async Task TlsWithTheFleetCaWorksAndAnotherCaIsRefused()
    {
        if (!ExternalBroker.Available(output, ExternalBroker.TlsUrl, ExternalBroker.Ca)) return;
        using var fleet = new FleetFixture(1);
        BrokerEndpoint broker = BrokerEndpoint.Parse(ExternalBroker.TlsUrl!, ExternalBroker.Ca);
        Assert.True(broker.Tls);
        FleetTopics topics = NewTopics(fleet);
        var (service, aggregator) = await StartAggregator(fleet, broker, topics, "agg-tls");
        await using (service)
        {
            await using DeviceAgent agent = Agent(fleet, "dev0", broker, topics);
            await agent.StartAsync(Timeout);
            await agent.PublishUpdateAsync(FleetFixture.Delta(1), 1);
            await EmbeddedBrokerTests.Until(() => aggregator.State.Accepted == 1);
        }
        // A CA that did not sign the broker's certificate: the connection is refused, never silently trusted.
        string otherCa = Path.Combine(fleet.Directory, "other-ca.crt");
        using (var key = ECDsa.Create(ECCurve.NamedCurves.nistP256))
        {
            var request = new CertificateRequest("CN=other CA", key, HashAlgorithmName.SHA256);
            request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
            using X509Certificate2 ca = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
            File.WriteAllText(otherCa, ca.ExportCertificatePem());
        }
        await using var untrusting = new FleetConnection(BrokerEndpoint.Parse(ExternalBroker.TlsUrl!, otherCa), "untrusting");
        var e = await Assert.ThrowsAsync<TinyTrainException>(() => untrusting.ConnectAsync(TimeSpan.FromSeconds(2)));
        Assert.Contains("cannot reach broker", e.Message);
    }

    [Fact]
    public async Task BrokerStoppedByItsPidMidRunAndStartedAgainLosesNothingAndRepeatsNothing()
    {
        if (!ExternalBroker.Available(output)) return;
        using var fleet = new FleetFixture(2);
        int port = FreePort();
        string dir = Path.Combine(fleet.Directory, "mosquitto");
        Directory.CreateDirectory(dir);
        string conf = Path.Combine(dir, "mosquitto.conf");
        File.WriteAllText(conf, $"""
            user {Environment.UserName}
            listener {port} 127.0.0.1
            allow_anonymous true
            persistence true
            persistence_location {dir}/
            autosave_interval 1
            autosave_on_changes true
            """);
        Process mosquitto = StartMosquitto(conf, port);
        var broker = new BrokerEndpoint("127.0.0.1", port, false);
        FleetTopics topics = NewTopics(fleet);
        try
        {
            // A plain subscription: Mosquitto 2.0.11 restores a persistent session's ordinary subscriptions at restart, but not
            // its shared ones (updates published before the aggregator subscribes again would be dropped; README).
            var (service, aggregator) = await StartAggregator(fleet, broker, topics, "agg-restart", group: null);
            await using (service)
            {
                await using DeviceAgent d0 = Agent(fleet, "dev0", broker, topics);
                await using DeviceAgent d1 = Agent(fleet, "dev1", broker, topics);
                await d0.StartAsync(Timeout);
                await d1.StartAsync(Timeout);
                for (int i = 0; i < 5; i++)
                {
                    await d0.PublishUpdateAsync(FleetFixture.Delta(1), 1);
                    await d1.PublishUpdateAsync(FleetFixture.Delta(1), 1);
                }
                // Stop the broker by its pid (SIGTERM: Mosquitto saves its sessions), keep publishing into the outboxes, start it again.
                Process.Start("kill", ["-TERM", mosquitto.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!.WaitForExit();
                mosquitto.WaitForExit(10_000);
                for (int i = 0; i < 5; i++)
                {
                    await d0.PublishUpdateAsync(FleetFixture.Delta(1), 1);
                    await d1.PublishUpdateAsync(FleetFixture.Delta(1), 1);
                }
                mosquitto = StartMosquitto(conf, port);
                await EmbeddedBrokerTests.Until(() => d0.Outbox.Count == 0 && d1.Outbox.Count == 0, 30);
                await EmbeddedBrokerTests.Until(() => aggregator.State.Accepted == 20, 30);
                await service.CloseRoundAsync();
                var expected = new List<string>();
                for (int s = 1; s <= 10; s++) { expected.Add($"dev0:{s}"); expected.Add($"dev1:{s}"); }
                Assert.Equal(expected.Order(), aggregator.State.Aggregated.Order());
            }
        }
        finally
        {
            if (!mosquitto.HasExited) mosquitto.Kill();
            mosquitto.Dispose();
        }
    }

    private static Process StartMosquitto(string conf, int port)
    {
        var process = Process.Start(new ProcessStartInfo(ExternalBroker.Mosquitto, ["-c", conf]) { RedirectStandardError = true, UseShellExecute = false })!;
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

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
