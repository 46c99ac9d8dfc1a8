using System.Runtime.CompilerServices;

[assembly: InternalsVisibleTo("TinyTrain.Emulator.Tests")]

namespace TinyTrain.Emulator.Corruptions;

/// <summary>
/// exp, log, sin and cos from IEEE basic arithmetic only (range reduction as fdlibm, then Taylor series accurate to a
/// few ulp). System.Math's versions come from each platform's C library and may differ in the last bit, which could
/// flip a rounded pixel; these give the same bits everywhere. Math.Sqrt, Floor, Round and ScaleB are exact already.
/// </summary>
internal static class DeterministicMath
{
    // fdlibm's splits of ln 2 and pi/2: k * Hi is exact for the k that occur here, Lo carries the rest.
    private const double Ln2Hi = 6.93147180369123816490e-01;
    private const double Ln2Lo = 1.90821492927058770002e-10;
    private const double InvLn2 = 1.44269504088896338700e+00;
    private const double PiOver2Hi = 1.57079632673412561417e+00;
    private const double PiOver2Lo = 6.07710050650619224932e-11;
    private const double TwoOverPi = 6.36619772367581382433e-01;
    private const double Sqrt2 = 1.41421356237309514547e+00;

    public static double Exp(double x)
    {
        if (double.IsNaN(x)) return x;
        if (x > 709.782712893384) return double.PositiveInfinity;
        if (x < -745.1332191019412) return 0.0;
        double k = Math.Round(x * InvLn2);
        double r = x - k * Ln2Hi - k * Ln2Lo; // |r| <= ln2 / 2
        double p = 1.0 + r * (1.0 + r * (1.0 / 2 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120 + r * (1.0 / 720
            + r * (1.0 / 5040 + r * (1.0 / 40320 + r * (1.0 / 362880 + r * (1.0 / 3628800 + r * (1.0 / 39916800
            + r * (1.0 / 479001600 + r * (1.0 / 6227020800.0)))))))))))));
        return Math.ScaleB(p, (int)k);
    }

    public static double Log(double x)
    {
        if (double.IsNaN(x) || x < 0) return double.NaN;
        if (x == 0) return double.NegativeInfinity;
        if (double.IsPositiveInfinity(x)) return x;
        int e = Math.ILogB(x);
        double m = Math.ScaleB(x, -e); // [1, 2)
        if (m > Sqrt2)
        {
            m *= 0.5;
            e++;
        }
        // log m = 2 atanh z with z = (m - 1) / (m + 1), |z| <= 0.172.
        double z = (m - 1.0) / (m + 1.0);
        double z2 = z * z;
        double s = 2.0 * z * (1.0 + z2 * (1.0 / 3 + z2 * (1.0 / 5 + z2 * (1.0 / 7 + z2 * (1.0 / 9 + z2 * (1.0 / 11
            + z2 * (1.0 / 13 + z2 * (1.0 / 15 + z2 * (1.0 / 17 + z2 * (1.0 / 19 + z2 * (1.0 / 21 + z2 * (1.0 / 23))))))))))));
        return e * Ln2Hi + (e * Ln2Lo + s);
    }

    public static double Sin(double x) => SinCos(x, 0);

    public static double Cos(double x) => SinCos(x, 1);

    private static double SinCos(double x, long quarterTurns)
    {
        if (!double.IsFinite(x)) return double.NaN;
        double k = Math.Round(x * TwoOverPi);
        double r = x - k * PiOver2Hi - k * PiOver2Lo; // |r| <= pi / 4 (plus rounding)
        // cos x = sin(x + pi/2): one more quarter turn.
        return (((long)k + quarterTurns) & 3) switch
        {
            0 => SinPoly(r),
            1 => CosPoly(r),
            2 => -SinPoly(r),
            _ => -CosPoly(r),
        };
    }

    private static double SinPoly(double r)
    {
        double r2 = r * r;
        return r + r * r2 * (-1.0 / 6 + r2 * (1.0 / 120 + r2 * (-1.0 / 5040 + r2 * (1.0 / 362880 + r2 * (-1.0 / 39916800
            + r2 * (1.0 / 6227020800.0 + r2 * (-1.0 / 1307674368000.0 + r2 * (1.0 / 355687428096000.0))))))));
    }

    private static double CosPoly(double r)
    {
        double r2 = r * r;
        return 1.0 + r2 * (-1.0 / 2 + r2 * (1.0 / 24 + r2 * (-1.0 / 720 + r2 * (1.0 / 40320 + r2 * (-1.0 / 3628800
            + r2 * (1.0 / 479001600 + r2 * (-1.0 / 87178291200.0 + r2 * (1.0 / 20922789888000.0))))))));
    }
}
