using System.Text.Json;

namespace TinyTrain.Cli.Tests;

/// <summary>compile / eval as a user runs them, and every way a plan file can be bad.</summary>
public class PlanCommandTests : IClassFixture<PlanCommandTests.CompiledPlan>
{
    public sealed class CompiledPlan
    {
        public CompiledPlan()
        {
            Directory = System.IO.Directory.CreateTempSubdirectory("tinytrain-plan").FullName;
            Onnx = Path.Combine(Directory, "digits.onnx");
            Plan = Path.Combine(Directory, "digits.ttplan");
            var train = CliRunner.Run("pretrain", "--model", "cnn-s", "--data", "mnist-mini", "--epochs", "2", "-o", Onnx);
            Assert.True(train.ExitCode == 0, train.Stderr);
            Compile = CliRunner.Run("compile", Onnx, "--update", "none", "--calib", "mnist-mini", "--board", "stm32f746-disco", "-o", Plan, "--json");
        }

        public string Directory { get; }
        public string Onnx { get; }
        public string Plan { get; }
        public CliRunner.Result Compile { get; }
    }

    private readonly CompiledPlan _plan;

    public PlanCommandTests(CompiledPlan plan) => _plan = plan;

    [Fact]
    public void Compile_reports_flash_sram_and_every_op()
    {
        Assert.True(_plan.Compile.ExitCode == 0, _plan.Compile.Stderr);
        using JsonDocument doc = JsonDocument.Parse(_plan.Compile.Stdout);
        JsonElement root = doc.RootElement;
        Assert.Equal(new FileInfo(_plan.Plan).Length, root.GetProperty("flash_bytes").GetInt64());
        long arena = root.GetProperty("sram").GetProperty("arena_bytes").GetInt64();
        // --patch auto (the default) runs cnn-s's three convs as one patch stage: 4 model ops and the stage op.
        JsonElement patch = root.GetProperty("patch");
        Assert.InRange(arena, 5_000, patch.GetProperty("unpatched_arena_bytes").GetInt64() - 1);
        Assert.InRange(patch.GetProperty("unpatched_arena_bytes").GetInt64(), 10_000, 30_000);
        Assert.True(patch.GetProperty("extra_macs").GetInt64() > 0);
        Assert.True(root.GetProperty("sram").GetProperty("total_bytes").GetInt64() >= arena);
        Assert.Equal(5, root.GetProperty("ops").GetArrayLength());
        Assert.True(root.GetProperty("board").GetProperty("fits").GetBoolean());
    }

    [Fact]
    public void Eval_runs_the_int8_plan_on_the_test_split()
    {
        var r = CliRunner.Run("eval", _plan.Plan, "--data", "mnist-mini", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using JsonDocument doc = JsonDocument.Parse(r.Stdout);
        Assert.Equal(1000, doc.RootElement.GetProperty("samples").GetInt32());
        Assert.True(doc.RootElement.GetProperty("accuracy").GetDouble() > 0.85);
    }

    [Fact]
    public void A_plan_that_does_not_fit_the_board_is_refused_with_a_breakdown()
    {
        string line = CliRunner.AssertOneLineError(CliRunner.Run("compile", "mcunet-5fps", "--resolution", "288", "--board", "nrf52840", "-o", Path.Combine(_plan.Directory, "big.ttplan")));
        Assert.Contains("nrf52840", line);
        Assert.Contains("arena", line);
        Assert.Contains("over by", line);
    }

    [Fact]
    public void Unknown_board_lists_the_known_ones()
    {
        string line = CliRunner.AssertOneLineError(CliRunner.Run("compile", _plan.Onnx, "--board", "arduino-uno", "--calib", "mnist-mini"));
        Assert.Contains("stm32f746-disco", line);
    }

    [Fact]
    public void Sparse_auto_chooses_a_scheme_within_the_budget_and_reports_it()
    {
        string plan = Path.Combine(_plan.Directory, "auto.ttplan");
        var r = CliRunner.Run("compile", _plan.Onnx, "--update", "sparse:auto", "--budget", "64KB", "--calib", "mnist-mini", "-o", plan, "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        JsonElement auto = doc.RootElement.GetProperty("auto");
        long sram = doc.RootElement.GetProperty("sram").GetProperty("total_bytes").GetInt64();
        Assert.Equal(65536, auto.GetProperty("budget_bytes").GetInt64());
        // The search runs without patch stages further in; the plan gets them, so it needs at most what was searched.
        Assert.InRange(sram, 1, auto.GetProperty("sram_bytes").GetInt64());
        Assert.InRange(sram, auto.GetProperty("smallest_bytes").GetInt64(), 65536);
        Assert.True(auto.GetProperty("scheme").GetProperty("n_bias_update").GetInt32() >= 0);
        Assert.True(File.Exists(plan));
    }

    [Theory]
    [InlineData(new[] { "--update", "none", "--patch", "2by2" }, "--patch must be auto, off or RxC")]
    [InlineData(new[] { "--update", "none", "--inplace-dw", "yes" }, "--inplace-dw must be on or off, got 'yes'")]
    [InlineData(new[] { "--update", "none", "--channel-backward", "1" }, "--channel-backward must be on or off, got '1'")]
    [InlineData(new[] { "--update", "none", "--inplace-pw", "no" }, "--inplace-pw must be on or off, got 'no'")]
    [InlineData(new[] { "--update", "none", "--trained-slices", "maybe" }, "--trained-slices must be on or off, got 'maybe'")]
    [InlineData(new[] { "--update", "none", "--stream-input", "yes" }, "--stream-input must be on or off, got 'yes'")]
    [InlineData(new[] { "--update", "none", "--patch-mid", "2" }, "--patch-mid must be on or off, got '2'")]
    [InlineData(new[] { "--update", "none", "--stage-over-input", "y" }, "--stage-over-input must be on or off, got 'y'")]
    [InlineData(new[] { "--update", "none", "--patch-recompute", "lots" }, "--patch-recompute must be a share of the step's MACs (e.g. 0.15) or none, got 'lots'")]
    [InlineData(new[] { "--update", "none", "--patch-recompute", "-1" }, "--patch-recompute must be a share")]
    [InlineData(new[] { "--update", "none", "--stream-input", "on", "--patch", "off" }, "--stream-input on needs a patch stage")]
    [InlineData(new[] { "--update", "full", "--stream-input", "on" }, "use --stream-input off")]
    [InlineData(new[] { "--update", "full", "--patch", "2x2" }, "--patch 2x2: nothing to run patch by patch")]
    [InlineData(new[] { "--update", "sparse:auto" }, "needs a memory budget")]
    [InlineData(new[] { "--update", "sparse:auto", "--budget", "lots" }, "not a byte count")]
    [InlineData(new[] { "--update", "bias:1", "--budget", "64KB" }, "--budget applies only to --update sparse:auto")]
    [InlineData(new[] { "--update", "sparse:auto", "--budget", "1KB" }, "the smallest (classifier only) needs")]
    public void Sparse_auto_refuses_a_missing_bad_or_impossible_budget(string[] options, string expected)
    {
        string plan = Path.Combine(_plan.Directory, $"refused-{Guid.NewGuid():N}.ttplan");
        string line = CliRunner.AssertOneLineError(CliRunner.Run([("compile"), _plan.Onnx, "--calib", "mnist-mini", "-o", plan, .. options]));
        Assert.Contains(expected, line);
        Assert.False(File.Exists(plan));
    }

    [Theory]
    [InlineData("flip", "checksum")]
    [InlineData("truncate", "truncated")]
    [InlineData("foreign", "not a TinyTrain plan")]
    [InlineData("newer", "newer")]
    [InlineData("forged", "arena")]
    public void Bad_plan_files_are_refused_saying_which_problem(string damage, string expected)
    {
        byte[] bytes = File.ReadAllBytes(_plan.Plan);
        switch (damage)
        {
            case "flip": bytes[bytes.Length / 2] ^= 0x40; break;
            case "truncate": bytes = bytes[..(bytes.Length - 100)]; break;
            case "foreign": bytes = File.ReadAllBytes(_plan.Onnx); break;
            case "newer":
                bytes[8] = 2;    // format major version 2
                Reseal(bytes);
                break;
            case "forged":
                // A tensor moved outside the arena, with a checksum recomputed to match: structure checks catch it.
                int tensors = FindSection(bytes, 2);
                BitConverter.GetBytes(int.MaxValue - 16).CopyTo(bytes, tensors + 16);
                Reseal(bytes);
                break;
        }
        string path = Path.Combine(_plan.Directory, $"{damage}.ttplan");
        File.WriteAllBytes(path, bytes);
        string line = CliRunner.AssertOneLineError(CliRunner.Run("eval", path, "--data", "mnist-mini"));
        Assert.Contains($"{damage}.ttplan", line);
        Assert.Contains(expected, line, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void Export_writes_an_onnx_qdq_model_of_the_plan()
    {
        string onnx = Path.Combine(_plan.Directory, "digits.qdq.onnx");
        var r = CliRunner.Run("export", _plan.Plan, "--onnx", onnx);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.True(new FileInfo(onnx).Length > 40_000);
        string line = CliRunner.AssertOneLineError(CliRunner.Run("export", _plan.Plan));
        Assert.Contains("--onnx", line);
    }

    [Fact]
    public void Train_learns_on_the_device_and_reports_memory()
    {
        string plan = Path.Combine(_plan.Directory, "digits.bias1.ttplan");
        var compile = CliRunner.Run("compile", _plan.Onnx, "--update", "bias:1", "--calib", "mnist-mini", "-o", plan);
        Assert.True(compile.ExitCode == 0, compile.Stderr);
        var r = CliRunner.Run("train", plan, "--data", "mnist-mini", "--steps", "200", "--lr", "0.005", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using JsonDocument doc = JsonDocument.Parse(r.Stdout);
        JsonElement root = doc.RootElement;
        Assert.True(root.GetProperty("accuracy_after").GetDouble() >= root.GetProperty("accuracy_before").GetDouble() - 0.02);
        Assert.Equal(root.GetProperty("arena_bytes").GetInt64(), root.GetProperty("arena_high_water_bytes").GetInt64());
        string batch = CliRunner.AssertOneLineError(CliRunner.Run("train", plan, "--data", "mnist-mini", "--batch", "8"));
        Assert.Contains("batch 1", batch);
        string inference = CliRunner.AssertOneLineError(CliRunner.Run("train", _plan.Plan, "--data", "mnist-mini", "--steps", "5"));
        Assert.Contains("no trainable set", inference);
    }

    [Fact]
    public void Emulate_reports_segments_memory_and_a_plot()
    {
        string plot = Path.Combine(_plan.Directory, "stream.png");
        var r = CliRunner.Run("emulate", _plan.Plan, "--board", "stm32f746-disco", "--stream", "mnist-mini:clean*150, mnist-mini-c:shot-noise*150", "--json", "--plot", plot);
        Assert.True(r.ExitCode == 0, r.Stderr);
        using JsonDocument doc = JsonDocument.Parse(r.Stdout);
        JsonElement root = doc.RootElement;
        Assert.Equal("stm32f746-disco", root.GetProperty("board").GetString());
        Assert.Equal(2, root.GetProperty("segments").GetArrayLength());
        Assert.Equal(150, root.GetProperty("segments")[1].GetProperty("samples").GetInt32());
        Assert.True(root.GetProperty("sram_high_water_bytes").GetInt64() > 0);
        Assert.True(new FileInfo(plot).Length > 10_000);
    }

    [Fact]
    public void A_plan_that_streams_its_input_emulates_as_the_same_plan_without_and_says_its_frame_is_outside_SRAM()
    {
        var results = new List<string>();
        foreach (string stream in new[] { "off", "on" })
        {
            string plan = Path.Combine(_plan.Directory, $"stream-{stream}.ttplan");
            var c = CliRunner.Run("compile", _plan.Onnx, "--calib", "mnist-mini", "--update", "bias:1", "--stream-input", stream, "-o", plan, "--json");
            Assert.True(c.ExitCode == 0, c.Stderr);
            using (JsonDocument compiled = JsonDocument.Parse(c.Stdout))
                Assert.Equal(stream == "on", compiled.RootElement.GetProperty("patch").GetProperty("input_streamed").GetBoolean());
            var r = CliRunner.Run("emulate", plan, "--board", "stm32f746-disco", "--stream", "mnist-mini:clean*60, mnist-mini-c:fog*60", "--json");
            Assert.True(r.ExitCode == 0, r.Stderr);
            Assert.Equal(stream == "on", r.Stderr.Contains("streams its input (--stream-input on)"));
            using JsonDocument doc = JsonDocument.Parse(r.Stdout);
            results.Add(doc.RootElement.GetProperty("segments").ToString());
        }
        Assert.Equal(results[0], results[1]);   // the same predictions and learning, segment by segment
    }

    [Fact]
    public void Emulate_scores_each_task_of_a_class_incremental_stream_on_held_out_images()
    {
        var r = CliRunner.Run("emulate", _plan.Plan, "--board", "stm32f746-disco", "--stream", "mnist-mini[0-4]:clean*100, mnist-mini[5-9]:clean*100",
            "--window", "50", "--task-holdout", "40", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using JsonDocument doc = JsonDocument.Parse(r.Stdout);
        JsonElement tasks = doc.RootElement.GetProperty("tasks");
        Assert.Equal(["mnist-mini[0-4]", "mnist-mini[5-9]"], tasks.EnumerateArray().Select(t => t.GetProperty("name").GetString()));
        Assert.Equal(100, tasks[1].GetProperty("first_sample").GetInt32());
        Assert.All(tasks.EnumerateArray(), t => Assert.Equal(40, t.GetProperty("held_out").GetInt32()));
        Assert.Equal(JsonValueKind.Null, tasks[1].GetProperty("windowed_accuracy")[0].ValueKind);
        // An inference-only plan learns nothing, so it forgets nothing: each task's held-out accuracy stays where it was.
        Assert.All(tasks.EnumerateArray(), t => Assert.Equal(0.0, t.GetProperty("forgetting").GetDouble()));
        Assert.All(tasks.EnumerateArray(), t => Assert.True(t.GetProperty("final").GetDouble() > 0.7));
    }

    [Theory]
    [InlineData("stm32f746-disco", "mnist-mini[4-0]:clean*10", "class range 4-0 runs backwards; write 0-4")]
    [InlineData("stm32f746-disco", "mnist-mini[0-1]:clean*10, mnist-mini[8-12]:clean*10", "class 10 is not in 'mnist-mini', which has classes 0..9")]
    [InlineData("stm32f746-disco", "mnist-mini[0-1:clean*10", "expected ',' or ']' in the class list")]
    [InlineData("arduino-uno", "mnist-mini:clean*10", "stm32f746-disco")]
    [InlineData("stm32f746-disco", "mnist-mini:clean 10", "column")]
    [InlineData("stm32f746-disco", "mnist-mini-c:fgo*10", "unknown corruption 'fgo'")]
    [InlineData("stm32f746-disco", "emnist:clean*10", "unknown")]
    public void Emulate_refuses_bad_boards_and_streams_saying_where(string board, string stream, string expected)
    {
        string line = CliRunner.AssertOneLineError(CliRunner.Run("emulate", _plan.Plan, "--board", board, "--stream", stream));
        Assert.Contains(expected, line);
    }

    [Fact]
    public void Emulate_refuses_a_negative_task_holdout()
    {
        string line = CliRunner.AssertOneLineError(CliRunner.Run("emulate", _plan.Plan, "--board", "stm32f746-disco", "--stream", "mnist-mini[0-1]:clean*10", "--task-holdout", "-1"));
        Assert.Contains("--task-holdout must be in 0..10000, got -1", line);
    }

    [Fact]
    public void Missing_plan_file_says_how_to_make_one()
    {
        string line = CliRunner.AssertOneLineError(CliRunner.Run("eval", "nothing-here.ttplan", "--data", "mnist-mini"));
        Assert.Contains("tinytrain compile", line);
    }

    private static int FindSection(byte[] plan, uint kind)
    {
        int count = BitConverter.ToInt32(plan, 16);
        for (int i = 0; i < count; i++)
        {
            int entry = 32 + 12 * i;
            if (BitConverter.ToUInt32(plan, entry) == kind) return BitConverter.ToInt32(plan, entry + 4);
        }
        throw new InvalidOperationException($"no section {kind}");
    }

    private static void Reseal(byte[] plan)
    {
        uint crc = System.IO.Hashing.Crc32.HashToUInt32(plan.AsSpan(0, plan.Length - 4));
        BitConverter.GetBytes(crc).CopyTo(plan, plan.Length - 4);
    }
}
