using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Compiler.Training;
using TinyTrain.Compiler.Zoo;

namespace TinyTrain.Adapters.Tests;

/// <summary>A cnn-s trained briefly on mnist-mini (the base model), shared by the tests that need real weights.</summary>
public sealed class MiniModel
{
    public MiniModel()
    {
        Train = DataCatalog.Load("mnist-mini", Split.Train);
        Test = DataCatalog.Load("mnist-mini", Split.Test);
        FashionTrain = DataCatalog.Load("fashion-mnist-mini", Split.Train);
        FashionTest = DataCatalog.Load("fashion-mnist-mini", Split.Test);
        Graph = ModelZoo.Build("cnn-s", seed: 0);
        Trainer.Train(Graph, Train, Test, new TrainOptions { Epochs = 2, BatchSize = 32, Seed = 0 });
        Calibration = CalibrationSet.FromData(Train, Graph.InputShape, 128);
    }

    public Dataset Train { get; }
    public Dataset Test { get; }
    public Dataset FashionTrain { get; }
    public Dataset FashionTest { get; }
    public Compiler.Graphs.Graph Graph { get; }
    public CalibrationSet Calibration { get; }

    public CompileResult Compile(string update) => PlanCompiler.Compile(Graph, Calibration, new CompileOptions { Update = update });
}
