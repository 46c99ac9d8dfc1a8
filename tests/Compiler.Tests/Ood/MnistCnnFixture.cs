using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Compiler.Training;
using TinyTrain.Compiler.Zoo;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

namespace TinyTrain.Compiler.Tests.Ood;

/// <summary>
/// cnn-s trained briefly on mnist-mini (in distribution) and its int8 inference plan, shared by the OOD tests;
/// fashion-mnist-mini is the out-of-distribution set. Prototypes use the first 2,000 training images and
/// thresholds the other 1,000, so the test splits are images no calibration saw.
/// </summary>
public sealed class MnistCnnFixture
{
    public const int PrototypeImages = 2000;

    public MnistCnnFixture()
    {
        Train = DataCatalog.Load("mnist-mini", Split.Train);
        Test = DataCatalog.Load("mnist-mini", Split.Test);
        Out = DataCatalog.Load("fashion-mnist-mini", Split.Test);
        var graph = ModelZoo.Build("cnn-s", seed: 0);
        Trainer.Train(graph, Train, Test, new TrainOptions { Epochs = 3, BatchSize = 32, Seed = 0 });
        CompileResult result = PlanCompiler.Compile(graph, CalibrationSet.FromData(Train, graph.InputShape, 256), new CompileOptions());
        Image = result.Image;
        Plan = PlanImage.Load(Image, "cnn-s-mnist.ttplan");
    }

    public Dataset Train { get; }
    public Dataset Test { get; }
    public Dataset Out { get; }
    public byte[] Image { get; }
    public PlanImage Plan { get; }
}

[CollectionDefinition(Name)]
public sealed class OodDataCollection : ICollectionFixture<MnistCnnFixture>
{
    public const string Name = "OOD on real data";
}
