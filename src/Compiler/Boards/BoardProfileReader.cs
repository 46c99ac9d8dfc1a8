using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;

namespace TinyTrain.Compiler.Boards;

/// <summary>
/// Reads and validates one board profile (boards/&lt;id&gt;.json). Every problem is a TinyTrainException that names
/// the file and the field: unknown or missing fields, wrong types, and figures that cannot be right.
/// </summary>
public static partial class BoardProfileReader
{
    /// <summary>Parses <paramref name="json"/>; <paramref name="origin"/> (a file or resource name) goes into every
    /// error message. When <paramref name="expectedId"/> is given, the profile's id must equal it.</summary>
    public static BoardProfile Parse(string json, string origin, string? expectedId = null)
    {
        ArgumentNullException.ThrowIfNull(json);
        ArgumentNullException.ThrowIfNull(origin);
        BoardProfileJson? raw;
        try
        {
            raw = JsonSerializer.Deserialize(json, BoardProfileJsonContext.Default.BoardProfileJson);
        }
        catch (JsonException e)
        {
            throw new TinyTrainException($"Board profile {origin} is malformed: {Describe(e)}", e);
        }
        if (raw is null)
            throw new TinyTrainException($"Board profile {origin} is malformed: expected a JSON object, got null.");
        return Validate(raw, origin, expectedId);
    }

    internal static string FpuName(BoardFpu fpu) => fpu switch
    {
        BoardFpu.None => "none",
        BoardFpu.Single => "sp",
        BoardFpu.Double => "dp",
        _ => throw new ArgumentOutOfRangeException(nameof(fpu)),
    };

    internal static string KindName(BoardKind kind) => kind switch
    {
        BoardKind.Mcu => "mcu",
        BoardKind.Linux => "linux",
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    private static BoardProfile Validate(BoardProfileJson raw, string origin, string? expectedId)
    {
        string id = Text(raw.Id, "id", origin);
        if (!IdPattern().IsMatch(id))
            throw Bad(origin, "id", $"must be lower-case letters, digits and dashes, got '{id}'");
        if (expectedId is not null && id != expectedId)
            throw Bad(origin, "id", $"must match the file name '{expectedId}', got '{id}'");

        string fpu = Text(raw.Fpu, "fpu", origin);
        BoardFpu parsedFpu = fpu switch
        {
            "none" => BoardFpu.None,
            "sp" => BoardFpu.Single,
            "dp" => BoardFpu.Double,
            _ => throw Bad(origin, "fpu", $"must be \"none\", \"sp\" or \"dp\", got \"{fpu}\""),
        };
        string kind = Text(raw.Kind, "kind", origin);
        BoardKind parsedKind = kind switch
        {
            "mcu" => BoardKind.Mcu,
            "linux" => BoardKind.Linux,
            _ => throw Bad(origin, "kind", $"must be \"mcu\" or \"linux\", got \"{kind}\""),
        };
        string simd = Text(raw.Simd, "simd", origin);
        if (!IdPattern().IsMatch(simd))
            throw Bad(origin, "simd", $"must be one lower-case word such as \"none\", \"dsp\" or \"neon\", got \"{simd}\"");

        long sram = Positive(raw.SramBytes, "sram_bytes", origin);
        long flash = Positive(raw.FlashBytes, "flash_bytes", origin);
        long reservedSram = Reserve(raw.ReservedSramBytes, "reserved_sram_bytes", sram, "sram_bytes", origin);
        long reservedFlash = Reserve(raw.ReservedFlashBytes, "reserved_flash_bytes", flash, "flash_bytes", origin);

        if (raw.Notes is null)
            throw Bad(origin, "notes", "is missing (an array of strings; may be empty)");
        for (int i = 0; i < raw.Notes.Length; i++)
            if (string.IsNullOrWhiteSpace(raw.Notes[i]))
                throw Bad(origin, $"notes[{i}]", "is empty");

        ThroughputJson t = raw.Throughput ?? throw Bad(origin, "throughput", "is missing");
        var throughput = new BoardThroughput(
            Rate(t.ConvMacsPerCycle, "throughput.conv_macs_per_cycle", origin),
            Rate(t.DepthwiseMacsPerCycle, "throughput.depthwise_macs_per_cycle", origin),
            Rate(t.PointwiseMacsPerCycle, "throughput.pointwise_macs_per_cycle", origin),
            Rate(t.MemoryBytesPerCycle, "throughput.memory_bytes_per_cycle", origin),
            Text(t.Note, "throughput.note", origin));

        return new BoardProfile(
            id,
            Text(raw.Name, "name", origin),
            Text(raw.Core, "core", origin),
            (int)Positive(raw.ClockMhz, "clock_mhz", origin),
            (int)Positive(raw.Cores, "cores", origin),
            parsedFpu,
            simd,
            sram,
            flash,
            reservedSram,
            reservedFlash,
            parsedKind,
            Text(raw.Source, "source", origin),
            Array.AsReadOnly(raw.Notes),
            throughput);
    }

    private static string Text(string? value, string field, string origin)
    {
        if (value is null) throw Bad(origin, field, "is missing");
        if (string.IsNullOrWhiteSpace(value)) throw Bad(origin, field, "is empty");
        return value;
    }

    private static long Positive(long? value, string field, string origin)
    {
        if (value is null) throw Bad(origin, field, "is missing");
        if (value <= 0) throw Bad(origin, field, $"must be positive, got {value}");
        return value.Value;
    }

    private static long Positive(int? value, string field, string origin) => Positive((long?)value, field, origin);

    private static long Reserve(long? value, string field, long total, string totalField, string origin)
    {
        if (value is null) throw Bad(origin, field, "is missing");
        if (value < 0) throw Bad(origin, field, $"must not be negative, got {value}");
        if (value >= total)
            throw Bad(origin, field, $"must be less than {totalField} ({total}), got {value}: nothing would be left for a plan");
        return value.Value;
    }

    private static double Rate(double? value, string field, string origin)
    {
        if (value is null) throw Bad(origin, field, "is missing");
        if (!double.IsFinite(value.Value) || value <= 0) throw Bad(origin, field, $"must be a positive number, got {value}");
        return value.Value;
    }

    private static TinyTrainException Bad(string origin, string field, string problem)
        => new($"Board profile {origin}: field '{field}' {problem}.");

    // System.Text.Json names its own types and paths; say it in the profile's terms instead.
    private static string Describe(JsonException e)
    {
        string where = e.LineNumber is long line ? $" (line {line + 1})" : "";
        string field = e.Path is { Length: > 2 } path && path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : "";
        string message = e.Message;
        int cut = message.IndexOf(" Path: ", StringComparison.Ordinal);
        if (cut >= 0) message = message[..cut];
        if (message.StartsWith("The input does not contain any JSON tokens", StringComparison.Ordinal))
            return "the file is empty; expected a JSON object with the fields listed in boards/README.md.";
        if (message.StartsWith("Duplicate property '", StringComparison.Ordinal))
        {
            int end = message.IndexOf('\'', "Duplicate property '".Length);
            return $"field '{message["Duplicate property '".Length..end]}' appears twice{where}.";
        }
        if (message.Contains("could not be mapped", StringComparison.Ordinal))
            return $"unknown field{(field.Length > 0 ? $" '{field}'" : "")}{where}; the fields are listed in boards/README.md.";
        if (e.Path == "$" && message.Contains("could not be converted", StringComparison.Ordinal))
            return "expected a JSON object with the fields listed in boards/README.md.";
        if (field.Length > 0 && message.Contains("could not be converted", StringComparison.Ordinal))
            return $"field '{field}' has the wrong type{where}: {ExpectedType(field)}.";
        return message.TrimEnd('.') + where + ".";
    }

    private static string ExpectedType(string field) => field switch
    {
        "clock_mhz" or "cores" => "expected a whole number",
        "sram_bytes" or "flash_bytes" or "reserved_sram_bytes" or "reserved_flash_bytes" => "expected a whole number of bytes",
        "notes" => "expected an array of strings",
        "throughput" => "expected an object",
        _ when field.StartsWith("throughput.", StringComparison.Ordinal) && field != "throughput.note" => "expected a number",
        _ when field.StartsWith("notes[", StringComparison.Ordinal) => "expected a string",
        _ => "expected a string",
    };

    [GeneratedRegex("^[a-z0-9][a-z0-9-]*$")]
    private static partial Regex IdPattern();
}

// The file's shape; every field nullable so that a missing one gets our message, not the serializer's.
internal sealed class BoardProfileJson
{
    public string? Id { get; set; }
    public string? Name { get; set; }
    public string? Core { get; set; }
    public int? ClockMhz { get; set; }
    public int? Cores { get; set; }
    public string? Fpu { get; set; }
    public string? Simd { get; set; }
    public long? SramBytes { get; set; }
    public long? FlashBytes { get; set; }
    public long? ReservedSramBytes { get; set; }
    public long? ReservedFlashBytes { get; set; }
    public string? Kind { get; set; }
    public string? Source { get; set; }
    public string[]? Notes { get; set; }
    public ThroughputJson? Throughput { get; set; }
}

internal sealed class ThroughputJson
{
    public double? ConvMacsPerCycle { get; set; }
    public double? DepthwiseMacsPerCycle { get; set; }
    public double? PointwiseMacsPerCycle { get; set; }
    public double? MemoryBytesPerCycle { get; set; }
    public string? Note { get; set; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow, AllowDuplicateProperties = false,
    ReadCommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true)]
[JsonSerializable(typeof(BoardProfileJson))]
internal sealed partial class BoardProfileJsonContext : JsonSerializerContext;
