namespace TinyTrain.Emulator.Corruptions;

using TinyTrain.Compiler.Data.Imu;

/// <summary>
/// A field shift of imu-gestures (src/Compiler/Data/Imu/ImuShift.cs) as a stream transform: the window's bytes
/// (6 rows of channels x 64 columns of time) are decoded to g and deg/s, shifted, and encoded again, saturating
/// as the sensor does. Unlike the MNIST-C corruptions it uses the platform's Math.Sin/Cos/Exp: results are the
/// same on every run of one machine; across machines a byte may differ in a rare rounding case.
/// </summary>
public sealed class ImuShiftCorruption : ICorruption
{
    [ThreadStatic]
    private static float[]? t_window;

    private readonly ImuShiftKind _kind;

    public ImuShiftCorruption(ImuShiftKind kind) => _kind = kind;

    public string Name => ImuShift.NameOf(_kind);

    public bool IsRandom => _kind == ImuShiftKind.Vibration;

    public void Apply(ReadOnlySpan<byte> image, Span<byte> output, int width, int height, double severity, ulong seed)
    {
        const int n = ImuGestures.Channels * ImuGestures.Window;
        if (width != ImuGestures.Window || height != ImuGestures.Channels || image.Length != n || output.Length != n)
            throw new ArgumentException(
                $"IMU shift '{Name}' takes {ImuGestures.Channels}x{ImuGestures.Window} sensor windows (imu-gestures), got {height}x{width} with {image.Length} bytes.");
        float[] window = t_window ??= new float[n];
        ImuGestures.DecodeWindow(image, window, 0);
        ImuShift.Apply(_kind, severity, seed, window, 0);
        for (int c = 0; c < ImuGestures.Channels; c++)
            for (int t = 0; t < ImuGestures.Window; t++)
                output[c * ImuGestures.Window + t] = ImuGestures.Encode(c, window[c * ImuGestures.Window + t]);
    }
}
