using System.Collections;
using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Graphs;
using TinyTrain.Emulator.Corruptions;

namespace TinyTrain.Emulator.Streams;

/// <summary>
/// A <see cref="StreamSpec"/> opened with a seed: the data sets loaded, each segment's pool of images chosen, and
/// its corruption resolved. Enumerating it yields the samples a deployed device would see, in order, allocating
/// nothing per sample. The same spec, seed and split give the same samples, corruption seeds and labels on every
/// machine (all seeds come from <see cref="StreamSeeds"/>).
/// </summary>
/// <remarks>
/// Each segment draws from its data set's split (test by default), restricted to its classes, in a seeded shuffled
/// order; a segment longer than its pool starts a new pass with a new shuffle, so every image appears once per pass.
/// </remarks>
public sealed class DataStream : IEnumerable<StreamSample>
{
    /// <summary>Width and height of the image sets' samples.</summary>
    public const int Side = 28;

    private readonly DataStreamSegment[] _segments;

    /// <param name="spec">What to stream.</param>
    /// <param name="seed">Decides the order and the corruptions' randomness.</param>
    /// <param name="input">The model's input shape, for <see cref="FillInput"/>; 1x28x28 when null.</param>
    /// <param name="split">Which split the samples come from.</param>
    /// <param name="load">Loads a data set; DataCatalog.Load when null (tests pass their own).</param>
    public DataStream(StreamSpec spec, ulong seed, Shape? input = null, Split split = Split.Test, Func<string, Split, Dataset>? load = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        load ??= DataCatalog.Load;
        Spec = spec;
        Seed = seed;
        Split = split;
        InputShape = input ?? new Shape(1, Side, Side);
        if (InputShape.C < 1 || InputShape.H < 1 || InputShape.W < 1)
            throw new ArgumentException($"Input shape {InputShape} must be positive in every dimension.", nameof(input));

        var sets = new Dictionary<string, Dataset>(StringComparer.Ordinal);
        _segments = new DataStreamSegment[spec.Segments.Count];
        long start = 0;
        for (int s = 0; s < _segments.Length; s++)
        {
            StreamSegment segment = spec.Segments[s];
            string where = $"stream segment {s + 1} ('{segment}')";
            if (!sets.TryGetValue(segment.BaseSet, out Dataset? data))
            {
                try
                {
                    data = load(segment.BaseSet, split);
                }
                catch (TinyTrainException e)
                {
                    throw new TinyTrainException($"{where}: {e.Message}", e);
                }
                if (sets.Count == 0)
                {
                    Rows = data.Rows;
                    Cols = data.Cols;
                }
                else if (data.Rows != Rows || data.Cols != Cols)
                    throw new TinyTrainException(
                        $"{where}: data set '{segment.BaseSet}' has {data.Rows}x{data.Cols} samples, earlier segments {Rows}x{Cols}; one stream feeds one model, so every segment needs the same size.");
                sets.Add(segment.BaseSet, data);
            }

            int[] pool = Pool(data, segment, where, split);
            ICorruption? corruption = segment.IsClean ? null : CorruptionCatalog.Get(segment.Corruption);
            int count = segment.Count ?? pool.Length;
            _segments[s] = new DataStreamSegment(s, segment, start, count, data, pool, corruption);
            start += count;
        }
        TotalCount = start;
    }

    public StreamSpec Spec { get; }
    public ulong Seed { get; }
    public Split Split { get; }

    /// <summary>Size of every sample: 28x28 for the image sets, 6 rows (channels) x 64 columns (time) for imu-gestures.</summary>
    public int Rows { get; }
    public int Cols { get; }

    /// <summary>The shape <see cref="FillInput"/> writes: the model's input.</summary>
    public Shape InputShape { get; }

    public IReadOnlyList<DataStreamSegment> Segments => _segments;

    /// <summary>Samples in the whole stream.</summary>
    public long TotalCount { get; }

    /// <summary>Opens <paramref name="spec"/> (text, or @file.json) with the file's seed, else <paramref name="seed"/>.</summary>
    public static DataStream Open(string spec, ulong seed = 0, Shape? input = null, Split split = Split.Test)
    {
        StreamSpec parsed = StreamSpec.Parse(spec);
        return new DataStream(parsed, parsed.Seed ?? seed, input, split);
    }

    /// <summary>Writes the sample's pixels as the model's input floats (see <see cref="StreamInput"/>), ready for
    /// Executor.TrySetInput(destination, offset).</summary>
    public void FillInput(in StreamSample sample, float[] destination, int offset) =>
        StreamInput.Fill(sample.Pixels, Rows, Cols, InputShape, destination, offset);

    public Enumerator GetEnumerator() => new(this);

    IEnumerator<StreamSample> IEnumerable<StreamSample>.GetEnumerator() => GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    private static int[] Pool(Dataset data, StreamSegment segment, string where, Split split)
    {
        if (segment.Classes is null)
        {
            int[] all = new int[data.Count];
            for (int i = 0; i < all.Length; i++) all[i] = i;
            if (all.Length == 0)
                throw new TinyTrainException($"{where}: the {SplitName(split)} split of '{segment.BaseSet}' is empty.");
            return all;
        }
        var wanted = new bool[data.NumClasses];
        foreach (int c in segment.Classes)
        {
            if (c >= data.NumClasses)
                throw new TinyTrainException($"{where}: class {c} is not in '{segment.BaseSet}', which has classes 0..{data.NumClasses - 1}.");
            wanted[c] = true;
        }
        var pool = new List<int>();
        for (int i = 0; i < data.Count; i++)
            if (wanted[data.Labels[i]]) pool.Add(i);
        if (pool.Count == 0)
            throw new TinyTrainException(
                $"{where}: the {SplitName(split)} split of '{segment.BaseSet}' has no sample of classes [{StreamSegment.FormatClasses(segment.Classes)}].");
        return [.. pool];
    }

    private static string SplitName(Split split) => split == Split.Test ? "test" : "train";

    /// <summary>
    /// Walks the stream. Holds one pixel buffer that every sample shares: a sample is valid until the next
    /// MoveNext. Allocates only when created.
    /// </summary>
    public sealed class Enumerator : IEnumerator<StreamSample>
    {
        private readonly DataStream _stream;
        private readonly byte[] _pixels;
        private readonly int[] _order;
        private int _segment;
        private int _index;
        private long _position;
        private StreamSample _current;

        internal Enumerator(DataStream stream)
        {
            _stream = stream;
            _pixels = new byte[stream.Rows * stream.Cols];
            int largest = 0;
            foreach (DataStreamSegment segment in stream._segments)
                largest = Math.Max(largest, segment.Pool.Length);
            _order = new int[largest];
        }

        /// <summary>The current sample; its pixels are valid until the next MoveNext.</summary>
        public StreamSample Current => _current;

        object IEnumerator.Current => _current;

        public bool MoveNext()
        {
            DataStreamSegment[] segments = _stream._segments;
            while (_segment < segments.Length && _index >= segments[_segment].Count)
            {
                _segment++;
                _index = 0;
            }
            if (_segment >= segments.Length)
                return false;

            DataStreamSegment segment = segments[_segment];
            int[] pool = segment.Pool;
            int slot = _index % pool.Length;
            if (slot == 0)
                Shuffle(pool, StreamSeeds.Order(_stream.Seed, _segment, _index / pool.Length));
            int source = _order[slot];
            ulong seed = StreamSeeds.Sample(_stream.Seed, _segment, _index);
            int size = _pixels.Length;
            ReadOnlySpan<byte> image = segment.Data.Images.AsSpan(source * size, size);
            if (segment.Corruption is null)
                image.CopyTo(_pixels);
            else
                segment.Corruption.Apply(image, _pixels, _stream.Cols, _stream.Rows, segment.Spec.Severity, seed);
            _current = new StreamSample(_segment, _index, _position, source, segment.Data.Labels[source],
                segment.Spec.Labels.IsLabelled(_index), seed, _pixels);
            _index++;
            _position++;
            return true;
        }

        public void Reset()
        {
            _segment = 0;
            _index = 0;
            _position = 0;
            _current = default;
        }

        public void Dispose()
        {
        }

        // Fisher-Yates from the pool's own order, so that a pass's order depends only on (seed, segment, pass).
        private void Shuffle(int[] pool, ulong seed)
        {
            Array.Copy(pool, _order, pool.Length);
            var rng = new SplitMix64(seed);
            for (int i = pool.Length - 1; i > 0; i--)
            {
                int j = rng.NextInt(0, i + 1);
                (_order[i], _order[j]) = (_order[j], _order[i]);
            }
        }
    }
}

/// <summary>One segment of an opened stream: its spec, where it starts in the stream, and how many samples it has.</summary>
public sealed class DataStreamSegment
{
    internal DataStreamSegment(int index, StreamSegment spec, long start, int count, Dataset data, int[] pool, ICorruption? corruption)
    {
        Index = index;
        Spec = spec;
        Start = start;
        Count = count;
        Data = data;
        Pool = pool;
        Corruption = corruption;
    }

    public int Index { get; }
    public StreamSegment Spec { get; }

    /// <summary>A readable label, e.g. "mnist-c:fog".</summary>
    public string Name => Spec.Name;

    /// <summary>Position in the stream of the segment's first sample.</summary>
    public long Start { get; }

    /// <summary>Samples in the segment: the spec's count, or one pass over <see cref="Available"/>.</summary>
    public int Count { get; }

    /// <summary>How many distinct images the segment draws from (its classes, in the stream's split).</summary>
    public int Available => Pool.Length;

    /// <summary>How many of its samples are labelled.</summary>
    public int LabelledCount => Spec.Labels.LabelledCount(Count);

    public IReadOnlyList<string> ClassNames => Data.ClassNames;

    internal Dataset Data { get; }
    internal int[] Pool { get; }
    internal ICorruption? Corruption { get; }
}
