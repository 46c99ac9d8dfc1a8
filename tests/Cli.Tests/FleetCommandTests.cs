using System.Text.Json;

namespace TinyTrain.Cli.Tests;

/// <summary>`tinytrain fleet`: the simulation end to end over the embedded broker, and its refusals.</summary>
public class FleetCommandTests
{
    [Fact]
    public void Simulate_json_has_a_round_list_with_accuracies_bytes_and_rejections()
    {
        string dir = Path.Combine(Path.GetTempPath(), "tinytrain-cli-fleet-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            string plan = Path.Combine(dir, "p.ttplan"), plot = Path.Combine(dir, "fleet.png");
            Assert.Equal(0, CliRunner.Run("compile", "cnn-s", "--update", "bias:2", "--calib", "mnist-mini", "-o", plan).ExitCode);
            var r = CliRunner.Run("fleet", "simulate", "--plan", plan, "--devices", "4", "--rounds", "2", "--samples", "4", "--eval-samples", "20",
                "--malicious", "0.5", "--seed", "3", "--json", "--plot", plot);
            Assert.True(r.ExitCode == 0, r.Stderr);
            using JsonDocument doc = JsonDocument.Parse(r.Stdout);
            JsonElement rounds = doc.RootElement.GetProperty("rounds");
            Assert.Equal(2, rounds.GetArrayLength());
            foreach (JsonElement round in rounds.EnumerateArray())
            {
                foreach (string key in new[] { "fleet_accuracy", "local_only_accuracy", "no_adaptation_accuracy" })
                    Assert.InRange(round.GetProperty(key).GetDouble(), 0.0, 1.0);
                Assert.True(round.GetProperty("bytes_per_device").GetDouble() > 0);
                // Two malicious devices: the first sends scaled updates, the second sign-flipped ones (both valid messages).
                Assert.Equal(0, round.GetProperty("rejected").GetProperty("bad_signature").GetInt64());
            }
            Assert.Equal(2, doc.RootElement.GetProperty("malicious").GetInt32());
            Assert.True(doc.RootElement.GetProperty("aggregated_exactly_once").GetBoolean());
            Assert.True(new FileInfo(plot).Length > 1000);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Broker_listens_on_loopback_and_stops_after_the_given_time()
    {
        int port;
        using (var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0))
        {
            listener.Start();
            port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        }
        var r = CliRunner.Run("fleet", "broker", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--seconds", "1");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains($"mqtt://127.0.0.1:{port}", r.Stdout);
        Assert.Contains("broker stopped", r.Stdout);
        Assert.Contains("--bind must be an IP address", CliRunner.AssertOneLineError(CliRunner.Run("fleet", "broker", "--bind", "localhost")));
    }

    [Fact]
    public void Simulate_refuses_a_bad_broker_url_and_a_bad_fraction()
    {
        Assert.Contains("not an MQTT URL", CliRunner.AssertOneLineError(CliRunner.Run("fleet", "simulate", "--broker", "http://x:1")));
        Assert.Contains("--malicious must be a fraction", CliRunner.AssertOneLineError(CliRunner.Run("fleet", "simulate", "--malicious", "1.5")));
        Assert.Contains("unknown part 'avg'", CliRunner.AssertOneLineError(CliRunner.Run("fleet", "simulate", "--aggregation", "avg")));
        Assert.Contains("unknown fleet command 'fly'", CliRunner.AssertOneLineError(CliRunner.Run("fleet", "fly")));
    }

    [Fact]
    public void Simulate_against_a_broker_that_is_not_there_says_so()
    {
        string dir = Path.Combine(Path.GetTempPath(), "tinytrain-cli-fleet-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            string plan = Path.Combine(dir, "p.ttplan");
            Assert.Equal(0, CliRunner.Run("compile", "cnn-s", "--update", "bias:1", "--calib", "mnist-mini", "-o", plan).ExitCode);
            string line = CliRunner.AssertOneLineError(CliRunner.Run("fleet", "simulate", "--plan", plan, "--devices", "1", "--rounds", "1", "--broker", "mqtt://127.0.0.1:1"));
            Assert.Contains("cannot reach broker mqtt://127.0.0.1:1", line);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
