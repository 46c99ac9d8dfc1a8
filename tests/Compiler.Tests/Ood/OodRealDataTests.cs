using TinyTrain.Compiler.Ood;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Runtime.Execution;
using TinyTrain.Runtime.Ood;
using TinyTrain.Runtime.Plans;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

namespace TinyTrain.Compiler.Tests.Ood;

/// <summary>
/// The scores run by the int8 runtime on real images: cnn-s trained on mnist-mini, fashion-mnist-mini as
/// out-of-distribution data, every figure measured on test images that no calibration saw.
/// </summary>
[Collection(OodDataCollection.Name)]
public class OodRealDataTests
{
    private readonly MnistCnnFixture _cnn;

    public OodRealDataTests(MnistCnnFixture cnn) => _cnn = cnn;

    private HdPrototypes Prototypes(HdConfig config) =>
        HdCalibration.Build(_cnn.Plan, _cnn.Train, config, MnistCnnFixture.PrototypeImages);

    [Theory]
    [InlineData(HdStorage.Int8, 1024, 1)]
    [InlineData(HdStorage.Bits, 2048, 1)]
    [InlineData(HdStorage.Bits, 1024, 4)]
    public void HdScore_SeparatesMnistFromFashion(HdStorage storage, int dims, int perClass)
    {
        var scorer = new HdScorer(_cnn.Plan, Prototypes(new HdConfig(dims, storage, prototypesPerClass: perClass)));
        float[] inScores = OodCalibration.Scores(_cnn.Plan, scorer, _cnn.Test);
        float[] outScores = OodCalibration.Scores(_cnn.Plan, scorer, _cnn.Out);
        double auroc = OodMetrics.Auroc(inScores, outScores);
        Assert.True(auroc > 0.9, $"{scorer.Name} D={dims}: AUROC {auroc:F4}");
    }

    [Fact]
    public void Threshold_KeepsNinetyFivePercent_OfInDistributionData()
    {
        var scorer = new HdScorer(_cnn.Plan, Prototypes(new HdConfig(512, HdStorage.Bits)));
        int held = _cnn.Train.Count - MnistCnnFixture.PrototypeImages;
        float[] calibration = OodCalibration.Scores(_cnn.Plan, scorer, _cnn.Train, MnistCnnFixture.PrototypeImages, held);
        OodThreshold threshold = OodCalibration.Threshold(calibration);
        Assert.Equal(0.95f, threshold.TruePositiveRate);
        // On its own calibration data: 95 % kept, more only where scores tie at the threshold.
        double kept = OodMetrics.AcceptedRate(calibration, threshold.Value);
        Assert.InRange(kept, 0.95, 0.955);
        int inside = 0;
        foreach (float s in calibration) if (!threshold.IsOutOfDistribution(s)) inside++;
        Assert.Equal(kept, (double)inside / calibration.Length);
        // On test images it never saw, close to 95 %.
        float[] test = OodCalibration.Scores(_cnn.Plan, scorer, _cnn.Test);
        Assert.InRange(OodMetrics.AcceptedRate(test, threshold.Value), 0.91, 0.99);
        Assert.Equal(threshold.Value, OodCalibration.Calibrate(_cnn.Plan, scorer, _cnn.Train, MnistCnnFixture.PrototypeImages, held).Value);
    }

    [Fact]
    public void LogitScores_ReadThePlansOutput()
    {
        var msp = new MaxSoftmaxScorer(_cnn.Plan);
        var energy = new EnergyScorer(_cnn.Plan);
        TensorInfo logits = _cnn.Plan.Tensor(_cnn.Plan.OutputTensor);
        var executor = new Executor(_cnn.Plan);
        var quantizer = InputQuantizer.For(_cnn.Plan);
        byte[] input = new byte[quantizer.Length];
        for (int i = 0; i < 20; i++)
        {
            quantizer.Fill(_cnn.Test, i, input, 0);
            executor.SetInput(input, 0);
            executor.Invoke();
            byte[] copy = new byte[logits.ElementCount];
            for (int k = 0; k < copy.Length; k++) copy[k] = (byte)executor.Output(k);
            Assert.Equal(OodScores.MaxSoftmax(copy, 0, copy.Length, logits.Scale, logits.ZeroPoint), msp.Score(executor));
            Assert.Equal(OodScores.Energy(copy, 0, copy.Length, logits.Scale, logits.ZeroPoint, 1f), energy.Score(executor));
        }
        Assert.Equal(0, msp.SramBytes);
        Assert.Equal(0, energy.SramBytes);
        // Both separate the sets too, if less well than the prototypes (figures in the ood benchmark).
        Assert.True(OodMetrics.Auroc(OodCalibration.Scores(_cnn.Plan, energy, _cnn.Test, 0, 500),
            OodCalibration.Scores(_cnn.Plan, energy, _cnn.Out, 0, 500)) > 0.8);
    }

    [Fact]
    public void HdScore_ReadsTheClassifiersInput_AndEqualsScoringThoseFeatures()
    {
        HdPrototypes prototypes = Prototypes(new HdConfig(256, HdStorage.Int8));
        var bound = new HdScorer(_cnn.Plan, prototypes);
        int fc = -1;
        for (int i = 0; i < _cnn.Plan.ForwardOpCount; i++)
            if (_cnn.Plan.Op(i).Kind == OpKind.FullyConnected) fc = i;
        TensorInfo features = _cnn.Plan.Tensor(_cnn.Plan.Op(fc).Input0);
        Assert.Equal(3136, prototypes.Features);
        Assert.Equal(features.ArenaOffset, bound.FeatureOffset);
        var unbound = new HdScorer(prototypes, features.ZeroPoint);
        var executor = new Executor(_cnn.Plan);
        var quantizer = InputQuantizer.For(_cnn.Plan);
        byte[] input = new byte[quantizer.Length];
        quantizer.Fill(_cnn.Out, 3, input, 0);
        executor.SetInput(input, 0);
        executor.Invoke();
        byte[] copy = new byte[features.ElementCount];
        Array.Copy(executor.Arena, features.ArenaOffset, copy, 0, copy.Length);
        Assert.Equal(unbound.ScoreFeatures(copy, 0), bound.Score(executor));
    }

    [Fact]
    public void EveryScore_AllocatesNothingPerSample()
    {
        IOodScorer[] scorers =
        {
            new MaxSoftmaxScorer(_cnn.Plan), new EnergyScorer(_cnn.Plan),
            new HdScorer(_cnn.Plan, Prototypes(new HdConfig(256, HdStorage.Int8))),
            new HdScorer(_cnn.Plan, Prototypes(new HdConfig(256, HdStorage.Bits))),
        };
        var executor = new Executor(_cnn.Plan);
        var quantizer = InputQuantizer.For(_cnn.Plan);
        byte[][] inputs = new byte[10][];
        for (int i = 0; i < inputs.Length; i++)
        {
            inputs[i] = new byte[quantizer.Length];
            quantizer.Fill(i % 2 == 0 ? _cnn.Test : _cnn.Out, i, inputs[i], 0);
        }
        float sink = 0;
        void Step(int i)
        {
            executor.SetInput(inputs[i], 0);
            executor.Invoke();
            for (int s = 0; s < scorers.Length; s++) sink += scorers[s].Score(executor);
        }
        Step(0);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100; i++) Step(i % inputs.Length);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.True(float.IsFinite(sink));
    }

    [Fact]
    public void Prototypes_AreDeterministic_AndSubClustersAreDistinct()
    {
        var config = new HdConfig(256, HdStorage.Int8, prototypesPerClass: 3);
        HdPrototypes a = Prototypes(config), b = Prototypes(config);
        Assert.Equal(a.Data, b.Data);
        Assert.Equal(30, a.Count);
        Assert.Equal(30 * 256, a.Data.Length);
        Assert.Equal(config.SramBytes(10), a.SramBytes);
        // k-means split each class: its three prototypes point different ways.
        for (int k = 0; k < 10; k++)
        {
            for (int p = 1; p < 3; p++)
            {
                Assert.NotEqual(a.Data.AsSpan((k * 3) * 256, 256).ToArray(), a.Data.AsSpan((k * 3 + p) * 256, 256).ToArray());
            }
        }
    }

    [Fact]
    public void Prototypes_BitsAreTheSignsOfTheInt8Directions()
    {
        HdPrototypes int8 = Prototypes(new HdConfig(128, HdStorage.Int8));
        HdPrototypes bits = Prototypes(new HdConfig(128, HdStorage.Bits));
        Assert.Equal(10 * 128, int8.Data.Length);
        Assert.Equal(10 * 16, bits.Data.Length);
        for (int k = 0; k < 10; k++)
        {
            int peak = 0;
            for (int d = 0; d < 128; d++)
            {
                int p = (sbyte)int8.Data[k * 128 + d];
                peak = Math.Max(peak, Math.Abs(p));
                bool bit = (bits.Data[k * 16 + d / 8] >> (d % 8) & 1) != 0;
                if (p != 0) Assert.Equal(p > 0, bit);
            }
            Assert.Equal(127, peak);   // each direction is scaled to the full int8 range
        }
    }

    [Fact]
    public void Refusals_NameWhatIsWrong()
    {
        HdPrototypes prototypes = Prototypes(new HdConfig(64, HdStorage.Bits));
        var scorer = new HdScorer(_cnn.Plan, prototypes);
        // An executor of another plan (another load of the bytes: other offsets could differ).
        var other = new Executor(PlanImage.Load((byte[])_cnn.Image.Clone(), "other.ttplan"));
        var e = Assert.Throws<TinyTrainException>(() => scorer.Score(other));
        Assert.Contains("other.ttplan", e.Message);
        Assert.Contains("bind the scorer to executor.Plan", e.Message);
        e = Assert.Throws<TinyTrainException>(() => new MaxSoftmaxScorer(_cnn.Plan).Score(other));
        Assert.Contains("msp score", e.Message);
        // Prototypes built for another feature count.
        var wrong = new HdPrototypes(prototypes.Config, 10, 100, prototypes.Data);
        e = Assert.Throws<TinyTrainException>(() => new HdScorer(_cnn.Plan, wrong));
        Assert.Contains("reads 3136 features but the prototypes were built for 100", e.Message);
        // An unbound scorer cannot read an executor.
        e = Assert.Throws<TinyTrainException>(() => new HdScorer(prototypes, -128).Score(new Executor(_cnn.Plan)));
        Assert.Contains("not bound to a plan", e.Message);
        // A class without calibration images.
        var firstFive = _cnn.Train.Subset(Enumerable.Range(0, 500).Where(i => _cnn.Train.Labels[i] < 5).ToArray());
        e = Assert.Throws<TinyTrainException>(() => HdCalibration.Build(_cnn.Plan, firstFive, new HdConfig(64, HdStorage.Int8)));
        Assert.Contains("no usable image of class 5", e.Message);
        int[] fewNines = Enumerable.Range(0, 500).Where(i => _cnn.Train.Labels[i] < 9).Concat(
            Enumerable.Range(0, 3000).Where(i => _cnn.Train.Labels[i] == 9).Take(2)).ToArray();
        e = Assert.Throws<TinyTrainException>(() =>
            HdCalibration.Build(_cnn.Plan, _cnn.Train.Subset(fewNines), new HdConfig(64, HdStorage.Bits, prototypesPerClass: 4)));
        Assert.Contains("only 2 usable images of class 9", e.Message);
        Assert.Contains("4 prototypes per class need at least as many", e.Message);
        e = Assert.Throws<TinyTrainException>(() => new EnergyScorer(_cnn.Plan, 0f));
        Assert.Contains("temperature is 0", e.Message);
    }
}
