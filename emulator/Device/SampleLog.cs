namespace TinyTrain.Emulator.Device;

/// <summary>One segment's totals: every sample, those predicted (not skipped), correct, learned from, skipped, scored out of distribution.</summary>
public sealed record SegmentSummary(string Name, int Start, int Samples, int Predicted, int Correct, int Trained, int Skipped, int OutOfDistribution = 0)
{
    /// <summary>Correct over predicted; 0 when nothing in the segment was predicted.</summary>
    public double Accuracy => Predicted == 0 ? 0 : (double)Correct / Predicted;
}

/// <summary>What happened to each sample of a run, in stream order: its segment, its outcome, whether it was learned from.</summary>
public sealed class SampleLog
{
    private readonly string[] _names;
    private readonly int[] _segments;
    private readonly SampleOutcome[] _outcomes;
    private readonly bool[] _trained;
    private readonly bool[]? _ood;

    internal SampleLog(string[] names, int[] segments, SampleOutcome[] outcomes, bool[] trained, int count, bool[]? ood = null)
    {
        _ood = ood;
        _names = names;
        _segments = segments;
        _outcomes = outcomes;
        _trained = trained;
        Count = count;
    }

    public int Count { get; }
    public IReadOnlyList<string> SegmentNames => _names;
    public int Segment(int i) => _segments[Check(i)];
    public SampleOutcome Outcome(int i) => _outcomes[Check(i)];
    public bool Trained(int i) => _trained[Check(i)];
    /// <summary>Whether the device scored the sample out of distribution (test-time adaptation plans only).</summary>
    public bool OutOfDistribution(int i) => _ood is not null && _ood[Check(i)];

    /// <summary>Totals per segment, in segment order; a segment with no samples has zeros.</summary>
    public IReadOnlyList<SegmentSummary> Segments()
    {
        int n = _names.Length;
        int[] start = new int[n], samples = new int[n], predicted = new int[n], correct = new int[n], trained = new int[n], skipped = new int[n], ood = new int[n];
        Array.Fill(start, -1);
        for (int i = 0; i < Count; i++)
        {
            int s = _segments[i];
            if (start[s] < 0) start[s] = i;
            samples[s]++;
            if (_outcomes[i] == SampleOutcome.Skipped) skipped[s]++;
            else predicted[s]++;
            if (_outcomes[i] == SampleOutcome.Correct) correct[s]++;
            if (_trained[i]) trained[s]++;
            if (_ood is not null && _ood[i]) ood[s]++;
        }
        var result = new SegmentSummary[n];
        for (int s = 0; s < n; s++)
            result[s] = new SegmentSummary(_names[s], Math.Max(start[s], 0), samples[s], predicted[s], correct[s], trained[s], skipped[s], ood[s]);
        return result;
    }

    /// <summary>
    /// Accuracy over the trailing <paramref name="window"/> samples at every sample (fewer at the start): correct over
    /// predicted among samples (i - window, i]. NaN where every sample of the window was skipped.
    /// </summary>
    public double[] Rolling(int window)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(window, 1);
        double[] result = new double[Count];
        int predicted = 0, correct = 0;
        for (int i = 0; i < Count; i++)
        {
            Add(i, +1, ref predicted, ref correct);
            if (i >= window) Add(i - window, -1, ref predicted, ref correct);
            result[i] = predicted == 0 ? double.NaN : (double)correct / predicted;
        }
        return result;
    }

    /// <summary>
    /// Accuracy over consecutive windows of <paramref name="window"/> samples: [0, w), [w, 2w), ..., the last one
    /// possibly shorter. Each full window equals <see cref="Rolling"/> at its last sample. Null where a window was all skipped.
    /// </summary>
    public double?[] Windowed(int window)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(window, 1);
        var result = new double?[(Count + window - 1) / window];
        for (int p = 0; p < result.Length; p++)
        {
            int predicted = 0, correct = 0;
            for (int i = p * window; i < Math.Min(Count, (p + 1) * window); i++) Add(i, +1, ref predicted, ref correct);
            result[p] = predicted == 0 ? null : (double)correct / predicted;
        }
        return result;
    }

    private void Add(int i, int sign, ref int predicted, ref int correct)
    {
        if (_outcomes[i] == SampleOutcome.Skipped) return;
        predicted += sign;
        if (_outcomes[i] == SampleOutcome.Correct) correct += sign;
    }

    private int Check(int i) => (uint)i < (uint)Count ? i : throw new ArgumentOutOfRangeException(nameof(i), i, $"The log holds samples 0..{Count - 1}.");
}
