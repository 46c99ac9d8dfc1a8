using TinyTrain.Emulator.Streams;

namespace TinyTrain.Emulator.Tests.Streams;

public sealed class StreamSpecJsonTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("tinytrain-stream-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string Write(string json)
    {
        string path = Path.Combine(_directory, "stream.json");
        File.WriteAllText(path, json);
        return path;
    }

    [Fact]
    public void A_stream_file_given_as_at_path_reads_like_the_text_form()
    {
        string path = Write("""
            {
              // comments and trailing commas are fine in a hand-written file
              "seed": 1,
              "segments": [
                { "source": "mnist", "classes": [2, 0, 1], "transform": "fog", "severity": 1.0, "count": 2000, "labels": "every:10" },
                { "source": "mnist-c", "transform": "rotate", "severity": 2, "count": 5 },
                { "source": "fashion-mnist", "labels": "none" },
              ]
            }
            """);

        StreamSpec spec = StreamSpec.Parse("@" + path);

        Assert.Equal(1UL, spec.Seed);
        Assert.Equal("mnist[0-2]:fog*2000/every:10, mnist-c:rotate@2*5, fashion-mnist:clean/none", spec.ToString());
        Assert.Equal(StreamSpec.Parse("mnist[0-2]:fog*2000/every:10, mnist-c:rotate@2*5, fashion-mnist:clean/none").Segments, spec.Segments);
        Assert.Equal(spec, StreamSpec.Load(path));
    }

    [Fact]
    public void Open_uses_the_seed_of_the_file()
    {
        string path = Write("""{ "seed": 7, "segments": [ { "source": "mnist-mini", "count": 3 } ] }""");

        DataStream stream = DataStream.Open("@" + path, seed: 99);

        Assert.Equal(7UL, stream.Seed);
        Assert.Equal(3, stream.TotalCount);
    }

    [Theory]
    [InlineData("""{ "segments": [ { "source": "mnist-c", "transform": "fgo" } ] }""",
        "segment 1, \"transform\": unknown corruption 'fgo'; known: shot-noise, impulse-noise, glass-blur, motion-blur, shear, scale, rotate, brightness, translate, stripe, fog, spatter, dotted-line, zigzag, canny-edges.")]
    [InlineData("""{ "segments": [ { "source": "mnist" }, { "source": "mnist", "count": 0 } ] }""",
        "segment 2, \"count\": must be a whole number from 1 to 2147483647, got 0.")]
    [InlineData("""{ "segments": [ { "source": "mnist", "cuont": 5 } ] }""",
        "segment 1: unknown field \"cuont\"; known: source, classes, transform, severity, count, labels.")]
    [InlineData("""{ "segments": [ { "source": "mnist", "labels": "half" } ] }""",
        "segment 1, \"labels\": unknown labels 'half': expected all, none, every:N or first:N.")]
    [InlineData("""{ "segments": [ { "source": "mnist", "classes": [1, -2] } ] }""",
        "segment 1, \"classes\": class numbers must be whole numbers 0..255, got -2.")]
    [InlineData("""{ "segments": [ { "source": "mnist", "classes": [] } ] }""",
        "segment 1, \"classes\": must be a non-empty list of class numbers such as [0, 1, 2], got an empty list.")]
    [InlineData("""{ "segments": [ { "source": "mnist", "severity": 2 } ] }""",
        "segment 1, \"severity\": 'clean' takes no severity.")]
    [InlineData("""{ "segments": [ { "source": "mnist-c" } ] }""",
        "segment 1: \"transform\" is missing.")]
    [InlineData("""{ "segments": [ { "count": 3 } ] }""",
        "segment 1: \"source\" is missing.")]
    [InlineData("""{ "segments": [ { "source": "kmnist" } ] }""",
        "segment 1, \"source\": unknown source 'kmnist'; known: mnist, fashion-mnist, mnist-mini, fashion-mnist-mini, imu-gestures, mnist-c, fashion-mnist-c, mnist-mini-c, fashion-mnist-mini-c.")]
    [InlineData("""{ "segments": [ "mnist:clean" ] }""",
        "segment 1: expected an object such as { \"source\": \"mnist\", \"count\": 2000 }, got a string.")]
    [InlineData("""{ "seed": -1, "segments": [ { "source": "mnist" } ] }""",
        ", \"seed\": must be a whole number from 0 to 18446744073709551615, got -1.")]
    [InlineData("""{ "segments": [] }""",
        ", \"segments\": must be a non-empty list of segments, got an empty list.")]
    [InlineData("""{ "seed": 1 }""",
        ": \"segments\" is missing: a list of segments such as { \"source\": \"mnist\", \"count\": 2000 }.")]
    [InlineData("""{ "seed": 1, "segmnets": [] }""",
        ": unknown field \"segmnets\"; known: seed, segments.")]
    [InlineData("""[1, 2]""",
        ": expected a JSON object with \"segments\", got a list.")]
    [InlineData("{ \"segments\": [\n  { \"source\": \"mnist\" \"count\": 3 } ] }",
        " is not valid JSON at line 2, column 23.")]
    public void A_bad_stream_file_names_the_file_the_segment_and_the_field(string json, string after)
    {
        string path = Write(json);

        var e = Assert.Throws<TinyTrainException>(() => StreamSpec.Parse("@" + path));

        string separator = after.StartsWith("segment", StringComparison.Ordinal) ? ", " : "";
        Assert.Equal($"stream file {path}{separator}{after}", e.Message);
    }

    [Fact]
    public void A_missing_stream_file_says_where_it_looked()
    {
        string path = Path.Combine(_directory, "nope.json");

        var e = Assert.Throws<TinyTrainException>(() => StreamSpec.Parse("@" + path));

        Assert.Equal($"stream file {path} does not exist (looked in {path}).", e.Message);
    }
}
