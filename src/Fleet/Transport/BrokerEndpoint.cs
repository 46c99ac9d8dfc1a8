namespace TinyTrain.Fleet.Transport;

using System.Security.Cryptography.X509Certificates;

/// <summary>
/// Where the broker is: mqtt://[user:password@]host:port, or mqtts:// for TLS, which trusts the system's roots or only
/// <see cref="CaCertificatePath"/> when given (a fleet's own CA, PEM).
/// </summary>
public sealed record BrokerEndpoint(string Host, int Port, bool Tls, string? UserName = null, string? Password = null, string? CaCertificatePath = null)
{
    public static BrokerEndpoint Parse(string url, string? caCertificatePath = null)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out Uri? uri) || (uri.Scheme != "mqtt" && uri.Scheme != "mqtts") || string.IsNullOrEmpty(uri.Host))
            throw new TinyTrainException($"broker '{url}' is not an MQTT URL; use mqtt://host:port or mqtts://host:port (user:password@ before the host for a login)");
        bool tls = uri.Scheme == "mqtts";
        int port = uri.IsDefaultPort || uri.Port <= 0 ? (tls ? 8883 : 1883) : uri.Port;
        string? user = null, password = null;
        if (!string.IsNullOrEmpty(uri.UserInfo))
        {
            string[] parts = uri.UserInfo.Split(':', 2);
            user = Uri.UnescapeDataString(parts[0]);
            password = parts.Length > 1 ? Uri.UnescapeDataString(parts[1]) : "";
        }
        if (caCertificatePath is not null && !File.Exists(caCertificatePath))
            throw new TinyTrainException($"CA certificate '{caCertificatePath}' does not exist");
        return new BrokerEndpoint(uri.Host, port, tls, user, password, caCertificatePath);
    }

    public override string ToString() => $"{(Tls ? "mqtts" : "mqtt")}://{(UserName is null ? "" : UserName + "@")}{Host}:{Port}";

    /// <summary>The fleet CA, or null to trust the system's roots.</summary>
    internal X509Certificate2? LoadCa() => CaCertificatePath is null ? null : X509Certificate2.CreateFromPem(File.ReadAllText(CaCertificatePath));
}
