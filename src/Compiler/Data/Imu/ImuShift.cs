namespace TinyTrain.Compiler.Data.Imu;

/// <summary>What changes in the field after an IMU model ships.</summary>
public enum ImuShiftKind
{
    /// <summary>The sensor is mounted rotated: 60 deg x severity about the axis (1, 0.5, 1)/1.5, on both accelerometer and gyro.</summary>
    Rotation,

    /// <summary>A gain change (e.g. the full scale set differently): every reading x (1 + 0.5 severity).</summary>
    Gain,

    /// <summary>A new user's tempo: the gesture is 1 + 0.5 severity times slower; motion accelerations and rates shrink with it.</summary>
    Tempo,

    /// <summary>Added vibration (a motor, a vehicle): 17 Hz, 0.8 g x severity on the accelerometer, 50 deg/s x severity on the gyro, plus broadband noise.</summary>
    Vibration,
}

/// <summary>
/// Field shifts of <see cref="ImuGestures"/> windows, applied in physical units to a channel-major 6 x 64 window in
/// place. Severity 0 changes nothing; 1 is the documented setting; larger is stronger.
/// </summary>
public static class ImuShift
{
    public const double MaxSeverity = 4;

    /// <summary>The kebab-case names used by streams and the board host: rotation, gain, tempo, vibration.</summary>
    public static readonly string[] Names = ["rotation", "gain", "tempo", "vibration"];

    public static string NameOf(ImuShiftKind kind) => Names[(int)kind];

    /// <summary>The shift called <paramref name="name"/>, or false.</summary>
    public static bool TryParse(string? name, out ImuShiftKind kind)
    {
        int i = Array.FindIndex(Names, n => string.Equals(n, name?.Trim(), StringComparison.OrdinalIgnoreCase));
        kind = i < 0 ? default : (ImuShiftKind)i;
        return i >= 0;
    }

    public static void Apply(ImuShiftKind kind, double severity, ulong seed, float[] window, int offset)
    {
        if (!(severity >= 0 && severity <= MaxSeverity))
            throw new TinyTrainException($"IMU shift '{NameOf(kind)}': severity must be in 0..{MaxSeverity}, got {severity}");
        if (severity == 0) return;
        switch (kind)
        {
            case ImuShiftKind.Rotation:
                Rotate(Rotation(severity), window, offset);
                break;
            case ImuShiftKind.Gain:
                for (int i = 0; i < ImuGestures.Channels * ImuGestures.Window; i++)
                    window[offset + i] = (float)(window[offset + i] * (1 + 0.5 * severity));
                break;
            case ImuShiftKind.Tempo:
                Stretch(1 + 0.5 * severity, window, offset);
                break;
            default:
                Vibrate(severity, seed, window, offset);
                break;
        }
    }

    /// <summary>The mounting rotation of <see cref="ImuShiftKind.Rotation"/> at a severity, row-major 3x3 (sensor = R * body).</summary>
    public static double[] Rotation(double severity)
    {
        double angle = severity * Math.PI / 3;
        double x = 1 / 1.5, y = 0.5 / 1.5, z = 1 / 1.5;
        double c = Math.Cos(angle), s = Math.Sin(angle), t = 1 - c;
        return
        [
            t * x * x + c, t * x * y - s * z, t * x * z + s * y,
            t * x * y + s * z, t * y * y + c, t * y * z - s * x,
            t * x * z - s * y, t * y * z + s * x, t * z * z + c,
        ];
    }

    /// <summary>Applies a 3x3 rotation to the accelerometer (channels 0..2) and the gyro (3..5) of every reading.</summary>
    public static void Rotate(double[] m, float[] window, int offset)
    {
        const int n = ImuGestures.Window;
        for (int t = 0; t < n; t++)
        {
            for (int sensor = 0; sensor < 2; sensor++)
            {
                int b = offset + sensor * 3 * n + t;
                double vx = window[b], vy = window[b + n], vz = window[b + 2 * n];
                window[b] = (float)(m[0] * vx + m[1] * vy + m[2] * vz);
                window[b + n] = (float)(m[3] * vx + m[4] * vy + m[5] * vz);
                window[b + 2 * n] = (float)(m[6] * vx + m[7] * vy + m[8] * vz);
            }
        }
    }

    // Slower by `factor`: the window shows the first 1/factor of the motion, stretched (linear interpolation);
    // what moves (the deviation from the window's mean) shrinks as 1/factor for rates and 1/factor^2 for accelerations.
    private static void Stretch(double factor, float[] window, int offset)
    {
        const int n = ImuGestures.Window;
        Span<float> source = stackalloc float[n];
        for (int c = 0; c < ImuGestures.Channels; c++)
        {
            int b = offset + c * n;
            double mean = 0;
            for (int t = 0; t < n; t++)
            {
                source[t] = window[b + t];
                mean += source[t];
            }
            mean /= n;
            double shrink = c < 3 ? 1 / (factor * factor) : 1 / factor;
            for (int t = 0; t < n; t++)
            {
                double at = t / factor;
                int i0 = (int)at, i1 = Math.Min(i0 + 1, n - 1);
                double v = source[i0] + (source[i1] - source[i0]) * (at - i0);
                window[b + t] = (float)(mean + (v - mean) * shrink);
            }
        }
    }

    private static void Vibrate(double severity, ulong seed, float[] window, int offset)
    {
        const int n = ImuGestures.Window;
        var r = new ImuRandom(seed);
        double phase = r.Uniform(0, 2 * Math.PI);
        // A random direction for the shaking.
        double dx = r.Gaussian(), dy = r.Gaussian(), dz = r.Gaussian();
        double norm = Math.Sqrt(dx * dx + dy * dy + dz * dz) + 1e-12;
        Span<double> direction = [dx / norm, dy / norm, dz / norm];
        for (int t = 0; t < n; t++)
        {
            double wave = Math.Sin(2 * Math.PI * 17 / ImuGestures.SampleRate * t + phase);
            for (int axis = 0; axis < 3; axis++)
            {
                window[offset + axis * n + t] += (float)(0.8 * severity * wave * direction[axis] + 0.1 * severity * r.Gaussian());
                window[offset + (axis + 3) * n + t] += (float)(50 * severity * wave * direction[axis] + 5 * severity * r.Gaussian());
            }
        }
    }
}
