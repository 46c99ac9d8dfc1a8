namespace TinyTrain.Fleet.Transport;

using System.Net;
using MQTTnet.Server;

/// <summary>
/// MQTTnet's broker in this process, on loopback by default, with persistent sessions (kept in memory: they survive
/// a client's reconnect, not this process's restart). It has no shared subscriptions: aggregators then subscribe
/// plainly, one at a time; use Mosquitto for several.
/// </summary>
public sealed class EmbeddedBroker : IAsyncDisposable
{
    private readonly MqttServer _server;

    private EmbeddedBroker(MqttServer server, int port, IPAddress address)
    {
        _server = server;
        Port = port;
        Address = address;
    }

    public int Port { get; }
    public IPAddress Address { get; }
    public BrokerEndpoint Endpoint => new(Address.Equals(IPAddress.Any) ? "127.0.0.1" : Address.ToString(), Port, false);

    /// <summary>Starts a broker on <paramref name="address"/> (loopback when null) and <paramref name="port"/> (0: a free one).</summary>
    public static async Task<EmbeddedBroker> StartAsync(int port = 0, IPAddress? address = null)
    {
        address ??= IPAddress.Loopback;
        if (port == 0) port = FreePort(address);
        var options = new MqttServerOptionsBuilder()
            .WithDefaultEndpoint()
            .WithDefaultEndpointBoundIPAddress(address)
            .WithDefaultEndpointPort(port)
            .WithPersistentSessions()
            .WithMaxPendingMessagesPerClient(100_000)
            .Build();
        MqttServer server = new MqttServerFactory().CreateMqttServer(options);
        try
        {
            await server.StartAsync().ConfigureAwait(false);
        }
        catch (System.Net.Sockets.SocketException e)
        {
            server.Dispose();
            throw new TinyTrainException($"cannot listen on {address}:{port}: {e.Message}; choose another --port");
        }
        return new EmbeddedBroker(server, port, address);
    }

    private static int FreePort(IPAddress address)
    {
        using var listener = new System.Net.Sockets.TcpListener(address, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        await _server.StopAsync().ConfigureAwait(false);
        _server.Dispose();
    }
}
