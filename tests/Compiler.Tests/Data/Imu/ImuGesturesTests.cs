namespace TinyTrain.Compiler.Tests.Data.Imu;

using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Data.Imu;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Compiler.Training;
using TinyTrain.Compiler.Zoo;
using TinyTrain.Runtime.Execution;

public class ImuGesturesTests
{
    [Fact]
    public void Splits_AreSeeded_Balanced_AndShapedAsSensorWindows()
    {
        Dataset train = DataCatalog.Load("imu-gestures", Split.Train);
        Dataset again = ImuGestures.Generate(Split.Train, ImuGestures.DefaultSeed);
        Dataset other = ImuGestures.Generate(Split.Train, ImuGestures.DefaultSeed + 1, 60);

        Assert.Equal(ImuGestures.TrainCount, train.Count);
        Assert.Equal(ImuGestures.TestCount, DataCatalog.Load("imu-gestures", Split.Test).Count);
        Assert.Equal((6, 64), (train.Rows, train.Cols));
        Assert.Equal(train.Images, again.Images);
        Assert.NotEqual(train.Images.AsSpan(0, other.Images.Length).ToArray(), other.Images);
        Assert.All(train.CountPerClass(), n => Assert.Equal(500, n));
    }

    [Fact]
    public void Rest_SeesOneGOfGravity_AndShakeMovesAlongX()
    {
        var person = new ImuSubject(1, 1, 0, 0, new double[6]);
        var rest = new float[384];
        var shake = new float[384];
        ImuGestures.Generate(0, person, 5, rest, 0);
        ImuGestures.Generate(1, person, 5, shake, 0);

        double Mean(float[] w, int c) => w.Skip(c * 64).Take(64).Average(v => (double)v);
        double Spread(float[] w, int c) => w.Skip(c * 64).Take(64).Max() - w.Skip(c * 64).Take(64).Min();
        Assert.InRange(Mean(rest, 2), 0.8, 1.2); // level device: gravity on z
        Assert.InRange(Spread(rest, 0), 0, 1.5);
        Assert.True(Spread(shake, 0) > 2 * Spread(rest, 0), "shaking swings the x acceleration");
    }

    [Fact]
    public void Encoding_MapsFullScaleOntoBytes()
    {
        Assert.Equal(128, ImuGestures.Encode(0, 0f)); // 127.5 rounds away from zero
        Assert.Equal(255, ImuGestures.Encode(0, 4f));
        Assert.Equal(0, ImuGestures.Encode(3, -900f)); // saturates like the sensor
        Assert.Equal(1f, ImuGestures.Decode(0, ImuGestures.Encode(0, 1f)), 0.02f);
        Assert.Equal(-250f, ImuGestures.Decode(3, ImuGestures.Encode(3, -250f)), 2f);
    }

    [Theory]
    [InlineData(ImuShiftKind.Rotation)]
    [InlineData(ImuShiftKind.Gain)]
    [InlineData(ImuShiftKind.Tempo)]
    [InlineData(ImuShiftKind.Vibration)]
    public void Shifts_ChangeTheWindow_AndSeverityZeroDoesNot(ImuShiftKind kind)
    {
        var person = new ImuSubject(1, 1, 0.2, -0.1, new double[6]);
        var clean = new float[384];
        ImuGestures.Generate(4, person, 9, clean, 0);
        var zero = (float[])clean.Clone();
        var shifted = (float[])clean.Clone();

        ImuShift.Apply(kind, 0, 1, zero, 0);
        ImuShift.Apply(kind, 1, 1, shifted, 0);

        Assert.Equal(clean, zero);
        Assert.NotEqual(clean, shifted);
        Assert.True(ImuShift.TryParse(ImuShift.NameOf(kind), out ImuShiftKind parsed) && parsed == kind);
    }

    [Fact]
    public void Rotation_KeepsTheLengthOfGravity_AndTurnsIt60Degrees()
    {
        var w = new float[384];
        for (int t = 0; t < 64; t++) w[2 * 64 + t] = 1; // gravity on z only
        ImuShift.Apply(ImuShiftKind.Rotation, 1, 0, w, 0);
        double x = w[0], y = w[64], z = w[128];
        Assert.Equal(1.0, Math.Sqrt(x * x + y * y + z * z), 5);
        // Angle between z and R z for a 60 deg turn about (1, 0.5, 1)/1.5: cos = c + (1 - c) * (1/1.5)^2.
        double expected = 0.5 + 0.5 * (1 / 1.5) * (1 / 1.5);
        Assert.Equal(expected, z, 5);
    }

    [Fact]
    public void Severity_OutOfRange_IsRefused()
    {
        var e = Assert.Throws<TinyTrainException>(() => ImuShift.Apply(ImuShiftKind.Gain, 5, 0, new float[384], 0));
        Assert.Equal("IMU shift 'gain': severity must be in 0..4, got 5", e.Message);
    }

    [Fact]
    public void ImuCnn_TrainsQuantizesAndRunsAsInt8_LikeTheImageModels()
    {
        Dataset train = ImuGestures.Load(Split.Train), test = ImuGestures.Load(Split.Test);
        var graph = ModelZoo.Build("imu-cnn", classes: 6, seed: 0);
        Assert.Equal(new Graphs.Shape(6, 64, 1), graph.InputShape);

        TrainResult result = Trainer.Train(graph, train, test, new TrainOptions { Epochs = 5, Seed = 0 });
        CompileResult compiled = PlanCompiler.Compile(graph, CalibrationSet.FromData(train, graph.InputShape, 128), new CompileOptions { Update = "bias:2" });
        var plan = Runtime.Plans.Plan.Load(compiled.Image, "imu.ttplan");
        var executor = new Executor(plan);
        var quantizer = InputQuantizer.For(plan);
        var input = new byte[quantizer.Length];
        int correct = 0, n = 300;
        for (int i = 0; i < n; i++)
        {
            quantizer.Fill(test, i, input, 0);
            executor.SetInput(input, 0);
            executor.Invoke();
            if (executor.ArgMax() == test.Labels[i]) correct++;
        }

        Assert.True(result.TestAccuracy > 0.8, $"float test accuracy {result.TestAccuracy:P1}");
        Assert.True(correct > 0.8 * n, $"int8 accuracy {correct}/{n} (float {result.TestAccuracy:P1})");
        Assert.True(executor.CanTrain);
        // The side kernel columns that only meet padding stay zero through training (see ImuCnn).
        foreach (Graphs.Node conv in graph.Nodes.Where(node => node.Kind == Graphs.OpKind.Conv2d))
            for (int i = 0; i < conv.Weight!.Length; i++)
                if (i % 3 != 1) Assert.Equal(0f, conv.Weight.Data[i]);
    }
}
