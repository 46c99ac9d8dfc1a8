namespace TinyTrain.Runtime.Execution;

using PlanImage = TinyTrain.Runtime.Plans.Plan;

/// <summary>
/// Measures how much of the arena a run really touches: two executors painted with 0x00 and 0xFF
/// run the same input; a byte that was written differs from at least one of the paints.
/// </summary>
public static class ArenaProbe
{
    public static int MeasureInference(PlanImage plan, byte[] input, int offset)
    {
        int high = 0;
        foreach (byte paint in new byte[] { 0x00, 0xFF })
        {
            var executor = new Executor(plan, paint);
            executor.SetInput(input, offset);
            executor.Invoke();
            high = Math.Max(high, executor.HighWaterMark());
        }
        return high;
    }

    /// <summary>The arena bytes one real training step touches (forward, backward, updates).</summary>
    public static int MeasureTrainStep(PlanImage plan, byte[] input, int offset, int label)
    {
        int high = 0;
        foreach (byte paint in new byte[] { 0x00, 0xFF })
        {
            var executor = new Executor(plan, paint);
            executor.SetInput(input, offset);
            executor.TrainStep(label);
            high = Math.Max(high, executor.HighWaterMark());
        }
        return high;
    }

    /// <summary>
    /// The arena bytes one label-free adaptation step touches; <paramref name="learned"/> says whether the sample passed
    /// the plan's entropy filter (a filtered sample runs no backward, so it touches less).
    /// </summary>
    public static int MeasureAdaptStep(PlanImage plan, byte[] input, int offset, out bool learned)
    {
        int high = 0;
        learned = true;
        foreach (byte paint in new byte[] { 0x00, 0xFF })
        {
            var executor = new Executor(plan, paint);
            executor.SetInput(input, offset);
            executor.AdaptStep();
            learned &= executor.LastStepLearned;
            high = Math.Max(high, executor.HighWaterMark());
        }
        return high;
    }
}
