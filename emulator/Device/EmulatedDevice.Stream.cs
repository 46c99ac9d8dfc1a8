namespace TinyTrain.Emulator.Device;

using TinyTrain.Compiler.Graphs;
using TinyTrain.Emulator.Report;
using TinyTrain.Emulator.Streams;
using TinyTrain.Runtime.Plans;

public sealed partial class EmulatedDevice
{
    /// <summary>The plan's input shape, for opening a DataStream that fills it.</summary>
    public Shape InputShape
    {
        get
        {
            TensorInfo input = Plan.Tensor(Plan.InputTensor);
            return new Shape(input.C, input.H, input.W);
        }
    }

    /// <summary>
    /// Runs every sample of <paramref name="stream"/> through the device (Begin, Feed per sample, Finish).
    /// <paramref name="progress"/> hears (done, total) every few samples and at the end. When the stream has two or
    /// more tasks (class subsets), each task seen so far is scored on <paramref name="taskHeldOut"/> held-out images
    /// at the end of every window (<see cref="TaskProbe"/>, inference only); 0 turns that off.
    /// </summary>
    public EmulationReport Run(DataStream stream, Action<int, int>? progress = null, int window = DefaultWindow, int taskHeldOut = TaskProbe.DefaultHeldOut)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (stream.InputShape != InputShape)
            throw new TinyTrainException($"the stream fills inputs of shape {stream.InputShape} but the plan's model takes {InputShape}; open the stream with the plan's input shape");
        if (stream.TotalCount > int.MaxValue)
            throw new TinyTrainException($"the stream has {stream.TotalCount:N0} samples; the emulator takes at most {int.MaxValue:N0}");
        int total = (int)stream.TotalCount;
        var names = new string[stream.Segments.Count];
        for (int s = 0; s < names.Length; s++) names[s] = stream.Segments[s].Name;
        ArgumentOutOfRangeException.ThrowIfLessThan(window, 1);
        TaskProbe? probe = TaskProbe.For(stream, taskHeldOut);
        double?[][] taskAccuracy = new double?[probe?.Count ?? 0][];
        for (int t = 0; t < taskAccuracy.Length; t++) taskAccuracy[t] = new double?[(total + window - 1) / window];
        Begin(names, total);
        float[] input = new float[InputShape.Size];
        int done = 0, every = Math.Max(1, total / 200);
        foreach (StreamSample sample in stream)
        {
            stream.FillInput(sample, input, 0);
            Feed(sample.Segment, input, 0, sample.Label, sample.Labelled);
            done++;
            if (probe is not null && (done % window == 0 || done == total))
            {
                // Tasks whose first sample has been seen, scored where the windowed accuracy is.
                for (int t = 0; t < probe.Count; t++)
                    if (probe.FirstSample[t] < done) taskAccuracy[t][(done - 1) / window] = probe.Evaluate(_executor, t);
            }
            if (progress is not null && (done % every == 0 || done == total)) progress(done, total);
        }
        TaskReport[]? tasks = null;
        if (probe is not null)
        {
            tasks = new TaskReport[probe.Count];
            for (int t = 0; t < tasks.Length; t++)
                tasks[t] = new TaskReport(probe.Names[t], probe.Classes[t], (int)probe.FirstSample[t], probe.HeldOut(t), taskAccuracy[t]);
        }
        return Finish(window, tasks);
    }
}
