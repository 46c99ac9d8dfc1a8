using TinyTrain.Adapters.Routing;
using TinyTrain.Compiler.Data;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

namespace TinyTrain.Adapters.Tests.Routing;

public class GaussianRouterTests : IClassFixture<MiniModel>
{
    private readonly MiniModel _mini;
    private readonly PlanImage _base;

    public GaussianRouterTests(MiniModel mini)
    {
        _mini = mini;
        _base = PlanImage.Load(mini.Compile("none").Image, "base.ttplan");
    }

    private static int[] OfClasses(Dataset data, params int[] classes) => Enumerable.Range(0, data.Count).Where(i => classes.Contains(data.Labels[i])).ToArray();

    [Fact]
    public void Two_clothes_tasks_get_their_own_images_and_digits_are_left_unclaimed()
    {
        // On the features of a digits model: shirts and pullovers (0, 2) against coats and dresses (4, 3) — the
        // tasks share look-alike classes, so routing them is not trivial.
        int[][] tasks = [[0, 2], [4, 3]];
        var router = new GaussianRouter(_base);
        foreach (int[] classes in tasks) router.AddTask($"fashion-{classes[0]}-{classes[1]}", _mini.FashionTrain, OfClasses(_mini.FashionTrain, classes));
        int right = 0, total = 0, claimed = 0;
        for (int t = 0; t < tasks.Length; t++)
            foreach (int i in OfClasses(_mini.FashionTest, tasks[t]))
            {
                if (router.Route(_mini.FashionTest, i) != TaskRouter.NoTask) claimed++;
                if (router.Best() == t) right++;
                total++;
            }
        int unclaimed = 0;
        long allocated = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 300; i++)
            if (router.Route(_mini.Test, i) == TaskRouter.NoTask) unclaimed++;
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - allocated);
        float accuracy = (float)right / total, keep = (float)claimed / total, reject = unclaimed / 300f;
        Console.WriteLine($"routing {accuracy:P1}, in-task claimed {keep:P1}, digits unclaimed {reject:P1}");
        Assert.True(accuracy >= 0.7f, $"routing accuracy {accuracy:P1} over 2 tasks (chance 50 %)");
        Assert.True(keep >= 0.8f, $"only {keep:P1} of in-task images were claimed");
        Assert.True(reject >= 0.8f, $"only {reject:P1} of the digits were left unclaimed");
        Assert.Equal(2, router.TaskCount);
        // Per task and class: a float32 mean of 256, its two whitened copies, a count; and the threshold.
        // Shared: the moments and two Cholesky factors, 256 x 256 float32 triangles.
        Assert.Equal(2 * (3 * 256 * 4 + 4) + 4, router.StateBytes(0));
        Assert.Equal(3 * 4 * 256 * 257 / 2, router.SharedBytes);
    }

    [Fact]
    public void The_shared_covariance_separates_tasks_better_than_the_prototype_router()
    {
        // Four 2-class Fashion tasks; both routers see the same images and the same base features.
        var gauss = new GaussianRouter(_base);
        var prototypes = new TaskRouter(_base);
        for (int t = 0; t < 4; t++)
        {
            int[] indices = OfClasses(_mini.FashionTrain, 2 * t, 2 * t + 1);
            gauss.AddTask($"task{t}", _mini.FashionTrain, indices);
            prototypes.AddTask($"task{t}", _mini.FashionTrain, indices);
        }
        int g = 0, p = 0, total = 0;
        for (int t = 0; t < 4; t++)
            foreach (int i in OfClasses(_mini.FashionTest, 2 * t, 2 * t + 1))
            {
                gauss.Route(_mini.FashionTest, i);
                prototypes.Route(_mini.FashionTest, i);
                if (gauss.Best() == t) g++;
                if (prototypes.Best() == t) p++;
                total++;
            }
        Console.WriteLine($"routing over 4 tasks: gaussian {(float)g / total:P1}, prototypes {(float)p / total:P1}");
        Assert.True(g > p, $"gaussian router {(float)g / total:P1} vs prototype router {(float)p / total:P1}");
    }

    [Fact]
    public void Bad_input_is_refused_with_what_to_do()
    {
        var router = new GaussianRouter(_base, dimensions: 64);
        Assert.Contains("no task has been added yet", Assert.Throws<TinyTrainException>(() => router.Route(_mini.FashionTest, 0)).Message);
        Assert.Contains("no task has been added yet", Assert.Throws<TinyTrainException>(() => router.Best()).Message);
        int[] indices = OfClasses(_mini.FashionTrain, 0, 1);
        Assert.Contains("needs samples both to model its classes and to set the threshold; got 3",
            Assert.Throws<TinyTrainException>(() => router.AddTask("t", _mini.FashionTrain, indices.Take(3).ToArray())).Message);
        Assert.Contains("true-positive rate 0 must lie in (0, 1]",
            Assert.Throws<TinyTrainException>(() => router.AddTask("t", _mini.FashionTrain, indices, truePositiveRate: 0)).Message);
        Assert.Equal(0, router.TaskCount);
        router.AddTask("t", _mini.FashionTrain, indices);
        Assert.Equal("router: the input has 100 values but plan 'base.ttplan' reads 784 (its int8 input tensor); quantize the image for this plan",
            Assert.Throws<TinyTrainException>(() => router.Route(new byte[100])).Message);
        Assert.Equal(1, router.TaskCount);
        Assert.Contains("use a multiple of 32 from 32 to 2048", Assert.Throws<TinyTrainException>(() => new GaussianRouter(_base, dimensions: 100)).Message);
        Assert.Contains("shrinkage 0 must lie in (0, 1]", Assert.Throws<TinyTrainException>(() => new GaussianRouter(_base, shrinkage: 0)).Message);
        Assert.Contains("shrinkage 1.5 must lie in (0, 1]", Assert.Throws<TinyTrainException>(() => new GaussianRouter(_base, claimShrinkage: 1.5f)).Message);
    }
}
