using TinyTrain.Compiler.Planning;

namespace TinyTrain.Compiler.Tests.Planning;

public class MemoryPlannerTests
{
    [Fact]
    public void Greedy_places_a_chain_in_two_alternating_slots_with_exact_offsets()
    {
        // a -> b -> c -> d: each op reads the previous buffer and writes the next.
        var requests = new[]
        {
            new BufferRequest("a", 100, 0, 0),
            new BufferRequest("b", 60, 0, 1),
            new BufferRequest("c", 100, 1, 2),
            new BufferRequest("d", 40, 2, 3),
        };
        MemoryPlan plan = MemoryPlanner.Plan(requests);
        // Largest first: a at 0; c (size 100, lives 1..2) overlaps b only, b is not placed yet -> 0;
        // b overlaps a (0..100) and c (0..100) -> 100; d overlaps c -> 100.
        Assert.Equal(new[] { 0, 100, 0, 100 }, plan.Offsets);
        Assert.Equal(160, plan.PeakBytes);
        Assert.Equal(300, plan.NaiveBytes);
    }

    [Fact]
    public void Naive_mode_puts_every_buffer_after_the_previous_one_aligned()
    {
        var requests = new[] { new BufferRequest("a", 3, 0, 0), new BufferRequest("b", 5, 1, 1) };
        MemoryPlan plan = MemoryPlanner.Plan(requests, PlannerMode.Naive);
        Assert.Equal(new[] { 0, 4 }, plan.Offsets);
        Assert.Equal(9, plan.PeakBytes);
    }

    [Fact]
    public void Greedy_never_overlaps_buffers_that_live_at_the_same_time_and_beats_naive()
    {
        var random = new Random(5);
        for (int trial = 0; trial < 200; trial++)
        {
            int n = random.Next(1, 30);
            var requests = new BufferRequest[n];
            for (int i = 0; i < n; i++)
            {
                int first = random.Next(0, 20);
                requests[i] = new BufferRequest($"t{i}", random.Next(0, 5000), first, first + random.Next(0, 6));
            }
            MemoryPlan plan = MemoryPlanner.Plan(requests);
            for (int i = 0; i < n; i++)
            {
                Assert.Equal(0, plan.Offsets[i] % MemoryPlanner.Alignment);
                for (int j = i + 1; j < n; j++)
                {
                    if (!requests[i].OverlapsInTime(requests[j]) || requests[i].Size == 0 || requests[j].Size == 0) continue;
                    bool disjoint = plan.Offsets[i] + requests[i].Size <= plan.Offsets[j] || plan.Offsets[j] + requests[j].Size <= plan.Offsets[i];
                    Assert.True(disjoint, $"trial {trial}: {requests[i]} at {plan.Offsets[i]} overlaps {requests[j]} at {plan.Offsets[j]}");
                }
            }
            Assert.True(plan.PeakBytes <= MemoryPlanner.Plan(requests, PlannerMode.Naive).PeakBytes);
        }
    }

    [Fact]
    public void Greedy_is_never_looser_than_greedy_by_size_and_tighter_where_another_order_packs_better()
    {
        var random = new Random(9);
        int tighter = 0;
        for (int trial = 0; trial < 300; trial++)
        {
            int n = random.Next(2, 24);
            var requests = new BufferRequest[n];
            for (int i = 0; i < n; i++)
            {
                int first = random.Next(0, 16);
                requests[i] = new BufferRequest($"t{i}", random.Next(1, 5000), first, first + random.Next(0, 8));
            }
            int greedy = MemoryPlanner.Plan(requests).PeakBytes, bySize = MemoryPlanner.Plan(requests, PlannerMode.GreedyBySize).PeakBytes;
            Assert.True(greedy <= bySize, $"trial {trial}: {greedy} > greedy-by-size {bySize}");
            if (greedy < bySize) tighter++;
        }
        Assert.True(tighter > 0, "no random set packed tighter than greedy-by-size");
    }
}
