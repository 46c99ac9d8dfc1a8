namespace TinyTrain.Fleet.Transport;

using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using MQTTnet;
using MQTTnet.Protocol;

/// <summary>
/// One MQTT v5 client of the fleet: a persistent session (clean start false, session expiry), so that the broker keeps
/// its subscriptions and queues its QoS 1 messages while it is away; reconnects by itself, and runs
/// <see cref="OnConnected"/> (subscribe, resend) after every connect.
/// </summary>
public sealed class FleetConnection : IAsyncDisposable
{
    /// <summary>How long the broker keeps a session whose client is away.</summary>
    public const uint SessionExpirySeconds = 24 * 3600;

    private readonly MqttClientOptions _options;
    private readonly CancellationTokenSource _closing = new();
    private Task? _reconnect;

    /// <summary>How long a publish, subscribe or acknowledgement waits for the broker by default (MQTTnet's default).</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The wait for aggregators and ingest workers, which move bulk traffic: a broker busy persisting can stall past
    /// 10 s under load, and a dropped connection then costs a resend of everything not yet receipted.
    /// </summary>
    public static readonly TimeSpan BulkTimeout = TimeSpan.FromSeconds(60);

    /// <param name="timeout">How long an operation waits for the broker; <see cref="DefaultTimeout"/> when null.</param>
    public FleetConnection(BrokerEndpoint broker, string clientId, TimeSpan? timeout = null)
    {
        Broker = broker ?? throw new ArgumentNullException(nameof(broker));
        ClientId = clientId;
        Client = new MqttClientFactory().CreateMqttClient();
        var builder = new MqttClientOptionsBuilder()
            .WithTcpServer(broker.Host, broker.Port)
            .WithClientId(clientId)
            .WithProtocolVersion(MQTTnet.Formatter.MqttProtocolVersion.V500)
            .WithCleanStart(false)
            .WithSessionExpiryInterval(SessionExpirySeconds)
            .WithKeepAlivePeriod(TimeSpan.FromSeconds(15))
            .WithTimeout(timeout ?? DefaultTimeout);
        if (broker.UserName is not null) builder.WithCredentials(broker.UserName, broker.Password ?? "");
        if (broker.Tls)
        {
            X509Certificate2? ca = broker.LoadCa();
            builder.WithTlsOptions(o =>
            {
                o.UseTls(true).WithTargetHost(broker.Host);
                if (ca is not null) o.WithCertificateValidationHandler(args => TrustedBy(ca, args.Certificate, args.SslPolicyErrors));
            });
        }
        _options = builder.Build();
        Client.DisconnectedAsync += OnDisconnected;
    }

    public BrokerEndpoint Broker { get; }
    public string ClientId { get; }
    public IMqttClient Client { get; }
    public bool IsConnected => Client.IsConnected;

    /// <summary>Runs after every successful connect: the argument says whether the broker still had the session.</summary>
    public Func<bool, Task>? OnConnected { get; set; }

    /// <summary>Whether the broker grants $share subscriptions (from the last CONNACK).</summary>
    public bool SharedSubscriptionsAvailable { get; private set; }

    /// <summary>Connects, retrying until <paramref name="timeout"/>; a refused login or bad TLS is an error at once.</summary>
    public async Task ConnectAsync(TimeSpan timeout, CancellationToken cancel = default)
    {
        DateTime deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            try
            {
                await ConnectOnceAsync(cancel).ConfigureAwait(false);
                return;
            }
            catch (MQTTnet.Adapter.MqttConnectingFailedException e) when (e.Message.Contains("BadUserNameOrPassword", StringComparison.Ordinal) || e.Message.Contains("NotAuthorized", StringComparison.Ordinal))
            {
                throw new TinyTrainException($"broker {Broker} refused {ClientId}: bad user name or password, or not authorized; check the login in the broker URL");
            }
            catch (Exception e) when (e is not TinyTrainException && !cancel.IsCancellationRequested && DateTime.UtcNow < deadline)
            {
                await Task.Delay(200, cancel).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not TinyTrainException && e is not OperationCanceledException)
            {
                throw new TinyTrainException($"cannot reach broker {Broker} as {ClientId}: {e.GetBaseException().Message}; is it running (tinytrain fleet broker)?");
            }
        }
    }

    private async Task ConnectOnceAsync(CancellationToken cancel)
    {
        if (!Client.IsConnected)
        {
            MqttClientConnectResult result = await Client.ConnectAsync(_options, cancel).ConfigureAwait(false);
            if (result.ResultCode is MqttClientConnectResultCode.BadUserNameOrPassword or MqttClientConnectResultCode.NotAuthorized)
                throw new TinyTrainException($"broker {Broker} refused {ClientId}: bad user name or password, or not authorized ({result.ResultCode}); check the login in the broker URL");
            if (result.ResultCode != MqttClientConnectResultCode.Success)
                throw new MQTTnet.Exceptions.MqttCommunicationException($"broker {Broker} refused {ClientId}: {result.ResultCode} {result.ReasonString}");
            SharedSubscriptionsAvailable = result.SharedSubscriptionAvailable;
            _sessionPresent = result.IsSessionPresent;
        }
        if (OnConnected is not null) await OnConnected(_sessionPresent).ConfigureAwait(false);
    }

    private bool _sessionPresent;

    /// <summary>Connections lost (not closed by this side) so far.</summary>
    public int Disconnects { get; private set; }

    /// <summary>Why the last connection was lost (the broker's reason, or the client's error).</summary>
    public string? LastDisconnect { get; private set; }

    private Task OnDisconnected(MqttClientDisconnectedEventArgs args)
    {
        if (_closing.IsCancellationRequested || !args.ClientWasConnected) return Task.CompletedTask;
        Disconnects++;
        LastDisconnect = $"{args.Reason} {args.ReasonString} {args.Exception?.GetBaseException().Message}".Trim();
        _reconnect = Task.Run(async () =>
        {
            // Until connected and OnConnected (subscribe, resend) has run to the end.
            while (!_closing.IsCancellationRequested)
            {
                try
                {
                    await ConnectOnceAsync(_closing.Token).ConfigureAwait(false);
                    return;
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                catch (Exception) when (_closing.IsCancellationRequested)
                {
                    // Closed while connecting (MQTTnet reports that as a failed CONNECT, not a cancellation).
                    return;
                }
                catch (Exception)
                {
                    try { await Task.Delay(250, _closing.Token).ConfigureAwait(false); } catch (OperationCanceledException) { return; }
                }
            }
        });
        return Task.CompletedTask;
    }

    /// <summary>Publishes at QoS 1 and waits for the broker's PUBACK; false when the broker did not take it.</summary>
    public async Task<bool> PublishAsync(string topic, byte[] payload, bool retain = false, CancellationToken cancel = default)
    {
        var message = new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(payload)
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).WithRetainFlag(retain).Build();
        try
        {
            MqttClientPublishResult result = await Client.PublishAsync(message, cancel).ConfigureAwait(false);
            return result.IsSuccess;
        }
        catch (Exception e) when (e is MQTTnet.Exceptions.MqttCommunicationException or InvalidOperationException or MQTTnet.Exceptions.MqttClientNotConnectedException)
        {
            return false;
        }
    }

    /// <summary>Subscribes at QoS 1; returns whether the broker granted it.</summary>
    public async Task<bool> SubscribeAsync(string filter, CancellationToken cancel = default)
    {
        var options = new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter(f => f.WithTopic(filter).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)).Build();
        MqttClientSubscribeResult result = await Client.SubscribeAsync(options, cancel).ConfigureAwait(false);
        foreach (MqttClientSubscribeResultItem item in result.Items)
            if (item.ResultCode is not (MqttClientSubscribeResultCode.GrantedQoS1 or MqttClientSubscribeResultCode.GrantedQoS0 or MqttClientSubscribeResultCode.GrantedQoS2))
                return false;
        return true;
    }

    /// <summary>Drops the connection without a DISCONNECT packet and stops reconnecting (a crash, for tests and benchmarks).</summary>
    public void Abandon()
    {
        _closing.Cancel();
        Client.Dispose();
    }

    /// <summary>Disconnects, keeping the session at the broker (what a device that powers off does).</summary>
    public async ValueTask DisposeAsync()
    {
        await _closing.CancelAsync().ConfigureAwait(false);
        try
        {
            if (Client.IsConnected)
                await Client.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().WithReason(MqttClientDisconnectOptionsReason.NormalDisconnection).Build()).ConfigureAwait(false);
        }
        catch (Exception e) when (e is MQTTnet.Exceptions.MqttCommunicationException or OperationCanceledException)
        {
            // Gone already: the broker keeps the session either way.
        }
        if (_reconnect is not null)
        {
            try { await _reconnect.ConfigureAwait(false); } catch (OperationCanceledException) { }
        }
        Client.Dispose();
        _closing.Dispose();
    }

    private static bool TrustedBy(X509Certificate2 ca, X509Certificate certificate, SslPolicyErrors errors)
    {
        if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0 || (errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0) return false;
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var leaf = new X509Certificate2(certificate);
        return chain.Build(leaf);
    }
}
