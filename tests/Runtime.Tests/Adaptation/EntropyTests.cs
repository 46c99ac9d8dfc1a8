namespace TinyTrain.Runtime.Tests.Adaptation;

using TinyTrain.Runtime.Kernels;

public class EntropyTests
{
    private static byte[] Logits(params int[] q) => Array.ConvertAll(q, v => (byte)(sbyte)v);

    // H(z) in double, the referee.
    private static double H(double[] z)
    {
        double max = z.Max(), sum = z.Sum(v => Math.Exp(v - max));
        double h = 0;
        foreach (double v in z)
        {
            double p = Math.Exp(v - max) / sum;
            h -= p * Math.Log(p);
        }
        return h;
    }

    [Theory]
    [InlineData(0.1f, 3)]
    [InlineData(0.05f, -20)]
    [InlineData(0.2f, 0)]
    public void Gradient_matches_finite_differences_of_the_entropy(float scale, int zeroPoint)
    {
        var random = new Random(7);
        for (int trial = 0; trial < 20; trial++)
        {
            int k = random.Next(2, 12);
            int[] q = new int[k];
            for (int i = 0; i < k; i++) q[i] = random.Next(-100, 100);
            byte[] logits = Logits(q);
            byte[] d = new byte[4 * k];
            float h = Entropy.Gradient(logits, 0, k, scale, zeroPoint, float.PositiveInfinity, d, 0);

            double[] z = Array.ConvertAll(q, v => (double)(v - zeroPoint) * scale);
            Assert.Equal(H(z), h, 4);
            for (int i = 0; i < k; i++)
            {
                const double eps = 1e-4;
                double[] up = (double[])z.Clone(), down = (double[])z.Clone();
                up[i] += eps;
                down[i] -= eps;
                double numeric = (H(up) - H(down)) / (2 * eps);
                Assert.Equal(numeric, FloatBits.Read(d, 4 * i), 3);
            }
        }
    }

    [Fact]
    public void A_sample_above_the_threshold_gives_no_gradient()
    {
        // Four equal logits: H = ln 4, above EATA's 0.4 ln 4.
        byte[] logits = Logits(5, 5, 5, 5);
        byte[] d = new byte[16];
        for (int i = 0; i < 4; i++) FloatBits.Write(d, 4 * i, 123f);
        float threshold = 0.4f * MathF.Log(4);
        float h = Entropy.Gradient(logits, 0, 4, 0.1f, 0, threshold, d, 0);
        Assert.Equal(MathF.Log(4), h, 4);
        for (int i = 0; i < 4; i++) Assert.Equal(0f, FloatBits.Read(d, 4 * i));
    }

    [Fact]
    public void A_confident_sample_below_the_threshold_is_learned_from()
    {
        byte[] logits = Logits(100, 0, 0, 0);
        byte[] d = new byte[16];
        float h = Entropy.Gradient(logits, 0, 4, 0.1f, 0, 0.4f * MathF.Log(4), d, 0);
        Assert.True(h < 0.4f * MathF.Log(4));
        // Minimizing entropy raises the winning logit: its gradient is negative, the others' positive.
        Assert.True(FloatBits.Read(d, 0) < 0);
        for (int i = 1; i < 4; i++) Assert.True(FloatBits.Read(d, 4 * i) > 0);
    }

    [Fact]
    public void Overlapping_logits_and_gradient_are_refused()
    {
        byte[] buffer = new byte[64];
        var e = Assert.Throws<TinyTrainException>(() => Entropy.Gradient(buffer, 0, 4, 0.1f, 0, 1f, buffer, 0));
        Assert.Contains("Entropy.Gradient", e.Message);
    }
}
