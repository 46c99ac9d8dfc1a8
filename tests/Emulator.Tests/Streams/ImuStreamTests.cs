using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Data.Imu;
using TinyTrain.Compiler.Graphs;
using TinyTrain.Compiler.Training;
using TinyTrain.Emulator.Corruptions;
using TinyTrain.Emulator.Streams;

namespace TinyTrain.Emulator.Tests.Streams;

public class ImuStreamTests
{
    private static readonly Shape Window = new(6, 64, 1);

    [Fact]
    public void ImuStream_CarriesSensorWindows_AndFillsTheModelInputLikeTraining()
    {
        var stream = new DataStream(StreamSpec.Parse("imu-gestures:clean*5"), 1, Window);
        Dataset test = DataCatalog.Load("imu-gestures", Split.Test);
        var fromStream = new float[Window.Size];
        var fromData = new float[Window.Size];

        Assert.Equal((6, 64), (stream.Rows, stream.Cols));
        foreach (StreamSample sample in stream)
        {
            Assert.Equal(384, sample.Pixels.Length);
            Assert.Equal(test.Image(sample.SourceIndex).ToArray(), sample.Pixels);
            stream.FillInput(sample, fromStream, 0);
            InputLayout.Fill(test, sample.SourceIndex, Window, fromData, 0);
            Assert.Equal(fromData, fromStream);
        }
    }

    [Theory]
    [InlineData("rotation")]
    [InlineData("gain")]
    [InlineData("tempo")]
    [InlineData("vibration")]
    public void FieldShifts_ChangeTheWindows_AsTheGeneratorsShiftDoes(string shift)
    {
        var clean = new DataStream(StreamSpec.Parse("imu-gestures:clean*3"), 4, Window).Select(s => (byte[])s.Pixels.Clone()).ToList();
        var shifted = new DataStream(StreamSpec.Parse($"imu-gestures:{shift}@1*3"), 4, Window).Select(s => ((byte[])s.Pixels.Clone(), s.Seed)).ToList();
        Assert.True(ImuShift.TryParse(shift, out ImuShiftKind kind));

        for (int i = 0; i < 3; i++)
        {
            var expected = new float[384];
            ImuGestures.DecodeWindow(clean[i], expected, 0);
            ImuShift.Apply(kind, 1, shifted[i].Seed, expected, 0);
            var bytes = new byte[384];
            ImuGestures.EncodeWindow(expected, 0, bytes, 0);
            Assert.Equal(bytes, shifted[i].Item1);
            Assert.NotEqual(clean[i], shifted[i].Item1);
        }
    }

    [Theory]
    [InlineData("imu-gestures:fog*3", "'imu-gestures' streams sensor windows: name a field shift (rotation, gain, tempo, vibration) or clean")]
    [InlineData("mnist-mini:rotation*3", "'rotation' is a field shift of imu-gestures; images take: clean, shot-noise")]
    [InlineData("imu-gestures:gain@5*3", "severity of the field shift 'gain' must be in 0..4 (1 is the documented setting), got 5")]
    public void WrongTransformForTheSource_IsRefused(string spec, string message)
    {
        var e = Assert.Throws<TinyTrainException>(() => StreamSpec.Parse(spec));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void MixingImagesAndSensorWindows_InOneStream_IsRefused()
    {
        var e = Assert.Throws<TinyTrainException>(() => new DataStream(StreamSpec.Parse("mnist-mini:clean*3, imu-gestures:clean*3"), 1));
        Assert.Equal("stream segment 2 ('imu-gestures:clean*3'): data set 'imu-gestures' has 6x64 samples, earlier segments 28x28; one stream feeds one model, so every segment needs the same size.", e.Message);
    }

    [Fact]
    public void ImuShift_OnAnImage_IsRefused()
    {
        ICorruption rotation = CorruptionCatalog.Get("rotation");
        var e = Assert.Throws<ArgumentException>(() => rotation.Apply(new byte[784], new byte[784], 28, 28, 1, 0));
        Assert.StartsWith("IMU shift 'rotation' takes 6x64 sensor windows (imu-gestures), got 28x28", e.Message);
    }
}
