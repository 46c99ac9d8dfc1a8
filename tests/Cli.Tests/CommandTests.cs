using System.Globalization;
using System.Text.Json;

namespace TinyTrain.Cli.Tests;

public class CommandTests
{
    [Theory]
    [InlineData("mcunet-5fps", 470_834, 22_455_104)]
    [InlineData("mbv2-w0.35", 245_578, 16_648_032)]
    [InlineData("proxyless-w0.3", 327_202, 18_620_864)]
    public void Info_json_reports_the_published_layer_lists_parameters_and_macs(string model, int parameters, long macs)
    {
        var r = CliRunner.Run("info", "--model", model, "--resolution", "128", "--json");
        Assert.Equal(0, r.ExitCode);
        using JsonDocument doc = JsonDocument.Parse(r.Stdout);
        Assert.Equal(parameters, doc.RootElement.GetProperty("params").GetInt32());
        Assert.Equal(macs, doc.RootElement.GetProperty("macs").GetInt64());
        Assert.True(doc.RootElement.GetProperty("layers").GetArrayLength() > 20);
    }

    [Fact]
    public void Info_prints_a_table_for_people()
    {
        var r = CliRunner.Run("info", "--model", "cnn-s");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("MACs per inference", r.Stdout);
        Assert.Contains("16x28x28", r.Stdout);
    }

    [Fact]
    public void Unknown_model_is_refused_with_the_known_names()
    {
        string line = CliRunner.AssertOneLineError(CliRunner.Run("info", "--model", "resnet-999"));
        Assert.Contains("resnet-999", line);
        Assert.Contains("mcunet-5fps", line);
    }

    [Fact]
    public void Negative_epoch_count_is_refused()
    {
        string line = CliRunner.AssertOneLineError(CliRunner.Run("pretrain", "--model", "cnn-s", "--data", "mnist-mini", "--epochs", "-3", "-o", "x.onnx"));
        Assert.Contains("--epochs", line);
    }

    [Fact]
    public void Unknown_option_is_refused()
    {
        string line = CliRunner.AssertOneLineError(CliRunner.Run("info", "--model", "cnn-s", "--colour", "red"));
        Assert.Contains("--colour", line);
    }

    [Fact]
    public void Data_that_was_not_fetched_says_how_to_fetch_it()
    {
        string empty = Directory.CreateTempSubdirectory("tinytrain-nodata").FullName;
        var r = CliRunner.Run(new Dictionary<string, string> { ["TINYTRAIN_DATA"] = empty },
            "pretrain", "--model", "cnn-s", "--data", "mnist", "-o", Path.Combine(empty, "m.onnx"));
        string line = CliRunner.AssertOneLineError(r);
        Assert.Contains("tinytrain data fetch mnist", line);
        Assert.False(File.Exists(Path.Combine(empty, "m.onnx")));
    }

    [Fact]
    public void A_truncated_onnx_file_is_refused_as_damaged()
    {
        string dir = Directory.CreateTempSubdirectory("tinytrain-onnx").FullName;
        string model = Path.Combine(dir, "model.onnx");
        var export = CliRunner.Run("pretrain", "--model", "cnn-s", "--data", "mnist-mini", "--epochs", "1", "--max-samples", "64", "-o", model);
        Assert.Equal(0, export.ExitCode);
        byte[] bytes = File.ReadAllBytes(model);
        string truncated = Path.Combine(dir, "truncated.onnx");
        File.WriteAllBytes(truncated, bytes[..(bytes.Length / 2)]);
        string line = CliRunner.AssertOneLineError(CliRunner.Run("info", "--model", truncated));
        Assert.Contains("truncated.onnx", line);
    }

    [Fact]
    public void Missing_onnx_file_is_refused()
    {
        string line = CliRunner.AssertOneLineError(CliRunner.Run("info", "--model", "no/such/model.onnx"));
        Assert.Contains("no such file", line);
    }

    [Fact]
    public void Pretrain_learns_on_the_bundled_digits_and_writes_a_model_info_can_read()
    {
        string dir = Directory.CreateTempSubdirectory("tinytrain-pretrain").FullName;
        string model = Path.Combine(dir, "digits.onnx");
        var r = CliRunner.Run("pretrain", "--model", "cnn-s", "--data", "mnist-mini", "--epochs", "2", "--seed", "1", "-o", model, "--json");
        Assert.Equal(0, r.ExitCode);
        using JsonDocument doc = JsonDocument.Parse(r.Stdout);
        double accuracy = doc.RootElement.GetProperty("test_accuracy").GetDouble();
        // 3,000 digits, 2 epochs: a model that learns is far above chance (0.1).
        Assert.True(accuracy > 0.85, $"test accuracy {accuracy}");
        var info = CliRunner.Run("info", "--model", model, "--json");
        Assert.Equal(0, info.ExitCode);
        using JsonDocument infoDoc = JsonDocument.Parse(info.Stdout);
        Assert.Equal(10, infoDoc.RootElement.GetProperty("classes").GetInt32());
    }

    [Fact]
    public void Data_list_shows_the_bundled_sets()
    {
        var r = CliRunner.Run("data", "list", "--json");
        Assert.Equal(0, r.ExitCode);
        using JsonDocument doc = JsonDocument.Parse(r.Stdout);
        var names = doc.RootElement.GetProperty("datasets").EnumerateArray().Select(d => d.GetProperty("name").GetString()).ToList();
        Assert.Contains("mnist-mini", names);
        Assert.Contains("fashion-mnist-mini", names);
        Assert.Contains("fashion-mnist", names);
    }

    [Fact]
    public void Demo_runs_the_whole_path_on_bundled_data()
    {
        string dir = Directory.CreateTempSubdirectory("tinytrain-demo").FullName;
        var r = CliRunner.Run("demo", "--out", dir);
        Assert.True(r.ExitCode == 0, r.Stderr + r.Stdout);
        Assert.Contains("test accuracy after float training", r.Stdout);
        Assert.True(File.Exists(Path.Combine(dir, "cnn-s.onnx")));
        // Step 9: the tta:norm plan, with no labels, beats the source plan on the over-exposed stream.
        var tta = System.Text.RegularExpressions.Regex.Match(r.Stdout, @"over-exposed camera, no labels\W+([\d.]+) % -> ([\d.]+) %");
        Assert.True(tta.Success, r.Stdout);
        double source = double.Parse(tta.Groups[1].Value, CultureInfo.InvariantCulture), adapted = double.Parse(tta.Groups[2].Value, CultureInfo.InvariantCulture);
        Assert.True(adapted > source + 20, $"source {source} %, adapted {adapted} %");
        // Step 10: two digit tasks as adapter packs on the clothes model, routed without a task label.
        var adapters = System.Text.RegularExpressions.Regex.Match(r.Stdout,
            @"routed\s+to\s+the\s+right\s+pack\s+([\d.]+)\s+%,\s+accuracy\s+([\d.]+)\s+%\s+\(task\s+given:\s+([\d.]+)\s+%\);\s+base\s+model\s+unchanged\s+\(plan\s+CRC-32\s+the\s+same\):\s+yes");
        Assert.True(adapters.Success, r.Stdout);
        double routing = double.Parse(adapters.Groups[1].Value, CultureInfo.InvariantCulture);
        double routed = double.Parse(adapters.Groups[2].Value, CultureInfo.InvariantCulture);
        double given = double.Parse(adapters.Groups[3].Value, CultureInfo.InvariantCulture);
        Assert.True(routing > 80 && given > 75 && routed > 70 && routed <= given, $"routing {routing} %, routed {routed} %, task given {given} %");
        Assert.Equal(2, Directory.GetFiles(Path.Combine(dir, "device", "adapters"), "*.ttpack").Length);
        // Step 11: a fleet over an embedded MQTT broker with a hostile device: the shared adapter beats no adaptation,
        // and every accepted update was aggregated exactly once.
        var rounds = System.Text.RegularExpressions.Regex.Matches(r.Stdout, @"round\s+\d:\s+fleet\s+([\d.]+)\s+%,\s+local-only\s+([\d.]+)\s+%,\s+no\s+adaptation\s+([\d.]+)\s+%");
        Assert.Equal(3, rounds.Count);
        double fleet = double.Parse(rounds[^1].Groups[1].Value, CultureInfo.InvariantCulture);
        double none = double.Parse(rounds[^1].Groups[3].Value, CultureInfo.InvariantCulture);
        Assert.True(fleet > none + 3, $"fleet {fleet} %, no adaptation {none} %");
        Assert.Matches(@"every\s+accepted\s+update\s+aggregated\s+exactly\s+once:\s+yes", r.Stdout);
    }
}
