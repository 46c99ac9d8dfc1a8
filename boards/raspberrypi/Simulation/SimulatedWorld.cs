namespace TinyTrain.Boards.RaspberryPi.Simulation;

using System.Device.Gpio;
using TinyTrain.Boards.RaspberryPi.Sensors;
using TinyTrain.Compiler.Data.Imu;

/// <summary>One stretch of the simulated stream: so many windows, with or without a field shift.</summary>
public sealed record WorldSegment(int Windows, ImuShiftKind? Shift, double Severity)
{
    public string Name => Shift is null ? "clean" : $"{ImuShift.NameOf(Shift.Value)}@{Severity:0.##}";
}

/// <summary>
/// The world around a simulated board: the device's owner (a person the model never saw, from imu-gestures' test
/// people) doing one gesture per window, the field shifts of each segment applied to what the sensor sees, and
/// the owner's button presses. After every <c>labelEvery</c>-th gesture the owner says which it was by pressing
/// the button k+1 times for gesture k during the next window (each press 2 samples down, 2 up; active low).
/// </summary>
public sealed class SimulatedWorld : IImuSignal
{
    private readonly WorldSegment[] _segments;
    private readonly ImuSubject _owner;
    private readonly ulong _seed;
    private readonly int _labelEvery;
    private readonly float[] _window = new float[ImuGestures.Channels * ImuGestures.Window];
    private long _windowIndex = -1;

    public SimulatedWorld(IReadOnlyList<WorldSegment> segments, ulong seed, int labelEvery)
    {
        if (segments.Count == 0) throw new ArgumentException("The world needs at least one segment.", nameof(segments));
        _segments = [.. segments];
        _seed = seed;
        _labelEvery = labelEvery;
        _owner = ImuSubject.Draw(ImuGestures.TrainSubjects + (int)(seed % ImuGestures.TestSubjects), ImuGestures.DefaultSeed);
        foreach (WorldSegment s in _segments) TotalWindows += s.Windows;
    }

    public long Tick { get; private set; }

    public int TotalWindows { get; }

    public IReadOnlyList<WorldSegment> Segments => _segments;

    /// <summary>Moves the sample clock on by one reading.</summary>
    public void Advance() => Tick++;

    /// <summary>The gesture the owner does in window <paramref name="window"/>.</summary>
    public int TrueLabel(long window) => (int)(ImuRandom.Mix(_seed, 21, (ulong)window) % (ulong)ImuGestures.ClassNames.Length);

    /// <summary>Whether the owner labels window <paramref name="window"/> (during the next one).</summary>
    public bool IsLabelled(long window) => _labelEvery > 0 && window % _labelEvery == _labelEvery - 1;

    /// <summary>The segment window <paramref name="window"/> belongs to.</summary>
    public int SegmentOf(long window)
    {
        long end = 0;
        for (int s = 0; s < _segments.Length; s++)
        {
            end += _segments[s].Windows;
            if (window < end) return s;
        }
        return _segments.Length - 1;
    }

    public void Current(Span<float> reading)
    {
        long window = Tick / ImuGestures.Window;
        int t = (int)(Tick % ImuGestures.Window);
        if (window != _windowIndex) Generate(window);
        for (int c = 0; c < ImuGestures.Channels; c++) reading[c] = _window[c * ImuGestures.Window + t];
    }

    /// <summary>The button's level now: Low while pressed (pull-up, active low).</summary>
    public PinValue Button(int pin)
    {
        long window = Tick / ImuGestures.Window;
        int t = (int)(Tick % ImuGestures.Window);
        if (window == 0 || !IsLabelled(window - 1)) return PinValue.High;
        int presses = TrueLabel(window - 1) + 1;
        return t < 4 * presses && t % 4 < 2 ? PinValue.Low : PinValue.High;
    }

    private void Generate(long window)
    {
        ImuGestures.Generate(TrueLabel(window), _owner, ImuRandom.Mix(_seed, 22, (ulong)window), _window, 0);
        WorldSegment segment = _segments[SegmentOf(window)];
        if (segment.Shift is ImuShiftKind kind)
            ImuShift.Apply(kind, segment.Severity, ImuRandom.Mix(_seed, 23, (ulong)window), _window, 0);
        _windowIndex = window;
    }
}
