namespace TinyTrain.Boards.RaspberryPi;

using System.Device.Gpio;
using System.Device.I2c;
using System.Globalization;
using TinyTrain.Boards.RaspberryPi.Gpio;
using TinyTrain.Boards.RaspberryPi.Sensors;
using TinyTrain.Boards.RaspberryPi.Simulation;
using TinyTrain.Compiler.Boards;
using TinyTrain.Compiler.Data.Imu;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

/// <summary>tinytrain-rpi: the TinyTrain device host for a Raspberry Pi with an MPU-6050, a button and an LED.</summary>
public static class Program
{
    public const string Usage =
        "usage: tinytrain-rpi --plan imu.ttplan [--board raspberry-pi-zero-2w] [--state file] [--adapt both|labels|gravity|tta|tta+gravity|none]\n"
        + "                     [--lr X] [--label-every N] [--windows N] [--i2c-bus 1] [--button-pin 17] [--led-pin 27]\n"
        + "       tinytrain-rpi --simulate --plan imu.ttplan [--stream clean*40,rotation@1*160] [--seed S]\n"
        + "                     [--i2c-error-at TICK:N] [--stuck-at TICK:N] [--require-recovery 0.8] (and the options above)\n"
        + "       fleet (either mode): --fleet mqtt://host:port|embedded[:port] --aggregator-key aggregator.pub.pem [--fleet-id default]\n"
        + "                     [--device-id NAME] [--fleet-every 20]\n"
        + "       tinytrain-rpi --selftest [--plan imu.ttplan]";

    public static int Main(string[] args) => Run(args, Console.Out, Console.Error);

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        HostOptions options;
        bool selfTest;
        try
        {
            options = Parse(args, out selfTest);
        }
        catch (FormatException e)
        {
            stderr.WriteLine($"error: {e.Message}");
            stderr.WriteLine(Usage);
            return 2;
        }

        try
        {
            PlanImage? plan = options.PlanPath.Length == 0 ? null : LoadPlan(options.PlanPath);
            if (selfTest) return SelfTest.Run(plan, stdout);
            if (plan is null) throw new FormatException("--plan is required");

            BoardProfile board = BoardCatalog.Get(options.BoardId);
            if (plan.Board is string compiledFor && !string.Equals(compiledFor, board.Id, StringComparison.OrdinalIgnoreCase))
                stderr.WriteLine($"warning: {options.PlanPath} was compiled for {compiledFor}; checking it against {board.Id}'s limits instead");
            FitReport fit = MemoryFit.Check(new MemoryRequirement(plan.ArenaBytes, plan.SramParamBytes, plan.StateBytes, plan.FlashBytes,
                plan.Image.Length - plan.FlashBytes), board);
            if (!fit.Fits)
            {
                stderr.WriteLine($"error: {options.PlanPath} does not fit {board.Id}: {fit.Summary}; recompile with `tinytrain compile ... --board {board.Id}`");
                return 1;
            }
            stdout.WriteLine($"{plan.ModelName} on {board.Id}: {fit.Summary}");
            // A plan compiled with --update tta:... adapts without labels; one compiled for labels learns from the button.
            bool labelFree = new TinyTrain.Runtime.Execution.Executor(plan).LearnsWithoutLabels;
            if (!options.AdaptGiven && labelFree)
                (options.LearnFromLabels, options.AdaptWithoutLabels) = (false, true);
            if (labelFree && options.FleetUrl is not null)
                throw new TinyTrainException($"{options.PlanPath} adapts without labels (tta:); its statistics stay on this device and are not shared: "
                    + "run it without --fleet, or join the fleet with a plan compiled --update bias:2");
            return options.Simulate ? Simulate(options, plan, stdout) : RunOnBoard(options, plan, stdout);
        }
        catch (FormatException e)
        {
            stderr.WriteLine($"error: {e.Message}");
            stderr.WriteLine(Usage);
            return 2;
        }
        catch (TinyTrainException e)
        {
            stderr.WriteLine($"error: {e.Message}");
            return 1;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            stderr.WriteLine($"error: cannot open the board's I2C bus {options.I2cBus} or GPIO ({e.Message}): run on a Raspberry Pi with I2C enabled, or use --simulate");
            return 1;
        }
    }

    /// <summary>The same loop against the simulated MPU-6050 and GPIO driver, fed by the gesture generator.</summary>
    public static int Simulate(HostOptions options, PlanImage plan, TextWriter log)
    {
        if (options.Segments.Count == 0)
        {
            options.Segments.Add(new WorldSegment(40, null, 0));
            options.Segments.Add(new WorldSegment(160, ImuShiftKind.Rotation, 1));
        }
        var world = new SimulatedWorld(options.Segments, options.Seed, options.LabelEvery);
        var sensor = new SimulatedMpu6050(world, options.I2cBus)
        {
            ErrorFrom = options.ErrorFrom,
            ErrorTicks = options.ErrorTicks,
            StuckFrom = options.StuckFrom,
            StuckTicks = options.StuckTicks,
        };
        var driver = new SimulatedGpioDriver(world.Button);
        using var gpio = new GpioController(driver);
        log.WriteLine($"simulating: {string.Join(", ", world.Segments.Select(s => $"{s.Name} x {s.Windows}"))} windows; owner labels every {options.LabelEvery}. gesture; "
            + $"adapt: {AdaptName(options)}");
        var host = new DeviceHost(options, plan, sensor, gpio, world.Advance, log, world);
        return host.Run();
    }

    /// <summary>The --adapt mode in words: labels, tta, gravity, joined by '+', or none.</summary>
    public static string AdaptName(HostOptions options)
    {
        var parts = new List<string>();
        if (options.LearnFromLabels) parts.Add("labels");
        if (options.AdaptWithoutLabels) parts.Add("tta");
        if (options.AlignGravity) parts.Add("gravity");
        return parts.Count == 0 ? "none" : string.Join('+', parts);
    }

    private static int RunOnBoard(HostOptions options, PlanImage plan, TextWriter log)
    {
        using I2cDevice i2c = I2cDevice.Create(new I2cConnectionSettings(options.I2cBus, 0x68));
        using var gpio = new GpioController();
        var next = System.Diagnostics.Stopwatch.StartNew();
        long tick = 0;
        // 50 Hz: wait for the next 20 ms mark (a late sample is taken at once; the window is a little shorter).
        void NextSample()
        {
            tick++;
            long due = tick * 20;
            long wait = due - next.ElapsedMilliseconds;
            if (wait > 0) Thread.Sleep((int)wait);
        }
        var host = new DeviceHost(options, plan, i2c, gpio, NextSample, log, world: null);
        return host.Run();
    }

    private static PlanImage LoadPlan(string path)
    {
        if (!File.Exists(path)) throw new TinyTrainException($"plan {path} does not exist; make one with `tinytrain compile <model.onnx> --update bias:2 --calib imu-gestures -o {path}`");
        return PlanImage.Load(File.ReadAllBytes(path), path);
    }

    internal static HostOptions Parse(string[] args, out bool selfTest)
    {
        var o = new HostOptions();
        selfTest = false;
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            string Value() => i + 1 < args.Length ? args[++i] : throw new FormatException($"{a} needs a value");
            switch (a)
            {
                case "--plan": o.PlanPath = Value(); break;
                case "--board": o.BoardId = Value(); break;
                case "--state": o.StatePath = Value(); break;
                case "--simulate": o.Simulate = true; break;
                case "--selftest": selfTest = true; break;
                case "--lr": o.LearningRate = PositiveFloat(a, Value()); break;
                case "--seed": o.Seed = (ulong)NonNegative(a, Value()); break;
                case "--label-every": o.LabelEvery = NonNegative(a, Value()); break;
                case "--windows": o.Windows = NonNegative(a, Value()); break;
                case "--save-every": o.SaveEvery = Math.Max(1, NonNegative(a, Value())); break;
                case "--i2c-bus": o.I2cBus = NonNegative(a, Value()); break;
                case "--button-pin": o.ButtonPin = NonNegative(a, Value()); break;
                case "--led-pin": o.LedPin = NonNegative(a, Value()); break;
                case "--adapt":
                    string mode = Value();
                    (o.LearnFromLabels, o.AlignGravity, o.AdaptWithoutLabels) = mode switch
                    {
                        "both" => (true, true, false),
                        "labels" => (true, false, false),
                        "gravity" => (false, true, false),
                        "tta" => (false, false, true),
                        "tta+gravity" => (false, true, true),
                        "none" => (false, false, false),
                        _ => throw new FormatException($"--adapt {mode}: use both, labels, gravity, tta, tta+gravity or none"),
                    };
                    o.AdaptGiven = true;
                    break;
                case "--fleet":
                    string url = Value();
                    if (!(url == "embedded" || (url.StartsWith("embedded:", StringComparison.Ordinal) && int.TryParse(url["embedded:".Length..], NumberStyles.None, CultureInfo.InvariantCulture, out int port) && port is > 0 and < 65536)
                          || url.StartsWith("mqtt://", StringComparison.Ordinal) || url.StartsWith("mqtts://", StringComparison.Ordinal)))
                        throw new FormatException($"--fleet {url}: use mqtt://host:port, mqtts://host:port or embedded[:port]");
                    o.FleetUrl = url;
                    break;
                case "--fleet-id": o.FleetId = Value(); break;
                case "--device-id": o.DeviceId = Value(); break;
                case "--aggregator-key": o.AggregatorKeyPath = Value(); break;
                case "--fleet-every": o.FleetEvery = Math.Max(1, NonNegative(a, Value())); break;
                case "--stream": ParseStream(Value(), o.Segments); break;
                case "--i2c-error-at": (o.ErrorFrom, o.ErrorTicks) = Fault(a, Value()); break;
                case "--stuck-at": (o.StuckFrom, o.StuckTicks) = Fault(a, Value()); break;
                case "--require-recovery":
                    double r = PositiveFloat(a, Value());
                    if (r > 1) throw new FormatException($"--require-recovery {r}: an accuracy in (0, 1]");
                    o.RequireRecovery = r;
                    break;
                default: throw new FormatException($"unknown option {a}");
            }
        }
        return o;
    }

    // "clean*40,rotation@1*160": each segment a shift (or clean), an optional severity, and a window count.
    private static void ParseStream(string spec, List<WorldSegment> segments)
    {
        foreach (string part in spec.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            string[] countSplit = part.Split('*');
            if (countSplit.Length != 2 || !int.TryParse(countSplit[1], NumberStyles.None, CultureInfo.InvariantCulture, out int windows) || windows < 1)
                throw new FormatException($"--stream segment '{part}': write <clean|{string.Join("|", ImuShift.Names)}>[@severity]*<windows>");
            string[] sevSplit = countSplit[0].Split('@');
            double severity = 1;
            if (sevSplit.Length == 2 && (!double.TryParse(sevSplit[1], NumberStyles.Float, CultureInfo.InvariantCulture, out severity) || severity < 0 || severity > ImuShift.MaxSeverity))
                throw new FormatException($"--stream segment '{part}': severity must be a number in 0..{ImuShift.MaxSeverity}");
            if (sevSplit[0] == "clean")
                segments.Add(new WorldSegment(windows, null, 0));
            else if (ImuShift.TryParse(sevSplit[0], out ImuShiftKind kind))
                segments.Add(new WorldSegment(windows, kind, severity));
            else
                throw new FormatException($"--stream segment '{part}': unknown shift '{sevSplit[0]}'; known: clean, {string.Join(", ", ImuShift.Names)}");
        }
    }

    private static (long From, long Ticks) Fault(string option, string value)
    {
        string[] p = value.Split(':');
        if (p.Length != 2 || !long.TryParse(p[0], out long from) || !long.TryParse(p[1], out long ticks) || from < 0 || ticks < 1)
            throw new FormatException($"{option} {value}: write TICK:COUNT (sample ticks at 50 Hz, e.g. 3200:128)");
        return (from, ticks);
    }

    private static int NonNegative(string option, string value) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int v) ? v : throw new FormatException($"{option} {value}: a whole number >= 0");

    private static float PositiveFloat(string option, string value) =>
        float.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out float v) && v > 0 && float.IsFinite(v)
            ? v : throw new FormatException($"{option} {value}: a positive number");
}
