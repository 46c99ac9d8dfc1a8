namespace TinyTrain.Fleet.Simulation;

using System.Text.Json;
using System.Text.Json.Serialization;

/// <summary>One round of a simulated fleet: accuracies are means over honest devices, on each device's own held-out data.</summary>
public sealed record RoundReport(
    [property: JsonPropertyName("round")] int Round,
    [property: JsonPropertyName("global_version")] long GlobalVersion,
    [property: JsonPropertyName("fleet_accuracy")] double FleetAccuracy,
    [property: JsonPropertyName("local_only_accuracy")] double LocalOnlyAccuracy,
    [property: JsonPropertyName("no_adaptation_accuracy")] double NoAdaptationAccuracy,
    [property: JsonPropertyName("bytes_per_device")] double BytesPerDevice,
    [property: JsonPropertyName("accepted")] long Accepted,
    [property: JsonPropertyName("late")] int Late,
    [property: JsonPropertyName("rejected")] IReadOnlyDictionary<string, long> Rejected,
    [property: JsonPropertyName("seconds")] double Seconds);

public sealed record SimulationReport(
    [property: JsonPropertyName("devices")] int Devices,
    [property: JsonPropertyName("malicious")] int Malicious,
    [property: JsonPropertyName("rounds_requested")] int RoundsRequested,
    [property: JsonPropertyName("seed")] int Seed,
    [property: JsonPropertyName("broker")] string Broker,
    [property: JsonPropertyName("aggregation")] string Aggregation,
    [property: JsonPropertyName("model_id")] string ModelId,
    [property: JsonPropertyName("trained_parameters")] int TrainedParameters,
    [property: JsonPropertyName("board")] string Board,
    [property: JsonPropertyName("sram_high_water_bytes")] int SramHighWaterBytes,
    [property: JsonPropertyName("rounds")] IReadOnlyList<RoundReport> Rounds,
    [property: JsonPropertyName("aggregated_exactly_once")] bool AggregatedExactlyOnce,
    [property: JsonPropertyName("rejected_total")] IReadOnlyDictionary<string, long> RejectedTotal,
    [property: JsonPropertyName("seconds")] double Seconds)
{
    public string ToJson() => JsonSerializer.Serialize(this, new JsonSerializerOptions { WriteIndented = true });

    public void WritePlot(string path)
    {
        var plot = new ScottPlot.Plot();
        double[] x = new double[Rounds.Count];
        double[] fleet = new double[Rounds.Count], local = new double[Rounds.Count], none = new double[Rounds.Count];
        for (int i = 0; i < Rounds.Count; i++)
        {
            x[i] = Rounds[i].Round;
            fleet[i] = 100 * Rounds[i].FleetAccuracy;
            local[i] = 100 * Rounds[i].LocalOnlyAccuracy;
            none[i] = 100 * Rounds[i].NoAdaptationAccuracy;
        }
        plot.Add.ScatterLine(x, fleet).LegendText = "fleet (global adapter)";
        plot.Add.ScatterLine(x, local).LegendText = "local-only adaptation";
        plot.Add.ScatterLine(x, none).LegendText = "no adaptation";
        plot.Title($"{Devices} devices ({Malicious} malicious), {Aggregation}");
        plot.XLabel("round");
        plot.YLabel("accuracy on each device's own data (%)");
        plot.ShowLegend();
        string? directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null) Directory.CreateDirectory(directory);
        plot.SavePng(path, 900, 500);
    }
}
