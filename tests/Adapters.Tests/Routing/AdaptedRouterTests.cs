using TinyTrain.Adapters.Kinds;
using TinyTrain.Adapters.Packs;
using TinyTrain.Adapters.Routing;
using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Runtime.Execution;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

namespace TinyTrain.Adapters.Tests.Routing;

public class AdaptedRouterTests : IClassFixture<MiniModel>
{
    private readonly MiniModel _mini;
    private readonly PlanImage _plan;

    public AdaptedRouterTests(MiniModel mini)
    {
        _mini = mini;
        _plan = PlanImage.Load(AdapterCompiler.Compile(mini.Graph, mini.Calibration, AdapterSpec.Parse("adapter:bias")).Image, "bias.ttplan");
    }

    private static int[] OfClasses(Dataset data, int a, int b) => Enumerable.Range(0, data.Count).Where(i => data.Labels[i] == a || data.Labels[i] == b).ToArray();

    // One task's adapter learned at batch 1 from the task's mini training images, as a device would.
    private AdapterPack Learn(int[] classes, int steps = 400)
    {
        int[] train = OfClasses(_mini.FashionTrain, classes[0], classes[1]);
        var executor = new Executor(_plan) { LearningRate = 0.01f };
        executor.Seed(3);
        var quantizer = InputQuantizer.For(_plan);
        byte[] input = new byte[quantizer.Length];
        for (int s = 0; s < steps; s++)
        {
            int i = train[s % train.Length];
            quantizer.Fill(_mini.FashionTrain, i, input, 0);
            executor.SetInput(input, 0);
            executor.TrainStep(_mini.FashionTrain.Labels[i]);
        }
        return AdapterLayout.Of(_plan).Capture(executor, $"fashion-{classes[0]}-{classes[1]}", steps);
    }

    [Theory]
    [InlineData(RouteScore.Both)]
    [InlineData(RouteScore.Prototype)]
    [InlineData(RouteScore.Energy)]
    public void Each_task_scored_under_its_own_adapter_gets_its_images_and_digits_are_left_unclaimed(RouteScore mode)
    {
        // Two clothes tasks on a digits model: shirts and trousers (0, 1), sandals and bags (5, 8).
        int[][] tasks = [[0, 1], [5, 8]];
        var router = new AdaptedRouter(_plan, mode);
        foreach (int[] classes in tasks)
            router.AddTask($"fashion-{classes[0]}-{classes[1]}", Learn(classes), classes, _mini.FashionTrain, OfClasses(_mini.FashionTrain, classes[0], classes[1]));
        int right = 0, total = 0, claimed = 0;
        for (int t = 0; t < tasks.Length; t++)
            foreach (int i in OfClasses(_mini.FashionTest, tasks[t][0], tasks[t][1]))
            {
                if (router.Route(_mini.FashionTest, i) != TaskRouter.NoTask) claimed++;
                if (router.Best() == t) right++;
                total++;
            }
        int unclaimed = 0;
        for (int i = 0; i < 300; i++)
            if (router.Route(_mini.Test, i) == TaskRouter.NoTask) unclaimed++;
        float accuracy = (float)right / total, keep = (float)claimed / total, reject = unclaimed / 300f;
        Console.WriteLine($"{mode}: routing {accuracy:P1}, in-task claimed {keep:P1}, digits unclaimed {reject:P1}");
        Assert.True(accuracy >= 0.8f, $"{mode}: routing accuracy {accuracy:P1} over 2 tasks (chance 50 %)");
        Assert.True(keep >= 0.8f, $"{mode}: only {keep:P1} of in-task images were claimed");
        Assert.True(reject >= 0.5f, $"{mode}: only {reject:P1} of the digits were left unclaimed");
        Assert.Equal(2, router.PassesPerInput);
        // Prototypes (2 classes x 4 x 3136 int8) unless energy alone, the two class indices, statistics and threshold.
        Assert.Equal((mode == RouteScore.Energy ? 0 : 2 * 4 * 3136) + 2 + 20, router.StateBytes(0));
    }

    [Fact]
    public void Bad_input_is_refused_with_what_to_do()
    {
        var router = new AdaptedRouter(_plan);
        Assert.Contains("no task has been added yet", Assert.Throws<TinyTrainException>(() => router.Route(_mini.FashionTest, 0)).Message);
        Assert.Contains("no task has been added yet", Assert.Throws<TinyTrainException>(() => router.Best()).Message);
        AdapterPack pack = Learn([0, 1], steps: 20);
        int[] indices = OfClasses(_mini.FashionTrain, 0, 1);
        Assert.Contains("has class 10, but the plan's head has classes 0..9",
            Assert.Throws<TinyTrainException>(() => router.AddTask("t", pack, [0, 10], _mini.FashionTrain, indices)).Message);
        Assert.Contains("needs samples both to build prototypes and to calibrate",
            Assert.Throws<TinyTrainException>(() => router.AddTask("t", pack, [0, 1], _mini.FashionTrain, indices.Take(3).ToArray())).Message);
        AdapterPack otherKind = pack with { Kind = "clr" };
        Assert.Equal("router: task 't': refused: it is a 'clr' adapter but this plan trains a 'bias' adapter; no task was added",
            Assert.Throws<TinyTrainException>(() => router.AddTask("t", otherKind, [0, 1], _mini.FashionTrain, indices)).Message);
        Assert.Equal(0, router.TaskCount);
        router.AddTask("t", pack, [0, 1], _mini.FashionTrain, indices);
        Assert.Contains("the input has 100 values but plan 'bias.ttplan' reads 784",
            Assert.Throws<TinyTrainException>(() => router.Route(new byte[100])).Message);
        Assert.Equal(1, router.TaskCount);
        // A plan that trains nothing has no adapters to route to.
        Assert.Contains("trains nothing", Assert.Throws<TinyTrainException>(() => new AdaptedRouter(PlanImage.Load(_mini.Compile("none").Image, "base.ttplan"))).Message);
    }
}
