namespace TinyTrain.Emulator.Streams;

/// <summary>
/// One sample of a <see cref="DataStream"/>. <see cref="Pixels"/> is the enumerator's own buffer, rewritten by
/// every MoveNext: the sample is valid until the next MoveNext; copy the pixels to keep them.
/// </summary>
public readonly struct StreamSample
{
    internal StreamSample(int segment, int index, long position, int sourceIndex, int label, bool labelled, ulong seed, byte[] pixels)
    {
        Segment = segment;
        Index = index;
        Position = position;
        SourceIndex = sourceIndex;
        Label = label;
        Labelled = labelled;
        Seed = seed;
        Pixels = pixels;
    }

    /// <summary>Which segment (0-based) the sample belongs to.</summary>
    public int Segment { get; }

    /// <summary>The sample's place in its segment, 0-based.</summary>
    public int Index { get; }

    /// <summary>The sample's place in the whole stream, 0-based.</summary>
    public long Position { get; }

    /// <summary>Which image of the segment's data set (and split) it was made from.</summary>
    public int SourceIndex { get; }

    /// <summary>The true label, always: for measuring accuracy even when the learner may not see it.</summary>
    public int Label { get; }

    /// <summary>Whether the segment's labelling rule lets the learner use <see cref="Label"/>.</summary>
    public bool Labelled { get; }

    /// <summary>The seed the corruption was given (StreamSeeds.Sample of stream seed, segment and index).</summary>
    public ulong Seed { get; }

    /// <summary>The sample after the segment's transform: 28x28 grey pixels row-major, or an imu-gestures window (6 channels x 64). Valid until the next MoveNext.</summary>
    public byte[] Pixels { get; }
}
