using System.Text.Json;

namespace TinyTrain.Cli.Tests;

/// <summary>compile --update adapter:KIND, train --state --task, and `adapters list|show|export|import`, as a user runs them.</summary>
public class AdaptersCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tinytrain-adapters").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void An_adapter_is_compiled_learned_stored_exported_and_imported_and_a_foreign_pack_is_refused()
    {
        string clr = Path.Combine(_dir, "clr.ttplan"), bias = Path.Combine(_dir, "bias.ttplan");
        string device = Path.Combine(_dir, "device"), other = Path.Combine(_dir, "other"), pack = Path.Combine(_dir, "shoes.ttpack");
        var compile = CliRunner.Run("compile", "cnn-s", "--update", "adapter:clr", "--calib", "fashion-mnist-mini", "--board", "stm32f746-disco", "-o", clr, "--json");
        Assert.True(compile.ExitCode == 0, compile.Stderr);
        using (JsonDocument doc = JsonDocument.Parse(compile.Stdout))
        {
            JsonElement adapter = doc.RootElement.GetProperty("adapter");
            Assert.Equal("clr", adapter.GetProperty("kind").GetString());
            // 3x3 depthwise + bias after each of cnn-s's three convs (16, 32, 64 channels) and a 10-class head on 64x7x7.
            Assert.Equal(112 * 10 + 10 * 3136 + 10, adapter.GetProperty("params_per_task").GetInt64());
        }
        var train = CliRunner.Run("train", clr, "--data", "fashion-mnist-mini", "--steps", "50", "--state", device, "--task", "shoes", "--json");
        Assert.True(train.ExitCode == 0, train.Stderr);

        var list = CliRunner.Run("adapters", "list", "--state", device, "--json");
        Assert.True(list.ExitCode == 0, list.Stderr);
        using (JsonDocument doc = JsonDocument.Parse(list.Stdout))
        {
            JsonElement first = doc.RootElement.GetProperty("adapters")[0];
            Assert.Equal("shoes", first.GetProperty("task").GetString());
            Assert.Equal(50, first.GetProperty("samples").GetInt64());
        }
        var show = CliRunner.Run("adapters", "show", "shoes", "--state", device);
        Assert.Contains("conv3.clr.weight", show.Stdout);

        Assert.Equal(0, CliRunner.Run("adapters", "export", "shoes", "--state", device, "-o", pack).ExitCode);
        var import = CliRunner.Run("adapters", "import", pack, "--state", other, "--plan", clr);
        Assert.True(import.ExitCode == 0, import.Stderr);
        Assert.Equal(File.ReadAllBytes(Path.Combine(device, "adapters", "shoes.ttpack")), File.ReadAllBytes(Path.Combine(other, "adapters", "shoes.ttpack")));

        // Another kind: refused, nothing stored.
        Assert.Equal(0, CliRunner.Run("compile", "cnn-s", "--update", "adapter:bias", "--calib", "fashion-mnist-mini", "-o", bias).ExitCode);
        string line = CliRunner.AssertOneLineError(CliRunner.Run("adapters", "import", pack, "--state", Path.Combine(_dir, "third"), "--plan", bias));
        Assert.Contains("it is a 'clr' adapter but this plan trains a 'bias' adapter", line);
        Assert.False(File.Exists(Path.Combine(_dir, "third", "adapters", "shoes.ttpack")));

        // Damaged on the way: refused, the stored pack is untouched.
        byte[] bytes = File.ReadAllBytes(pack);
        bytes[bytes.Length / 2] ^= 0x01;
        File.WriteAllBytes(pack, bytes);
        byte[] before = File.ReadAllBytes(Path.Combine(other, "adapters", "shoes.ttpack"));
        Assert.Contains("the pack is damaged", CliRunner.AssertOneLineError(CliRunner.Run("adapters", "import", pack, "--state", other, "--plan", clr)));
        Assert.Equal(before, File.ReadAllBytes(Path.Combine(other, "adapters", "shoes.ttpack")));

        Assert.Contains("not an adapter kind", CliRunner.AssertOneLineError(CliRunner.Run("compile", "cnn-s", "--update", "adapter:dora", "-o", bias)));
        Assert.Contains("no adapter for task 'hats'", CliRunner.AssertOneLineError(CliRunner.Run("adapters", "show", "hats", "--state", device)));
    }
}
