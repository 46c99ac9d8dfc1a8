using TinyTrain.Adapters.Routing;
using TinyTrain.Compiler.Data;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

namespace TinyTrain.Adapters.Tests.Routing;

public class TaskRouterTests : IClassFixture<MiniModel>
{
    private readonly MiniModel _mini;

    public TaskRouterTests(MiniModel mini) => _mini = mini;

    private static int[] OfClasses(Dataset data, int a, int b) => Enumerable.Range(0, data.Count).Where(i => data.Labels[i] == a || data.Labels[i] == b).ToArray();

    [Fact]
    public void The_router_picks_the_task_of_an_unlabelled_input_and_leaves_unknown_inputs_unclaimed()
    {
        // Fashion-MNIST in 5 tasks of 2 classes, on the features of a digits model.
        var router = new TaskRouter(PlanImage.Load(_mini.Compile("none").Image));
        for (int t = 0; t < 4; t++) router.AddTask($"task{t}", _mini.FashionTrain, OfClasses(_mini.FashionTrain, 2 * t, 2 * t + 1));
        int right = 0, total = 0, claimed = 0;
        for (int t = 0; t < 4; t++)
            foreach (int i in OfClasses(_mini.FashionTest, 2 * t, 2 * t + 1))
            {
                int routed = router.Route(_mini.FashionTest, i);
                if (routed != TaskRouter.NoTask) claimed++;
                if (router.Best() == t) right++;
                total++;
            }
        // Digits are no Fashion task: most must be left unclaimed (a new task slot may start).
        int unknown = 0, unseen = 0;
        for (int i = 0; i < 300; i++)
        {
            if (router.Route(_mini.Test, i) == TaskRouter.NoTask) unknown++;
            unseen++;
        }
        float accuracy = (float)right / total, keep = (float)claimed / total, reject = (float)unknown / unseen;
        Console.WriteLine($"routing accuracy {accuracy:P1}, in-task claimed {keep:P1}, unseen task unclaimed {reject:P1}");
        Assert.True(accuracy >= 0.6f, $"routing accuracy {accuracy:P1} over 4 tasks (chance 25 %)");
        Assert.True(keep >= 0.8f, $"only {keep:P1} of in-task inputs were claimed");
        Assert.True(reject >= 0.8f, $"only {reject:P1} of the digits were left unclaimed");
        Assert.Equal(4, router.TaskCount);
        Assert.Equal(2 * 4 * 3136 + 4, router.StateBytes(0));
    }
}
