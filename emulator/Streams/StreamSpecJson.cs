using System.Text.Json;

namespace TinyTrain.Emulator.Streams;

/// <summary>
/// The JSON form of a stream, for streams too long for a command line:
/// <c>{ "seed": 1, "segments": [ { "source": "mnist", "classes": [0,1,2], "transform": "fog", "severity": 1.0,
/// "count": 2000, "labels": "every:10" } ] }</c>. Only "source" is required in a segment; the rest default as in
/// the text form. Unknown fields are refused, so that a typo does not silently change the stream.
/// </summary>
internal static class StreamSpecJson
{
    private static readonly string[] RootFields = ["seed", "segments"];
    private static readonly string[] SegmentFields = ["source", "classes", "transform", "severity", "count", "labels"];

    public static StreamSpec Load(string path)
    {
        if (path.Length == 0)
            throw new TinyTrainException("stream spec '@' names no file: write @path/to/stream.json.");
        string json;
        try
        {
            json = File.ReadAllText(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new TinyTrainException($"stream file {path} does not exist (looked in {Path.GetFullPath(path)}).");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new TinyTrainException($"stream file {path} cannot be read: {e.Message}");
        }
        return Parse(json, path);
    }

    public static StreamSpec Parse(string json, string origin)
    {
        ArgumentNullException.ThrowIfNull(json);
        ArgumentNullException.ThrowIfNull(origin);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            string at = e.LineNumber is long line ? $" at line {line + 1}, column {(e.BytePositionInLine ?? 0) + 1}" : "";
            throw new TinyTrainException($"stream file {origin} is not valid JSON{at}.");
        }
        using (document)
        {
            JsonElement root = document.RootElement;
            string where = $"stream file {origin}";
            if (root.ValueKind != JsonValueKind.Object)
                throw new TinyTrainException($"{where}: expected a JSON object with \"segments\", got {Kind(root)}.");
            CheckFields(root, RootFields, where);

            ulong? seed = null;
            if (root.TryGetProperty("seed", out JsonElement seedElement))
            {
                if (seedElement.ValueKind != JsonValueKind.Number || !seedElement.TryGetUInt64(out ulong s))
                    throw new TinyTrainException($"{where}, \"seed\": must be a whole number from 0 to {ulong.MaxValue}, got {seedElement.GetRawText()}.");
                seed = s;
            }

            if (!root.TryGetProperty("segments", out JsonElement list))
                throw new TinyTrainException($"{where}: \"segments\" is missing: a list of segments such as {{ \"source\": \"mnist\", \"count\": 2000 }}.");
            if (list.ValueKind != JsonValueKind.Array || list.GetArrayLength() == 0)
                throw new TinyTrainException($"{where}, \"segments\": must be a non-empty list of segments, got {Kind(list)}.");

            var segments = new List<StreamSegment>();
            foreach (JsonElement item in list.EnumerateArray())
                segments.Add(ParseSegment(item, $"{where}, segment {segments.Count + 1}"));
            return new StreamSpec([.. segments], seed);
        }
    }

    private static StreamSegment ParseSegment(JsonElement item, string where)
    {
        if (item.ValueKind != JsonValueKind.Object)
            throw new TinyTrainException($"{where}: expected an object such as {{ \"source\": \"mnist\", \"count\": 2000 }}, got {Kind(item)}.");
        CheckFields(item, SegmentFields, where);

        string source = Text(item, "source", where, required: true)!.ToLowerInvariant();
        string baseSet = StreamSources.Resolve(source, out bool corrupted)
            ?? throw Bad(where, "source", StreamSources.UnknownSource(source));

        int[]? classes = null;
        if (item.TryGetProperty("classes", out JsonElement classList))
        {
            if (classList.ValueKind != JsonValueKind.Array || classList.GetArrayLength() == 0)
                throw Bad(where, "classes", $"must be a non-empty list of class numbers such as [0, 1, 2], got {Kind(classList)}");
            var set = new SortedSet<int>();
            foreach (JsonElement c in classList.EnumerateArray())
            {
                if (c.ValueKind != JsonValueKind.Number || !c.TryGetInt32(out int n) || n < 0 || n > StreamSources.MaxClass)
                    throw Bad(where, "classes", $"class numbers must be whole numbers 0..{StreamSources.MaxClass}, got {c.GetRawText()}");
                set.Add(n);
            }
            classes = [.. set];
        }

        string transform = Text(item, "transform", where, required: corrupted)?.ToLowerInvariant() ?? StreamSegment.Clean;
        if (StreamSources.CheckTransform(source, corrupted, transform) is string badTransform)
            throw Bad(where, "transform", badTransform);

        double severity = 1.0;
        if (item.TryGetProperty("severity", out JsonElement severityElement))
        {
            if (severityElement.ValueKind != JsonValueKind.Number)
                throw Bad(where, "severity", $"must be a number, got {Kind(severityElement)}");
            severity = severityElement.GetDouble();
            if (StreamSources.CheckSeverity(transform, severity) is string badSeverity)
                throw Bad(where, "severity", badSeverity);
        }

        int? count = null;
        if (item.TryGetProperty("count", out JsonElement countElement))
        {
            if (countElement.ValueKind != JsonValueKind.Number || !countElement.TryGetInt32(out int n) || n < 1)
                throw Bad(where, "count", $"must be a whole number from 1 to {int.MaxValue}, got {countElement.GetRawText()}");
            count = n;
        }

        LabelRule labels = LabelRule.All;
        if (Text(item, "labels", where, required: false) is string labelText
            && !LabelRule.TryParse(labelText, out labels, out string error, out _))
            throw Bad(where, "labels", error);

        return new StreamSegment(source, baseSet, classes, transform, severity, count, labels);
    }

    private static string? Text(JsonElement item, string field, string where, bool required)
    {
        if (!item.TryGetProperty(field, out JsonElement value))
        {
            if (required)
                throw new TinyTrainException($"{where}: \"{field}\" is missing.");
            return null;
        }
        if (value.ValueKind != JsonValueKind.String || value.GetString() is not string text || text.Length == 0)
            throw Bad(where, field, $"must be a non-empty string, got {value.GetRawText()}");
        return text;
    }

    private static void CheckFields(JsonElement element, string[] known, string where)
    {
        foreach (JsonProperty property in element.EnumerateObject())
        {
            if (Array.IndexOf(known, property.Name) < 0)
                throw new TinyTrainException($"{where}: unknown field \"{property.Name}\"; known: {string.Join(", ", known)}.");
        }
    }

    private static TinyTrainException Bad(string where, string field, string message) =>
        new($"{where}, \"{field}\": {message}.");

    private static string Kind(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => element.GetArrayLength() == 0 ? "an empty list" : "a list",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number " + element.GetRawText(),
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => element.ValueKind.ToString(),
    };
}
