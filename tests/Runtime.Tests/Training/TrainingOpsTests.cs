namespace TinyTrain.Runtime.Tests.Training;

using TinyTrain.Runtime.Kernels;

/// <summary>SaveMask, MaskGradient, GradientAdd and LossGradient against straightforward computations.</summary>
public class TrainingOpsTests
{
    [Fact]
    public void SaveMask_HandWorked_LsbFirstAndHighBitsZero()
    {
        byte[] y = Int8Of(-128, -5, 0, 3, 6, 127, 10, 0, 1);
        byte[] mask = [0xFF, 0xFF, 0xFF, 0xFF];
        // ReLU6 with zero point 0 and six at 6: passes where 0 < y < 6.
        Training.SaveMask(y, 0, 9, 0, 6, mask, 1);
        Assert.Equal(new byte[] { 0xFF, 0x08, 0x01, 0xFF }, mask);

        // No bound at either end (-129, 128): everything passes; 9 bits -> 0xFF, 0x01.
        Training.SaveMask(y, 0, 9, -129, 128, mask, 1);
        Assert.Equal(new byte[] { 0xFF, 0xFF, 0x01, 0xFF }, mask);

        // ReLU with zero point -128: y == -128 is the clamp, it blocks.
        Training.SaveMask(y, 0, 8, -128, 128, mask, 1);
        Assert.Equal(0b1111_1110, mask[1]);

        // Only an upper bound at 10: 127 and 10 block.
        Training.SaveMask(y, 0, 8, -129, 10, mask, 1);
        Assert.Equal(0b1001_1111, mask[1]);
    }

    [Fact]
    public void SaveMask_MatchesTheRule()
    {
        var rng = new Random(201);
        for (int t = 0; t < 200; t++)
        {
            int n = rng.Next(1, 70);
            byte[] y = TrainTest.Int8(rng, n);
            int lower = rng.Next(3) == 0 ? -129 : rng.Next(-128, 127);
            int upper = rng.Next(3) == 0 ? 128 : rng.Next(lower + 1, 128);
            byte[] mask = TrainTest.Int8(rng, (n + 7) / 8 + 2);
            byte[] before = (byte[])mask.Clone();
            Training.SaveMask(y, 0, n, lower, upper, mask, 1);
            for (int i = 0; i < (n + 7) / 8 * 8; i++)
            {
                bool pass = i < n && (sbyte)y[i] > lower && (sbyte)y[i] < upper;
                Assert.Equal(pass, ((mask[1 + i / 8] >> (i % 8)) & 1) == 1);
            }
            Assert.Equal(before[0], mask[0]);
            Assert.Equal(before[^1], mask[^1]);
        }
    }

    [Fact]
    public void MaskGradient_ZeroesBlockedEntries_InPlaceOrApart()
    {
        var rng = new Random(202);
        for (int t = 0; t < 50; t++)
        {
            int n = rng.Next(1, 50);
            byte[] mask = TrainTest.Int8(rng, (n + 7) / 8);
            float[] dy = TrainTest.Normal(rng, n);
            byte[] apart = new byte[4 * n];
            Training.MaskGradient(mask, 0, TrainTest.Floats(dy), 0, n, apart, 0);
            byte[] inPlace = TrainTest.Floats(dy, lead: 4);
            Training.MaskGradient(mask, 0, inPlace, 4, n, inPlace, 4);
            for (int i = 0; i < n; i++)
            {
                float want = ((mask[i / 8] >> (i % 8)) & 1) == 1 ? dy[i] : 0f;
                Assert.Equal(want, FloatBits.Read(apart, 4 * i));
                Assert.Equal(want, FloatBits.Read(inPlace, 4 + 4 * i));
            }
        }
    }

    [Fact]
    public void GradientAdd_AddsInPlaceOrApart()
    {
        var rng = new Random(203);
        int n = 37;
        float[] a = TrainTest.Normal(rng, n), b = TrainTest.Normal(rng, n);
        byte[] buf = new byte[8 * n + 4 * n];
        Array.Copy(TrainTest.Floats(a), 0, buf, 0, 4 * n);
        Array.Copy(TrainTest.Floats(b), 0, buf, 4 * n, 4 * n);
        Training.GradientAdd(buf, 0, buf, 4 * n, n, buf, 8 * n);
        Assert.Equal(a.Zip(b, (p, q) => p + q).ToArray(), TrainTest.ReadFloats(buf, 8 * n, n));
        Training.GradientAdd(buf, 0, buf, 4 * n, n, buf, 0);
        Assert.Equal(a.Zip(b, (p, q) => p + q).ToArray(), TrainTest.ReadFloats(buf, 0, n));
        Training.GradientAdd(buf, 0, buf, 4 * n, n, buf, 4 * n);
        Assert.Equal(a.Zip(b, (p, q) => p + q + q).ToArray(), TrainTest.ReadFloats(buf, 4 * n, n));
    }

    [Fact]
    public void LossGradient_IsSoftmaxMinusOneHot()
    {
        var rng = new Random(204);
        for (int t = 0; t < 200; t++)
        {
            int k = rng.Next(1, 40);
            byte[] logits = TrainTest.Int8(rng, k);
            float scale = (float)(0.001 + rng.NextDouble() * (t % 4 == 0 ? 2 : 0.2));
            int zp = TrainTest.ZeroPoint(rng);
            int label = rng.Next(k);
            byte[] d = new byte[4 * k + 8];
            float loss = Training.LossGradient(logits, 0, k, scale, zp, label, d, 4);

            double[] z = logits.Select(q => ((sbyte)q - zp) * (double)scale).ToArray();
            double max = z.Max();
            double sum = z.Sum(v => Math.Exp(v - max));
            double sumD = 0;
            for (int i = 0; i < k; i++)
            {
                double want = Math.Exp(z[i] - max) / sum - (i == label ? 1 : 0);
                float got = FloatBits.Read(d, 4 + 4 * i);
                Assert.True(Math.Abs(got - want) < 1e-6, $"k {k} scale {scale}: d[{i}] {got} vs {want}");
                sumD += got;
            }
            Assert.True(Math.Abs(sumD) < 2e-6, $"sum of dL/dz is {sumD}");
            double wantLoss = Math.Log(sum) - (z[label] - max);
            Assert.True(Math.Abs(loss - wantLoss) < 1e-5 * (1 + wantLoss), $"loss {loss} vs {wantLoss}");
            Assert.Equal(0, BitConverter.ToInt32(d, 0));
            Assert.Equal(0, BitConverter.ToInt32(d, 4 + 4 * k));
        }
    }

    [Fact]
    public void LossGradient_HandWorked()
    {
        // Two equal logits: softmax 1/2 each, loss ln 2.
        byte[] d = new byte[8];
        float loss = Training.LossGradient(Int8Of(5, 5), 0, 2, 0.1f, 3, 1, d, 0);
        Assert.Equal(0.5f, FloatBits.Read(d, 0), 6);
        Assert.Equal(-0.5f, FloatBits.Read(d, 4), 6);
        Assert.Equal(Math.Log(2), loss, 6);
    }

    private static byte[] Int8Of(params int[] v) => v.Select(i => (byte)(sbyte)i).ToArray();
}
