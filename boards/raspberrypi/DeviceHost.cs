namespace TinyTrain.Boards.RaspberryPi;

using System.Device.Gpio;
using System.Device.I2c;
using System.Diagnostics;
using System.Numerics;
using Iot.Device.Imu;
using TinyTrain.Boards.RaspberryPi.Fleet;
using TinyTrain.Boards.RaspberryPi.Learning;
using TinyTrain.Boards.RaspberryPi.Simulation;
using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Data.Imu;
using TinyTrain.Compiler.Ood;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

/// <summary>
/// The device loop: read the MPU-6050 at 50 Hz through the Iot.Device.Imu binding, count button presses, classify
/// each 64-sample window with the int8 runtime, light the LED while the input looks out of distribution, learn from
/// the owner's labels, adapt to the mounting without labels, and keep what was learned on disk.
/// </summary>
public sealed class DeviceHost
{
    // Readings that repeat exactly this many times in a row are a stuck sensor: a live MEMS part always has noise.
    public const int StuckRun = 8;
    private const float StandardGravity = 9.807f; // the binding reports m/s^2

    private readonly HostOptions _options;
    private readonly PlanImage _plan;
    private readonly I2cDevice _i2c;
    private readonly GpioController _gpio;
    private readonly Action _nextSample;
    private readonly TextWriter _log;
    private readonly SimulatedWorld? _world;

    public DeviceHost(HostOptions options, PlanImage plan, I2cDevice i2c, GpioController gpio, Action nextSample, TextWriter log, SimulatedWorld? world)
    {
        _options = options;
        _plan = plan;
        _i2c = i2c;
        _gpio = gpio;
        _nextSample = nextSample;
        _log = log;
        _world = world;
    }

    /// <summary>Windows classified, sensor faults seen, windows skipped for adaptation, LED-on windows (for tests and the summary).</summary>
    public int WindowsRun { get; private set; }
    public int SensorErrors { get; private set; }
    public int StuckWindows { get; private set; }
    public int UntrustedWindows { get; private set; }
    public int OodWindows { get; private set; }
    public GestureLearner? Learner { get; private set; }

    /// <summary>Per segment of the simulated stream: windows and correct predictions.</summary>
    public int[] SegmentWindows { get; private set; } = [];
    public int[] SegmentCorrect { get; private set; } = [];

    /// <summary>Accuracy over the first and the last quarter of each simulated segment.</summary>
    public double[] FirstQuarter { get; private set; } = [];
    public double[] LastQuarter { get; private set; } = [];

    /// <summary>Runs the loop; returns the process exit code.</summary>
    public int Run()
    {
        var clock = Stopwatch.StartNew();
        GravityAlignment? alignment = _options.AlignGravity ? new GravityAlignment(GravityAlignment.ReferenceOf(ImuGestures.Load(Split.Train))) : null;
        var learner = new GestureLearner(_plan, _options.LearningRate, (uint)(_options.Seed * 2654435761UL + 1), 0, alignment, _options.LearnFromLabels, _options.AdaptWithoutLabels);
        Learner = learner;
        byte[] planParams = (byte[])learner.Executor.Params.Clone();
        HostState state = LoadState(learner);

        Mpu6050 imu;
        try
        {
            imu = new Mpu6050(_i2c);
        }
        catch (IOException e)
        {
            throw new TinyTrainException(
                $"no MPU-6050 answers on I2C bus {_i2c.ConnectionSettings.BusId} at 0x{_i2c.ConnectionSettings.DeviceAddress:X2} ({e.Message}): check the wiring and that I2C is enabled (raspi-config); nothing was learned or written");
        }
        using var imuScope = imu;
        imu.AccelerometerRange = AccelerometerRange.Range04G;
        imu.GyroscopeRange = GyroscopeRange.Range0500Dps;
        // The binding divides its scales by (1 + SMPLRT_DIV); keep the divider at 0 and pace the reads here.
        imu.SampleRateDivider = 0;
        using FleetLink? fleet = _options.FleetUrl is null ? null : FleetLink.Open(_options, _plan, planParams, learner.Executor.Params, _log);
        Fleet = fleet;
        _gpio.OpenPin(_options.ButtonPin, PinMode.InputPullUp);
        _gpio.OpenPin(_options.LedPin, PinMode.Output);
        _gpio.Write(_options.LedPin, PinValue.Low);

        int total = _options.Windows > 0 ? _options.Windows : _world?.TotalWindows ?? int.MaxValue;
        int segments = _world?.Segments.Count ?? 1;
        SegmentWindows = new int[segments];
        SegmentCorrect = new int[segments];
        var perWindow = new List<(int Segment, bool Correct)>();
        var window = new float[ImuGestures.Channels * ImuGestures.Window];
        Span<float> last = stackalloc float[6];
        Span<float> reading = stackalloc float[6];
        bool lastButton = false;
        int sinceSave = 0, lastPredicted = -1;

        for (int w = 0; w < total; w++)
        {
            bool failed = false, stuck = false;
            int repeats = 0, presses = 0;
            string? failure = null;
            for (int t = 0; t < ImuGestures.Window; t++)
            {
                try
                {
                    Vector3 a = imu.GetAccelerometer(), g = imu.GetGyroscopeReading();
                    reading[0] = a.X / StandardGravity; reading[1] = a.Y / StandardGravity; reading[2] = a.Z / StandardGravity;
                    reading[3] = g.X; reading[4] = g.Y; reading[5] = g.Z;
                    repeats = t > 0 && reading.SequenceEqual(last) ? repeats + 1 : 0;
                    if (repeats + 1 >= StuckRun) stuck = true;
                    reading.CopyTo(last);
                }
                catch (IOException e)
                {
                    failed = true;
                    failure ??= e.Message;
                    last.CopyTo(reading); // hold the last good reading; the window is not trusted anyway
                }
                for (int c = 0; c < 6; c++) window[c * ImuGestures.Window + t] = reading[c];

                bool pressed = _gpio.Read(_options.ButtonPin) == PinValue.Low;
                if (pressed && !lastButton) presses++;
                lastButton = pressed;
                _nextSample();
            }

            // Presses during this window label the previous one (the learner's last): k + 1 presses = gesture k.
            if (presses > 0)
            {
                if (lastPredicted >= 0)
                {
                    Labelled++;
                    if (lastPredicted == presses - 1) LabelledCorrect++;
                }
                bool learned = learner.Learn(presses - 1);
                if (learned) fleet?.Learned(_options.FleetEvery, learner.Executor.Params, TelemetryOf(learner));
                if (learned && ++sinceSave >= _options.SaveEvery)
                {
                    Save(state, learner, w);
                    sinceSave = 0;
                }
            }

            bool trusted = !failed && !stuck;
            if (failed)
            {
                SensorErrors++;
                _log.WriteLine($"window {w}: sensor error ({failure}); prediction from held readings, no adaptation on this window; still running");
            }
            else if (stuck)
            {
                StuckWindows++;
                _log.WriteLine($"window {w}: sensor stuck (the same reading {StuckRun} times in a row); no adaptation on this window; still running");
            }
            if (!trusted) UntrustedWindows++;

            // A verified global adapter replaces the shared parameters here, between windows; the state is saved with it.
            if (fleet is not null && fleet.Poll(learner.Executor.Params)) Save(state, learner, w);

            int adaptations = learner.Adaptations;
            WindowResult result = learner.Classify(window, trusted);
            if (learner.Adaptations > adaptations && ++sinceSave >= _options.SaveEvery)
            {
                Save(state, learner, w + 1);
                sinceSave = 0;
            }
            lastPredicted = result.Predicted;
            if (result.OutOfDistribution) OodWindows++;
            _gpio.Write(_options.LedPin, result.OutOfDistribution ? PinValue.High : PinValue.Low);
            WindowsRun++;

            if (_world is not null)
            {
                int segment = _world.SegmentOf(w);
                bool correct = result.Predicted == _world.TrueLabel(w);
                SegmentWindows[segment]++;
                if (correct) SegmentCorrect[segment]++;
                perWindow.Add((segment, correct));
            }
        }

        fleet?.Publish(learner.Executor.Params, TelemetryOf(learner));
        Save(state, learner, total);
        Summarize(perWindow, clock.Elapsed.TotalSeconds, learner);
        if (_options.RequireRecovery is double required && _world is not null)
        {
            double final = LastQuarter[^1];
            if (!(final >= required))
            {
                _log.WriteLine($"error: accuracy over the last quarter of '{_world.Segments[^1].Name}' is {final:P1}, below the required {required:P1}: the device did not adapt");
                return 3;
            }
            _log.WriteLine($"adapted: accuracy over the last quarter of '{_world.Segments[^1].Name}' is {final:P1} (required {required:P1})");
        }
        return 0;
    }

    /// <summary>Labelled windows and how many of them the host had predicted right (the fleet's accuracy estimate).</summary>
    public int Labelled { get; private set; }
    public int LabelledCorrect { get; private set; }
    public FleetLink? Fleet { get; private set; }

    private Telemetry TelemetryOf(GestureLearner learner) => new(
        Labelled == 0 ? float.NaN : (float)LabelledCorrect / Labelled,
        WindowsRun == 0 ? 0f : (float)OodWindows / WindowsRun,
        learner.Executor.HighWaterMark(),
        WindowsRun);

    private HostState LoadState(GestureLearner learner)
    {
        uint crc = HostState.CrcOf(_plan);
        string path = _options.StatePath, bak = path + ".bak";
        HostState? state = HostState.TryLoad(path, crc, out string? problem);
        string from = path;
        if (state is null && problem != "missing")
        {
            HostState? backup = HostState.TryLoad(bak, crc, out string? backupProblem);
            if (backup is not null)
            {
                _log.WriteLine($"state: {path} is unusable ({problem}); fell back to the last good state {bak} ({backup.Windows} windows, {backup.Updates} updates)");
                state = backup;
                from = bak;
            }
            else
            {
                _log.WriteLine($"state: {path} is unusable ({problem}) and so is {bak} ({backupProblem}); starting from the plan's parameters");
            }
        }
        if (state is not null && state.Params.Length == learner.Executor.Params.Length && state.State.Length == learner.Executor.State.Length)
        {
            state.Params.CopyTo(learner.Executor.Params, 0);
            state.State.CopyTo(learner.Executor.State, 0);
            learner.OodThreshold = state.OodThreshold;
            learner.Alignment?.Restore(state.GravityMean);
            if (from == path) _log.WriteLine($"state: resumed from {path} ({state.Windows} windows, {state.Updates} updates)");
            return state;
        }
        if (state is not null)
            _log.WriteLine($"state: {from} does not match this plan's parameter sizes; starting from the plan's parameters");
        else if (problem == "missing")
            _log.WriteLine($"state: none at {path}; starting from the plan's parameters");

        // First start: the OOD threshold keeps 95 % of the training distribution's windows (scored by this runtime).
        float[] scores = learner.Scores(ImuGestures.Load(Split.Train), 300);
        learner.OodThreshold = OodCalibration.Threshold(scores).Value;
        learner.Alignment?.Restore(learner.Alignment.Reference);
        return new HostState { PlanCrc = crc };
    }

    private void Save(HostState state, GestureLearner learner, long windows)
    {
        state.Windows = windows;
        state.Updates = learner.Updates;
        state.OodThreshold = learner.OodThreshold;
        state.GravityMean = learner.Alignment is null ? [0, 0, 0] : (float[])learner.Alignment.Mean.Clone();
        state.Params = (byte[])learner.Executor.Params.Clone();
        state.State = (byte[])learner.Executor.State.Clone();
        try
        {
            state.Save(_options.StatePath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log.WriteLine($"state: cannot write {_options.StatePath} ({e.Message}); keeping the last good state, still running");
        }
    }

    private void Summarize(List<(int Segment, bool Correct)> perWindow, double seconds, GestureLearner learner)
    {
        int segments = SegmentWindows.Length;
        FirstQuarter = new double[segments];
        LastQuarter = new double[segments];
        if (_world is not null)
        {
            for (int s = 0; s < segments; s++)
            {
                var list = perWindow.Where(p => p.Segment == s).Select(p => p.Correct).ToList();
                int q = Math.Max(1, list.Count / 4);
                FirstQuarter[s] = list.Count == 0 ? double.NaN : list.Take(q).Average(c => c ? 1.0 : 0.0);
                LastQuarter[s] = list.Count == 0 ? double.NaN : list.Skip(list.Count - q).Average(c => c ? 1.0 : 0.0);
                _log.WriteLine($"segment {s + 1} '{_world.Segments[s].Name}': {SegmentWindows[s]} windows, accuracy {(double)SegmentCorrect[s] / Math.Max(1, SegmentWindows[s]):P1} "
                    + $"(first quarter {FirstQuarter[s]:P1}, last quarter {LastQuarter[s]:P1})");
            }
        }
        string alignment = learner.Alignment is null ? "off" : $"{learner.Alignment.AngleDegrees:0.0} deg, accel gain x{learner.Alignment.Gain:0.00}";
        _log.WriteLine($"{WindowsRun} windows in {seconds:0.0} s: {learner.Updates} label updates, {learner.Adaptations} label-free adaptation steps, gravity alignment {alignment}, "
            + $"LED (out of distribution) on {OodWindows} windows, sensor errors {SensorErrors}, stuck {StuckWindows}, adaptation skipped on {UntrustedWindows}");
    }
}
