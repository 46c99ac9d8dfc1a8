namespace TinyTrain.Boards.RaspberryPi.Learning;

using TinyTrain.Compiler.Data.Imu;

/// <summary>
/// Label-free adaptation to how the sensor is mounted: the accelerometer's long-run mean is gravity. The host keeps
/// a running mean of it and rotates every reading (accelerometer and gyro) by the smallest rotation that takes the
/// observed gravity direction onto the direction seen in the training data, and rescales the accelerometer so that
/// gravity has the training data's length (a gain error of the accelerometer).
/// </summary>
/// <remarks>
/// What it cannot see: a rotation about the gravity axis (gravity does not change), a gain error of the gyro, a
/// different tempo, vibration. Those are left to the labelled updates. The mean is updated only from readings the
/// host trusts (no I2C error, no stuck value).
/// </remarks>
public sealed class GravityAlignment
{
    /// <summary>Weight of each new window in the running mean (about the last 20 windows).</summary>
    public const float Rate = 0.05f;

    private readonly float[] _reference = new float[3];
    private readonly float[] _mean = new float[3];
    private readonly double[] _rotation = new double[9];
    private float _gain = 1;

    /// <param name="reference">Mean accelerometer vector (g) of the training data.</param>
    public GravityAlignment(float[] reference)
    {
        reference.AsSpan(0, 3).CopyTo(_reference);
        reference.AsSpan(0, 3).CopyTo(_mean);
        Update();
    }

    public float[] Reference => _reference;

    /// <summary>The running mean of the accelerometer (g), persisted in the state file.</summary>
    public float[] Mean => _mean;

    /// <summary>Degrees between the observed and the training gravity direction.</summary>
    public double AngleDegrees { get; private set; }

    public float Gain => _gain;

    /// <summary>The mean accelerometer vector of a training split (what the model saw).</summary>
    public static float[] ReferenceOf(Compiler.Data.Dataset data)
    {
        double[] sum = new double[3];
        int n = ImuGestures.Window;
        for (int i = 0; i < data.Count; i++)
            for (int axis = 0; axis < 3; axis++)
                for (int t = 0; t < n; t++)
                    sum[axis] += ImuGestures.Decode(axis, data.Images[(i * ImuGestures.Channels + axis) * n + t]);
        double count = (double)data.Count * n;
        return [(float)(sum[0] / count), (float)(sum[1] / count), (float)(sum[2] / count)];
    }

    /// <summary>Sets the running mean (from the state file).</summary>
    public void Restore(float[] mean)
    {
        mean.AsSpan(0, 3).CopyTo(_mean);
        Update();
    }

    /// <summary>Folds a trusted window (channel-major 6 x 64, physical units) into the running mean.</summary>
    public void Observe(float[] window)
    {
        int n = ImuGestures.Window;
        for (int axis = 0; axis < 3; axis++)
        {
            double sum = 0;
            for (int t = 0; t < n; t++) sum += window[axis * n + t];
            _mean[axis] += Rate * ((float)(sum / n) - _mean[axis]);
        }
        Update();
    }

    /// <summary>Rotates and rescales a window in place.</summary>
    public void Apply(float[] window)
    {
        ImuShift.Rotate(_rotation, window, 0);
        int n = ImuGestures.Window;
        for (int i = 0; i < 3 * n; i++) window[i] *= _gain;
    }

    // The smallest rotation taking unit(mean) onto unit(reference) (Rodrigues), and the length ratio.
    private void Update()
    {
        double mx = _mean[0], my = _mean[1], mz = _mean[2];
        double rx = _reference[0], ry = _reference[1], rz = _reference[2];
        double ml = Math.Sqrt(mx * mx + my * my + mz * mz), rl = Math.Sqrt(rx * rx + ry * ry + rz * rz);
        if (ml < 1e-6 || rl < 1e-6)
        {
            Identity();
            return;
        }
        mx /= ml; my /= ml; mz /= ml;
        rx /= rl; ry /= rl; rz /= rl;
        double kx = my * rz - mz * ry, ky = mz * rx - mx * rz, kz = mx * ry - my * rx;
        double s = Math.Sqrt(kx * kx + ky * ky + kz * kz), c = mx * rx + my * ry + mz * rz;
        AngleDegrees = Math.Atan2(s, c) * 180 / Math.PI;
        _gain = (float)Math.Clamp(rl / ml, 0.25, 4);
        if (s < 1e-9)
        {
            Identity();
            return;
        }
        kx /= s; ky /= s; kz /= s;
        double t = 1 - c;
        _rotation[0] = t * kx * kx + c; _rotation[1] = t * kx * ky - s * kz; _rotation[2] = t * kx * kz + s * ky;
        _rotation[3] = t * kx * ky + s * kz; _rotation[4] = t * ky * ky + c; _rotation[5] = t * ky * kz - s * kx;
        _rotation[6] = t * kx * kz - s * ky; _rotation[7] = t * ky * kz + s * kx; _rotation[8] = t * kz * kz + c;
    }

    private void Identity()
    {
        Array.Clear(_rotation);
        _rotation[0] = _rotation[4] = _rotation[8] = 1;
    }
}
