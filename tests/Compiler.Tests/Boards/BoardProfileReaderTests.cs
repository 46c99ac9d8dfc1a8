namespace TinyTrain.Compiler.Tests.Boards;

using System.Text.Json.Nodes;
using TinyTrain.Compiler.Boards;

public class BoardProfileReaderTests
{
    private const string Valid = """
        {
          "id": "test-board",
          "name": "Test board",
          "core": "Cortex-M4F",
          "clock_mhz": 64,
          "cores": 1,
          "fpu": "sp",
          "simd": "dsp",
          "sram_bytes": 262144,
          "flash_bytes": 1048576,
          "reserved_sram_bytes": 32768,
          "reserved_flash_bytes": 131072,
          "kind": "mcu",
          "source": "Test datasheet DS00000",
          "notes": ["a note"],
          "throughput": {
            "conv_macs_per_cycle": 1.0,
            "depthwise_macs_per_cycle": 0.5,
            "pointwise_macs_per_cycle": 1.0,
            "memory_bytes_per_cycle": 4,
            "note": "an estimate"
          }
        }
        """;

    [Fact]
    public void Parse_Valid_ReadsEveryField()
    {
        BoardProfile b = BoardProfileReader.Parse(Valid, "test.json");
        Assert.Equal(("test-board", "Test board", "Cortex-M4F", 64, 1), (b.Id, b.Name, b.Core, b.ClockMhz, b.Cores));
        Assert.Equal((BoardFpu.Single, "dsp", BoardKind.Mcu, "Test datasheet DS00000"), (b.Fpu, b.Simd, b.Kind, b.Source));
        Assert.Equal((262144L, 1048576L, 32768L, 131072L), (b.SramBytes, b.FlashBytes, b.ReservedSramBytes, b.ReservedFlashBytes));
        Assert.Equal((229376L, 917504L), (b.UsableSramBytes, b.UsableFlashBytes));
        Assert.Equal(["a note"], b.Notes);
        Assert.Equal(new BoardThroughput(1.0, 0.5, 1.0, 4, "an estimate"), b.Throughput);
        Assert.Equal(("sp", "mcu"), (b.FpuName, b.KindName));
    }

    [Theory]
    [InlineData("sram_bytes", "0", "field 'sram_bytes' must be positive, got 0")]
    [InlineData("clock_mhz", "-216", "field 'clock_mhz' must be positive, got -216")]
    [InlineData("reserved_sram_bytes", "262144", "field 'reserved_sram_bytes' must be less than sram_bytes (262144), got 262144")]
    [InlineData("reserved_flash_bytes", "-1", "field 'reserved_flash_bytes' must not be negative, got -1")]
    [InlineData("fpu", "\"double\"", "field 'fpu' must be \"none\", \"sp\" or \"dp\", got \"double\"")]
    [InlineData("kind", "\"rtos\"", "field 'kind' must be \"mcu\" or \"linux\", got \"rtos\"")]
    [InlineData("id", "\"Test Board\"", "field 'id' must be lower-case letters, digits and dashes, got 'Test Board'")]
    [InlineData("source", "\"  \"", "field 'source' is empty")]
    [InlineData("sram_bytes", "\"256K\"", "field 'sram_bytes' has the wrong type (line 9): expected a whole number of bytes")]
    [InlineData("sram_bytes", "262144.5", "field 'sram_bytes' has the wrong type (line 9): expected a whole number of bytes")]
    [InlineData("notes", "\"one note\"", "field 'notes' has the wrong type (line 15): expected an array of strings")]
    public void Parse_BadField_NamesFileFieldAndProblem(string field, string value, string expected)
    {
        var e = Assert.Throws<TinyTrainException>(() => BoardProfileReader.Parse(With(field, value), "boards/test-board.json"));
        Assert.StartsWith("Board profile boards/test-board.json", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Parse_MissingField_SaysWhich()
    {
        JsonObject o = JsonNode.Parse(Valid)!.AsObject();
        o.Remove("flash_bytes");
        var e = Assert.Throws<TinyTrainException>(() => BoardProfileReader.Parse(o.ToJsonString(), "x.json"));
        Assert.Equal("Board profile x.json: field 'flash_bytes' is missing.", e.Message);

        JsonObject t = JsonNode.Parse(Valid)!.AsObject();
        t["throughput"]!.AsObject().Remove("conv_macs_per_cycle");
        e = Assert.Throws<TinyTrainException>(() => BoardProfileReader.Parse(t.ToJsonString(), "x.json"));
        Assert.Equal("Board profile x.json: field 'throughput.conv_macs_per_cycle' is missing.", e.Message);
    }

    [Fact]
    public void Parse_UnknownField_IsRefused()
    {
        string json = Valid.Replace("\"sram_bytes\"", "\"sram_kb\"", StringComparison.Ordinal);
        var e = Assert.Throws<TinyTrainException>(() => BoardProfileReader.Parse(json, "x.json"));
        Assert.StartsWith("Board profile x.json is malformed: unknown field 'sram_kb' (line 9)", e.Message);
    }

    [Fact]
    public void Parse_DuplicateField_IsRefused()
    {
        string json = Valid.Replace("\"cores\": 1,", "\"cores\": 1, \"cores\": 2,", StringComparison.Ordinal);
        var e = Assert.Throws<TinyTrainException>(() => BoardProfileReader.Parse(json, "x.json"));
        Assert.Equal("Board profile x.json is malformed: field 'cores' appears twice (line 6).", e.Message);
    }

    [Theory]
    [InlineData("{ \"id\": \"a\", ", "Board profile x.json is malformed:")]
    [InlineData("[1, 2]", "Board profile x.json is malformed: expected a JSON object")]
    [InlineData("null", "Board profile x.json is malformed: expected a JSON object")]
    [InlineData("", "Board profile x.json is malformed: the file is empty")]
    public void Parse_NotAProfile_IsRefused(string json, string expected)
    {
        var e = Assert.Throws<TinyTrainException>(() => BoardProfileReader.Parse(json, "x.json"));
        Assert.StartsWith(expected, e.Message);
    }

    [Fact]
    public void Parse_IdMustMatchTheFileName()
    {
        var e = Assert.Throws<TinyTrainException>(() => BoardProfileReader.Parse(Valid, "boards/other.json", expectedId: "other"));
        Assert.Equal("Board profile boards/other.json: field 'id' must match the file name 'other', got 'test-board'.", e.Message);
    }

    private static string With(string field, string rawValue)
    {
        // Replace the value in place so that line numbers stay those of Valid.
        string[] lines = Valid.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            string key = $"\"{field}\": ";
            int at = lines[i].IndexOf(key, StringComparison.Ordinal);
            if (at < 0) continue;
            string rest = lines[i][(at + key.Length)..];
            string comma = rest.TrimEnd().EndsWith(',') ? "," : "";
            lines[i] = lines[i][..(at + key.Length)] + rawValue + comma;
            return string.Join('\n', lines);
        }
        throw new ArgumentException($"no field {field}");
    }
}
