namespace TinyTrain.Fleet.Tests;

using Xunit.Abstractions;

/// <summary>
/// The external Mosquitto that .ci/run starts (.ci/mosquitto.sh): tests that need it read its URLs from the environment
/// and, where TINYTRAIN_MQTT_URL is absent, pass after saying that they skipped the external part.
/// </summary>
internal static class ExternalBroker
{
    public static string? Url => Environment.GetEnvironmentVariable("TINYTRAIN_MQTT_URL");
    public static string? AuthUrl => Environment.GetEnvironmentVariable("TINYTRAIN_MQTT_AUTH_URL");
    public static string? TlsUrl => Environment.GetEnvironmentVariable("TINYTRAIN_MQTT_TLS_URL");
    public static string? Ca => Environment.GetEnvironmentVariable("TINYTRAIN_MQTT_CA");
    public static string Mosquitto => Environment.GetEnvironmentVariable("TINYTRAIN_MOSQUITTO") ?? "mosquitto";

    /// <summary>False (after saying so) when CI's Mosquitto is not there.</summary>
    public static bool Available(ITestOutputHelper output, params string?[] needed)
    {
        if (Url is not null && Array.TrueForAll(needed, n => n is not null)) return true;
        string line = "skipped the external-broker part: TINYTRAIN_MQTT_URL (and its TLS/login companions) not set; .ci/run sets them with Mosquitto";
        output.WriteLine(line);
        Console.WriteLine(line);
        return false;
    }
}
