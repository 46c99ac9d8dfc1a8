namespace TinyTrain.Emulator.Device;

using TinyTrain.Compiler.Data;
using TinyTrain.Emulator.Streams;
using TinyTrain.Runtime.Execution;

/// <summary>
/// Per-task accuracy for class-incremental streams. A task is a class subset (a segment written <c>set[0-1]:...</c>);
/// each distinct (data set, classes) pair is one task, seen first where its first segment starts. Each task gets a
/// held-out slice: up to N images of its classes from the *other* split of its data set (train when the stream
/// plays the test split), so the device never streams them, passed through the transform of the task's first
/// segment. The slice is scored by inference only (Executor.Invoke: no training step, no adaptation statistics),
/// so probing does not change what the device learns.
/// </summary>
public sealed class TaskProbe
{
    /// <summary>Held-out images per task unless the caller says otherwise.</summary>
    public const int DefaultHeldOut = 100;

    private readonly float[][] _inputs;
    private readonly int[][] _labels;
    private readonly int _size;

    private TaskProbe(string[] names, int[][] classes, long[] firstSample, float[][] inputs, int[][] labels, int size)
    {
        Names = names;
        Classes = classes;
        FirstSample = firstSample;
        _inputs = inputs;
        _labels = labels;
        _size = size;
    }

    /// <summary>Each task's label, e.g. "mnist[0-1]".</summary>
    public IReadOnlyList<string> Names { get; }

    public IReadOnlyList<int[]> Classes { get; }

    /// <summary>Position in the stream of each task's first sample.</summary>
    public IReadOnlyList<long> FirstSample { get; }

    public int Count => Names.Count;

    /// <summary>Held-out images of task <paramref name="task"/>.</summary>
    public int HeldOut(int task) => _labels[task].Length;

    /// <summary>
    /// The tasks of <paramref name="stream"/>, each with up to <paramref name="heldOut"/> held-out images; null when
    /// <paramref name="heldOut"/> is 0 or the stream has fewer than two tasks (nothing to compare).
    /// </summary>
    public static TaskProbe? For(DataStream stream, int heldOut = DefaultHeldOut, Func<string, Split, Dataset>? load = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentOutOfRangeException.ThrowIfNegative(heldOut);
        if (heldOut == 0) return null;
        var first = new List<DataStreamSegment>();
        foreach (DataStreamSegment segment in stream.Segments)
        {
            if (segment.Spec.Classes is null || segment.Count == 0) continue;
            if (!first.Exists(t => SameTask(t.Spec, segment.Spec))) first.Add(segment);
        }
        if (first.Count < 2) return null;

        Split other = stream.Split == Split.Test ? Split.Train : Split.Test;
        int size = stream.InputShape.Size;
        var names = new string[first.Count];
        var classes = new int[first.Count][];
        var starts = new long[first.Count];
        var inputs = new float[first.Count][];
        var labels = new int[first.Count][];
        for (int t = 0; t < first.Count; t++)
        {
            StreamSegment spec = first[t].Spec;
            classes[t] = [.. spec.Classes!];
            names[t] = $"{spec.BaseSet}[{StreamSegment.FormatClasses(spec.Classes!)}]";
            starts[t] = first[t].Start;
            // One pass over the task's images in the other split, in the stream's seeded order; the first N are kept.
            var slice = new StreamSegment(spec.Source, spec.BaseSet, classes[t], spec.Corruption, spec.Severity, null, LabelRule.None);
            var held = new DataStream(new StreamSpec([slice], null), stream.Seed, stream.InputShape, other, load);
            int n = Math.Min(heldOut, held.Segments[0].Count);
            inputs[t] = new float[n * size];
            labels[t] = new int[n];
            int i = 0;
            foreach (StreamSample sample in held)
            {
                if (i == n) break;
                held.FillInput(sample, inputs[t], i * size);
                labels[t][i++] = sample.Label;
            }
        }
        return new TaskProbe(names, classes, starts, inputs, labels, size);
    }

    /// <summary>Accuracy of the executor's current parameters on task <paramref name="task"/>'s held-out images (inference only).</summary>
    public double Evaluate(Executor executor, int task)
    {
        ArgumentNullException.ThrowIfNull(executor);
        float[] inputs = _inputs[task];
        int[] labels = _labels[task];
        int predicted = 0, correct = 0;
        for (int i = 0; i < labels.Length; i++)
        {
            if (!executor.TrySetInput(inputs, i * _size)) continue;
            executor.Invoke();
            predicted++;
            if (executor.ArgMax() == labels[i]) correct++;
        }
        return predicted == 0 ? 0 : (double)correct / predicted;
    }

    private static bool SameTask(StreamSegment a, StreamSegment b) =>
        a.BaseSet == b.BaseSet && a.Classes!.SequenceEqual(b.Classes!);
}
