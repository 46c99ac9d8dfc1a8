namespace TinyTrain.Compiler.Data.Imu;

/// <summary>
/// How one person performs the gestures: size and speed of their movements, how they hold the device (a tilt of
/// the sensor against gravity), and a small sensor offset of their unit. Drawn from the subject's seed.
/// </summary>
public sealed record ImuSubject(double Amplitude, double Tempo, double TiltX, double TiltY, double[] Offset)
{
    public static ImuSubject Draw(int subject, ulong seed)
    {
        var r = new ImuRandom(ImuRandom.Mix(seed, 1, (ulong)subject));
        double amplitude = r.Uniform(0.6, 1.4);
        double tempo = r.Uniform(0.7, 1.4);
        double tiltX = r.Uniform(-0.5, 0.5), tiltY = r.Uniform(-0.5, 0.5);
        var offset = new double[ImuGestures.Channels];
        for (int c = 0; c < 3; c++) offset[c] = r.Gaussian() * 0.05;
        for (int c = 3; c < 6; c++) offset[c] = r.Gaussian() * 3.0;
        return new ImuSubject(amplitude, tempo, tiltX, tiltY, offset);
    }
}
