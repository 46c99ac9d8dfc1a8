namespace TinyTrain.Fleet.Transport;

/// <summary>
/// The topic layout (README, "Fleet adaptation"): everything of one fleet, model and task lives under
/// tinytrain/{fleet}/{model}/{task}/, with updates/{device} (QoS 1, device -> aggregators), global (QoS 1, retained,
/// aggregator -> devices), receipts/{device} (QoS 1, retained, aggregator -> that device) and telemetry/{device} (QoS 1). Aggregators share updates/+ with $share/{group}/; ingest workers hand what they took
/// to the merger on partials/{worker} and get its receipts on partial-receipts/{worker}.
/// </summary>
public sealed record FleetTopics(string Fleet, string ModelId, string Task)
{
    public string Root => $"tinytrain/{Fleet}/{ModelId}/{Task}";
    public string Update(string deviceId) => $"{Root}/updates/{deviceId}";
    public string Updates => $"{Root}/updates/+";
    public string SharedUpdates(string group) => $"$share/{group}/{Root}/updates/+";
    public string Global => $"{Root}/global";
    public string Receipt(string deviceId) => $"{Root}/receipts/{deviceId}";
    public string Telemetry(string deviceId) => $"{Root}/telemetry/{deviceId}";
    public string AllTelemetry => $"{Root}/telemetry/+";
    /// <summary>Ingest worker -> merger (QoS 1): SignedMessage(PartialEnvelope), signed by the worker.</summary>
    public string Partial(string workerId) => $"{Root}/partials/{workerId}";
    public string Partials => $"{Root}/partials/+";
    /// <summary>Merger -> that worker (QoS 1, retained): SignedMessage(ReceiptEnvelope) for the partials the merger holds.</summary>
    public string PartialReceipt(string workerId) => $"{Root}/partial-receipts/{workerId}";

    /// <summary>Refuses names that would break the layout (MQTT wildcards, separators, empty).</summary>
    public static string CheckName(string what, string value)
    {
        if (string.IsNullOrEmpty(value) || value.IndexOfAny(['/', '+', '#', '$', ' ']) >= 0 || value.Length > 64)
            throw new TinyTrainException($"{what} '{value}' cannot be part of an MQTT topic: use 1-64 characters without / + # $ or spaces");
        return value;
    }
}
