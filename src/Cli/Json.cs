using System.Text.Json;
using System.Text.Json.Serialization;

namespace TinyTrain.Cli;

/// <summary>One JSON object per --json command, snake_case keys, printed alone on stdout.</summary>
internal static class Json
{
    private static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static void Write(TextWriter stdout, object value)
    {
        stdout.WriteLine(JsonSerializer.Serialize(value, value.GetType(), Options));
        stdout.Flush();
    }
}
