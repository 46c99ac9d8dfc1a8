namespace TinyTrain.Compiler.Planning;

/// <summary>One buffer the arena must hold from op FirstUse to op LastUse (inclusive, in execution order).</summary>
public sealed record BufferRequest(string Name, int Size, int FirstUse, int LastUse)
{
    public bool OverlapsInTime(BufferRequest other) => FirstUse <= other.LastUse && other.FirstUse <= LastUse;

    /// <summary>
    /// Another request (-1: none) this one may overlap, at offsets anchor + <see cref="AnchorDelta"/> + m * <see cref="AnchorStep"/>
    /// for m in 0..<see cref="AnchorSteps"/>, although their lifetimes touch: the output of an op that runs in place over its
    /// dying input in a layout the op allows (a 1x1 conv: whole planes). The greedy planner takes such an offset when it is
    /// the lowest one free of every other buffer; the anchor must be placed first (it is at least as large).
    /// </summary>
    public int Anchor { get; init; } = -1;
    public int AnchorDelta { get; init; }
    public int AnchorStep { get; init; }
    public int AnchorSteps { get; init; }
}

public enum PlannerMode
{
    /// <summary>Largest buffer first, each at the lowest offset free for its whole lifetime (TFLite Micro's greedy-by-size); then the
    /// same first fit in two more orders (largest size x lifetime first; first to come to life first), the smallest arena kept.</summary>
    Greedy,
    /// <summary>Every buffer at its own offset, one after another: the baseline and a debugging aid.</summary>
    Naive,
    /// <summary>Greedy-by-size alone (the first order <see cref="Greedy"/> tries): the comparison Greedy is held to.</summary>
    GreedyBySize,
}

/// <summary>Offsets for every request, the arena size (peak) they need, and the naive size for comparison.</summary>
public sealed record MemoryPlan(IReadOnlyList<BufferRequest> Requests, IReadOnlyList<int> Offsets, int PeakBytes, int NaiveBytes, PlannerMode Mode);

/// <summary>Plan memory: tensor lifetimes to arena offsets; the peak is the arena size.</summary>
public static class MemoryPlanner
{
    public const int Alignment = 4;

    public static MemoryPlan Plan(IReadOnlyList<BufferRequest> requests, PlannerMode mode = PlannerMode.Greedy)
    {
        var offsets = new int[requests.Count];
        int naive = 0;
        foreach (BufferRequest r in requests)
        {
            if (r.Size < 0 || r.FirstUse > r.LastUse)
                throw new ArgumentException($"buffer '{r.Name}': size {r.Size}, lifetime {r.FirstUse}..{r.LastUse}");
            naive = Align(naive) + r.Size;
        }

        if (mode == PlannerMode.Naive)
        {
            int next = 0;
            for (int i = 0; i < requests.Count; i++)
            {
                offsets[i] = Align(next);
                next = offsets[i] + requests[i].Size;
            }
            return new MemoryPlan(requests, offsets, Peak(requests, offsets), naive, mode);
        }

        // Greedy-by-size first; then the same first-fit placement in other orders, kept only where its arena is smaller, so the
        // plan is never looser than greedy-by-size: large long-lived buffers first, and buffers in the order they come to life.
        int[] bySize = Enumerable.Range(0, requests.Count)
            .OrderByDescending(i => requests[i].Size).ThenBy(i => requests[i].FirstUse).ThenBy(i => i).ToArray();
        int[] bestOffsets = Place(requests, bySize);
        int bestPeak = Peak(requests, bestOffsets);
        if (mode == PlannerMode.GreedyBySize) return new MemoryPlan(requests, bestOffsets, bestPeak, naive, mode);
        int[][] others =
        [
            Enumerable.Range(0, requests.Count).OrderByDescending(i => (long)requests[i].Size * (requests[i].LastUse - requests[i].FirstUse + 1))
                .ThenBy(i => requests[i].FirstUse).ThenBy(i => i).ToArray(),
            Enumerable.Range(0, requests.Count).OrderBy(i => requests[i].FirstUse).ThenByDescending(i => requests[i].Size).ThenBy(i => i).ToArray(),
        ];
        foreach (int[] order in others)
        {
            int[] tried = Place(requests, order);
            int peak = Peak(requests, tried);
            if (peak < bestPeak) (bestOffsets, bestPeak) = (tried, peak);
        }
        return new MemoryPlan(requests, bestOffsets, bestPeak, naive, mode);
    }

    // First fit in the given order (a request anchored to another right after it), each at the lowest offset free for its lifetime.
    private static int[] Place(IReadOnlyList<BufferRequest> requests, int[] bySize)
    {
        var offsets = new int[requests.Count];
        // A request anchored to another is placed right after it, before larger buffers can take the anchor's space.
        var order = new List<int>();
        var queued = new bool[requests.Count];
        void Queue(int i)
        {
            if (queued[i]) return;
            queued[i] = true;
            order.Add(i);
            foreach (int k in bySize)
                if (requests[k].Anchor == i) Queue(k);
        }
        foreach (int i in bySize)
            if (requests[i].Anchor < 0 || requests[i].Anchor >= requests.Count) Queue(i);
        foreach (int i in bySize) Queue(i);
        var placed = new List<int>();
        foreach (int i in order)
        {
            BufferRequest r = requests[i];
            // Buffers alive at the same time as r, lowest offset first: take the first gap that fits.
            var live = placed.Where(j => requests[j].OverlapsInTime(r) && requests[j].Size > 0)
                .OrderBy(j => offsets[j]).ToList();
            int candidate = 0;
            foreach (int j in live)
            {
                if (candidate + r.Size <= offsets[j]) break;
                candidate = Math.Max(candidate, Align(offsets[j] + requests[j].Size));
            }
            if (r.Anchor >= 0 && placed.Contains(r.Anchor))
                for (int m = 0; m <= r.AnchorSteps; m++)
                {
                    int at = offsets[r.Anchor] + r.AnchorDelta + m * r.AnchorStep;
                    if (at < 0 || at >= candidate) continue;
                    if (live.All(j => j == r.Anchor || at + r.Size <= offsets[j] || offsets[j] + requests[j].Size <= at))
                    {
                        candidate = at;
                        break;
                    }
                }
            offsets[i] = candidate;
            placed.Add(i);
        }
        return offsets;
    }

    private static int Peak(IReadOnlyList<BufferRequest> requests, int[] offsets)
    {
        int peak = 0;
        for (int i = 0; i < requests.Count; i++) peak = Math.Max(peak, offsets[i] + requests[i].Size);
        return peak;
    }

    private static int Align(int offset) => (offset + Alignment - 1) / Alignment * Alignment;
}
