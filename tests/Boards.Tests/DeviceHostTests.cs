namespace TinyTrain.Boards.Tests;

using TinyTrain.Boards.RaspberryPi;
using TinyTrain.Boards.RaspberryPi.Learning;

public class DeviceHostTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = Program.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public void RotationShift_LabelsAndGravityAlignment_RecoverAccuracy()
    {
        using var temp = new TempDirectory();
        string plan = ImuPlan.Write(temp.Path);
        string[] common = ["--simulate", "--plan", plan, "--stream", "clean*40,rotation@1*160", "--seed", "3"];

        var frozen = Run([.. common, "--adapt", "none", "--state", Path.Combine(temp.Path, "a.bin")]);
        var adapted = Run([.. common, "--adapt", "both", "--state", Path.Combine(temp.Path, "b.bin"), "--require-recovery", "0.8"]);

        Assert.Equal(0, frozen.Code);
        Assert.Equal(0, adapted.Code);
        double before = LastQuarter(frozen.Out), after = LastQuarter(adapted.Out);
        Assert.True(before < 0.75, $"without adaptation the rotated sensor should hurt: last quarter {before:P1}\n{frozen.Out}");
        Assert.True(after >= 0.8 && after > before + 0.15, $"adaptation should recover: {before:P1} -> {after:P1}\n{adapted.Out}");
        Assert.Contains("adapted: accuracy over the last quarter", adapted.Out);
    }

    [Fact]
    public void TempoShift_RuntimeTestTimeAdaptation_RecoversWithoutLabels_AndPersistsWhatItLearned()
    {
        using var temp = new TempDirectory();
        string tta = ImuPlan.WriteTta(temp.Path), state = Path.Combine(temp.Path, "t.bin");
        string[] common = ["--simulate", "--plan", tta, "--stream", "clean*40,tempo@1*160", "--seed", "3"];

        var frozen = Run([.. common, "--adapt", "none", "--state", Path.Combine(temp.Path, "a.bin")]);
        // No --adapt: a tta: plan adapts without labels (and aligns gravity), never from the button.
        var adapted = Run([.. common, "--state", state]);

        Assert.True(frozen.Code == 0, frozen.Out + frozen.Err);
        Assert.True(adapted.Code == 0, adapted.Out + adapted.Err);
        Assert.Contains("adapt: tta+gravity", adapted.Out);
        Assert.Contains("0 label updates, 200 label-free adaptation steps", adapted.Out);
        // Over the 160 shifted windows (not just the last quarter: fewer windows, coarser steps).
        double before = ShiftedSegment(frozen.Out), after = ShiftedSegment(adapted.Out);
        Assert.True(after >= before + 0.08, $"runtime TTA should recover the tempo shift without labels: {before:P1} -> {after:P1}\n{frozen.Out}\n{adapted.Out}");
        Assert.True(LastQuarter(adapted.Out) >= LastQuarter(frozen.Out), adapted.Out);

        // What it adapted (the running statistics, kept with the writable parameters) is on disk and resumed at the next start.
        HostState saved = HostState.FromBytes(File.ReadAllBytes(state));
        var source = new TinyTrain.Runtime.Execution.Executor(ImuPlan.LoadTta());
        Assert.NotEqual(source.Params, saved.Params);
        var again = Run(["--simulate", "--plan", tta, "--stream", "tempo@1*4", "--seed", "4", "--state", state]);
        Assert.Contains($"state: resumed from {state} (200 windows, 0 updates)", again.Out);
    }

    [Fact]
    public void AdaptModes_ThatThePlanCannotDo_AreRefusedWithOneLine()
    {
        using var temp = new TempDirectory();
        string bias = ImuPlan.Write(temp.Path), tta = ImuPlan.WriteTta(temp.Path);

        var labelsOnTta = Run("--simulate", "--plan", tta, "--stream", "clean*4", "--adapt", "labels", "--state", Path.Combine(temp.Path, "a.bin"));
        Assert.Equal(1, labelsOnTta.Code);
        Assert.Equal($"error: {tta}: the plan adapts without labels (compiled with --update tta:...); run with --adapt tta or tta+gravity, "
            + "or compile with --update bias:2 to learn from the button\n", labelsOnTta.Err.ReplaceLineEndings("\n"));

        var ttaOnBias = Run("--simulate", "--plan", bias, "--stream", "clean*4", "--adapt", "tta", "--state", Path.Combine(temp.Path, "b.bin"));
        Assert.Equal(1, ttaOnBias.Code);
        Assert.Equal($"error: {bias}: the plan has no test-time adaptation ops; compile it with --update tta:norm (or tta:tent) for --adapt tta\n",
            ttaOnBias.Err.ReplaceLineEndings("\n"));

        var fleet = Run("--simulate", "--plan", tta, "--stream", "clean*4", "--state", Path.Combine(temp.Path, "c.bin"), "--fleet", "embedded",
            "--aggregator-key", Path.Combine(temp.Path, "none.pem"));
        Assert.Equal(1, fleet.Code);
        Assert.Equal($"error: {tta} adapts without labels (tta:); its statistics stay on this device and are not shared: run it without --fleet, "
            + "or join the fleet with a plan compiled --update bias:2\n", fleet.Err.ReplaceLineEndings("\n"));
        Assert.False(File.Exists(Path.Combine(temp.Path, "c.bin")));

        var unknown = Run("--simulate", "--plan", bias, "--adapt", "tent");
        Assert.Equal(2, unknown.Code);
        Assert.StartsWith("error: --adapt tent: use both, labels, gravity, tta, tta+gravity or none", unknown.Err);
        Assert.False(File.Exists(Path.Combine(temp.Path, "a.bin")) || File.Exists(Path.Combine(temp.Path, "b.bin")), "a refused run writes no state");
    }

    [Fact]
    public void RequireRecovery_FailsWithExitCode3_WhenTheDeviceDoesNotAdapt()
    {
        using var temp = new TempDirectory();
        var r = Run("--simulate", "--plan", ImuPlan.Write(temp.Path), "--stream", "clean*8,rotation@1*40", "--adapt", "none",
            "--state", Path.Combine(temp.Path, "s.bin"), "--require-recovery", "0.95");
        Assert.Equal(3, r.Code);
        Assert.Contains("the device did not adapt", r.Out);
    }

    [Fact]
    public void I2cErrorMidStream_IsReported_AdaptationSkipped_AndTheHostKeepsRunning()
    {
        using var temp = new TempDirectory();
        // Ticks 640..767 are windows 10 and 11 (64 samples each).
        var r = Run("--simulate", "--plan", ImuPlan.Write(temp.Path), "--stream", "clean*30", "--label-every", "1",
            "--state", Path.Combine(temp.Path, "s.bin"), "--i2c-error-at", "640:128");

        Assert.Equal(0, r.Code);
        Assert.Contains("window 10: sensor error (I2C transfer to 0x68 on bus 1 failed: no acknowledge (simulated fault)); prediction from held readings, no adaptation on this window; still running", r.Out);
        Assert.Contains("window 11: sensor error", r.Out);
        Assert.DoesNotContain("window 12: sensor error", r.Out);
        Assert.Contains("30 windows in", r.Out);
        Assert.Contains("sensor errors 2, stuck 0, adaptation skipped on 2", r.Out);
        // Every window is labelled during the next one: 29 labels, of which the two failed windows are not learned from.
        Assert.Contains("27 label updates", r.Out);
    }

    [Fact]
    public void NoSensorAtStart_IsRefusedWithOneLine_AndNothingIsWritten()
    {
        using var temp = new TempDirectory();
        string state = Path.Combine(temp.Path, "s.bin");
        var r = Run("--simulate", "--plan", ImuPlan.Write(temp.Path), "--stream", "clean*5", "--state", state, "--i2c-error-at", "0:100000");

        Assert.Equal(1, r.Code);
        Assert.Equal("error: no MPU-6050 answers on I2C bus 1 at 0x68 (I2C transfer to 0x68 on bus 1 failed: no acknowledge (simulated fault)): "
            + "check the wiring and that I2C is enabled (raspi-config); nothing was learned or written\n", r.Err.ReplaceLineEndings("\n"));
        Assert.False(File.Exists(state));
    }

    [Fact]
    public void StuckSensor_IsReported_AndNotLearnedFrom()
    {
        using var temp = new TempDirectory();
        var r = Run("--simulate", "--plan", ImuPlan.Write(temp.Path), "--stream", "clean*20", "--label-every", "1",
            "--state", Path.Combine(temp.Path, "s.bin"), "--stuck-at", "320:64");

        Assert.Equal(0, r.Code);
        Assert.Contains("window 5: sensor stuck (the same reading 8 times in a row); no adaptation on this window; still running", r.Out);
        Assert.Contains("stuck 1, adaptation skipped on 1", r.Out);
        Assert.Contains("18 label updates", r.Out);
    }

    [Fact]
    public void CorruptStateFile_FallsBackToTheLastGoodState_AndSaysSo()
    {
        using var temp = new TempDirectory();
        string plan = ImuPlan.Write(temp.Path), state = Path.Combine(temp.Path, "state.bin");
        string[] run = ["--simulate", "--plan", plan, "--stream", "rotation@1*30", "--state", state, "--save-every", "5"];

        var first = Run(run);
        Assert.Equal(0, first.Code);
        Assert.Contains($"state: none at {state}; starting from the plan's parameters", first.Out);
        Assert.True(File.Exists(state + ".bak"), "saving keeps the previous good state beside the new one");
        HostState good = HostState.FromBytes(File.ReadAllBytes(state + ".bak"));

        byte[] bytes = File.ReadAllBytes(state);
        bytes[bytes.Length / 2] ^= 0x5A;
        File.WriteAllBytes(state, bytes);
        var second = Run(run);

        Assert.Equal(0, second.Code);
        Assert.Contains($"state: {state} is unusable (checksum mismatch (the file is damaged or was cut short)); fell back to the last good state {state}.bak ({good.Windows} windows, {good.Updates} updates)", second.Out);

        // Both damaged: the plan's own parameters, said in one line.
        File.WriteAllBytes(state, [1, 2, 3]);
        File.WriteAllBytes(state + ".bak", [4, 5, 6]);
        var third = Run(run);
        Assert.Equal(0, third.Code);
        Assert.Contains($"state: {state} is unusable (3 bytes is too short for a state file) and so is {state}.bak (3 bytes is too short for a state file); starting from the plan's parameters", third.Out);
    }

    [Fact]
    public void State_PersistsWhatWasLearned_AcrossRestarts()
    {
        using var temp = new TempDirectory();
        string plan = ImuPlan.Write(temp.Path), state = Path.Combine(temp.Path, "state.bin");
        var first = Run("--simulate", "--plan", plan, "--stream", "rotation@1*40", "--state", state);
        Assert.Equal(0, first.Code);
        HostState saved = HostState.FromBytes(File.ReadAllBytes(state));
        Assert.Equal(40, saved.Windows);
        Assert.Equal(19, saved.Updates); // windows 1, 3, ..., 37 are labelled during the next; 39 would be during window 40
        byte[] initial = new TinyTrain.Runtime.Execution.Executor(ImuPlan.Load()).Params;
        Assert.NotEqual(initial, saved.Params); // the 19 updates are in the file

        var second = Run("--simulate", "--plan", plan, "--stream", "rotation@1*4", "--state", state);
        Assert.Contains($"state: resumed from {state} (40 windows, 19 updates)", second.Out);
    }

    [Theory]
    [InlineData("--stream", "clean*0", "--stream segment 'clean*0': write <clean|rotation|gain|tempo|vibration>[@severity]*<windows>")]
    [InlineData("--stream", "tilt*5", "--stream segment 'tilt*5': unknown shift 'tilt'; known: clean, rotation, gain, tempo, vibration")]
    [InlineData("--adapt", "maybe", "--adapt maybe: use both, labels, gravity, tta, tta+gravity or none")]
    [InlineData("--i2c-error-at", "5", "--i2c-error-at 5: write TICK:COUNT (sample ticks at 50 Hz, e.g. 3200:128)")]
    public void BadOptions_AreRefusedWithOneLine(string option, string value, string message)
    {
        var r = Run("--simulate", "--plan", "x.ttplan", option, value);
        Assert.Equal(2, r.Code);
        Assert.StartsWith($"error: {message}\n", r.Err.ReplaceLineEndings("\n"));
    }

    [Fact]
    public void MissingPlan_IsRefused()
    {
        var r = Run("--simulate", "--plan", "/nonexistent/imu.ttplan");
        Assert.Equal(1, r.Code);
        Assert.Equal("error: plan /nonexistent/imu.ttplan does not exist; make one with `tinytrain compile <model.onnx> --update bias:2 --calib imu-gestures -o /nonexistent/imu.ttplan`\n",
            r.Err.ReplaceLineEndings("\n"));
    }

    [Fact]
    public void APlanThatDoesNotFitTheBoard_IsRefusedWithTheBreakdown()
    {
        using var temp = new TempDirectory();
        // mbv2-w0.35 at 128x128 needs a 240 KB arena: more than an RP2040 has once its reserve is taken.
        var graph = TinyTrain.Compiler.Zoo.ModelZoo.Build("mbv2-w0.35", 128, 6, seed: 0);
        var compiled = TinyTrain.Compiler.Compilation.PlanCompiler.Compile(graph,
            TinyTrain.Compiler.Quantization.CalibrationSet.Random(graph.InputShape, 2, 0), new TinyTrain.Compiler.Compilation.CompileOptions { Update = "none" });
        string plan = Path.Combine(temp.Path, "big.ttplan");
        File.WriteAllBytes(plan, compiled.Image);

        var r = Run("--simulate", "--plan", plan, "--board", "rp2040", "--state", Path.Combine(temp.Path, "s.bin"));

        Assert.Equal(1, r.Code);
        Assert.StartsWith($"error: {plan} does not fit rp2040: plan needs ", r.Err);
        Assert.Contains("SRAM (arena 240 KB", r.Err);
        Assert.Contains("recompile with `tinytrain compile ... --board rp2040`", r.Err);
        Assert.False(File.Exists(Path.Combine(temp.Path, "s.bin")), "nothing is run or written");
    }

    [Fact]
    public void SelfTest_FastKernelsMatchTheReference_OnThisMachine()
    {
        using var temp = new TempDirectory();
        var r = Run("--selftest", "--plan", ImuPlan.Write(temp.Path));
        Assert.Equal(0, r.Code);
        Assert.Contains("fast vs reference: identical", r.Out);
        Assert.Contains("logits, arena and parameters identical", r.Out);
        Assert.Contains("selftest passed", r.Out);
    }

    /// <summary>Accuracy over the whole second (shifted) segment.</summary>
    private static double ShiftedSegment(string output)
    {
        string line = output.Split('\n').Last(l => l.StartsWith("segment 2", StringComparison.Ordinal));
        int at = line.IndexOf("accuracy ", StringComparison.Ordinal) + "accuracy ".Length;
        return double.Parse(line[at..line.IndexOf(" %", at, StringComparison.Ordinal)], System.Globalization.CultureInfo.InvariantCulture) / 100;
    }

    private static double LastQuarter(string output)
    {
        string line = output.Split('\n').Last(l => l.StartsWith("segment 2", StringComparison.Ordinal));
        int at = line.IndexOf("last quarter ", StringComparison.Ordinal) + "last quarter ".Length;
        return double.Parse(line[at..line.IndexOf(" %", at, StringComparison.Ordinal)], System.Globalization.CultureInfo.InvariantCulture) / 100;
    }
}
