namespace TinyTrain.Runtime.Ood;

using TinyTrain.Runtime.Execution;
using TinyTrain.Runtime.Kernels;
using TinyTrain.Runtime.Plans;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

/// <summary>
/// The hyperdimensional class-prototype score: the classifier's int8 input features, projected by the seeded
/// bipolar projection (<see cref="HdProjection"/>), compared with every class prototype; the score is the best
/// similarity to any prototype, in [-1, 1]. Int8 prototypes: cosine. Bit prototypes: the projection's signs against the
/// prototype's, 1 - 2 Hamming / D (sign random projection: it falls as the angle grows).
/// The projection is computed one 32-dimension word at a time and folded into the per-class sums at once,
/// so the scratch is 32 + 128 accumulators plus one sum per prototype, never a D-long vector. Bind (the constructor)
/// allocates that scratch; a score allocates nothing.
/// </summary>
public sealed class HdScorer : IOodScorer
{
    private readonly byte[]? _image;
    private readonly int _featureOffset;
    private readonly int _features, _zeroPoint, _count, _words, _dimensions;
    private readonly uint _seed;
    private readonly bool _bits;
    private readonly byte[] _prototypes;
    private readonly int[] _h, _buckets;
    private readonly long[] _dots;
    private readonly float[] _norms;
    private readonly int[] _matches;
    private readonly HdPrototypes _model;

    /// <summary>Binds to a plan: the features are the input of its last FullyConnected op, read in its arena.</summary>
    public HdScorer(PlanImage plan, HdPrototypes prototypes)
        : this(prototypes, FeatureZeroPoint(plan, prototypes, out int offset))
    {
        _image = plan.Image;
        _featureOffset = offset;
    }

    /// <summary>Unbound: scores features given directly (<see cref="ScoreFeatures"/>), with their zero point.</summary>
    public HdScorer(HdPrototypes prototypes, int featureZeroPoint)
    {
        if (prototypes is null) throw new ArgumentNullException(nameof(prototypes));
        if (featureZeroPoint < -128 || featureZeroPoint > 127)
            throw new TinyTrainException($"hyperdimensional score: feature zero point {featureZeroPoint} is not an int8 value");
        HdConfig config = prototypes.Config;
        _model = prototypes;
        _features = prototypes.Features;
        _zeroPoint = featureZeroPoint;
        _count = prototypes.Count;
        _dimensions = config.Dimensions;
        _words = config.Words;
        _seed = config.Seed;
        _bits = config.Storage == HdStorage.Bits;
        _prototypes = prototypes.Data;
        _featureOffset = -1;
        _h = new int[HdConfig.WordDimensions];
        _buckets = new int[HdProjection.BucketCount];
        _dots = new long[_bits ? 0 : _count];
        _norms = new float[_bits ? 0 : _count];
        _matches = new int[_bits ? _count : 0];
        if (!_bits)
        {
            for (int k = 0; k < _count; k++)
            {
                long sum = 0;
                for (int d = 0; d < _dimensions; d++)
                {
                    int p = (sbyte)_prototypes[k * _dimensions + d];
                    sum += p * p;
                }
                _norms[k] = Sqrt(sum);
            }
        }
    }

    public string Name => _model.Config.Name;
    public long SramBytes => _model.SramBytes;
    public HdPrototypes Prototypes => _model;

    /// <summary>Arena offset of the features this scorer reads (-1 when unbound).</summary>
    public int FeatureOffset => _featureOffset;

    public float Score(Executor executor)
    {
        if (_image is null)
            throw new TinyTrainException("hyperdimensional score: this scorer is not bound to a plan; construct it with the plan, or call ScoreFeatures");
        OodBinding.CheckSamePlan(executor, _image, Name);
        return Similarity(executor.Arena, _featureOffset);
    }

    /// <summary>The score of the features (int8, <see cref="HdPrototypes.Features"/> of them) at <paramref name="offset"/>.</summary>
    public float ScoreFeatures(byte[] x, int offset)
    {
        HdProjection.CheckFeatures("HdScorer.ScoreFeatures", x, offset, _features, _zeroPoint);
        return Similarity(x, offset);
    }

    // Features all at their zero point project to h = 0, which has no direction: the least in-distribution score, -1.
    private float Similarity(byte[] x, int xOff)
    {
        const int n = HdConfig.WordDimensions;
        long hh = 0;
        int active = 0;
        for (int k = 0; k < _count; k++)
        {
            if (_bits) _matches[k] = 0;
            else _dots[k] = 0;
        }
        for (int w = 0; w < _words; w++)
        {
            active = HdProjection.Word(_seed, w, x, xOff, _features, _zeroPoint, _buckets, _h, 0);
            if (_bits)
            {
                uint q = 0;
                for (int b = 0; b < n; b++)
                {
                    if (_h[b] > 0)
                    {
                        q |= 1u << b;
                    }
                }
                for (int k = 0; k < _count; k++)
                {
                    int at = k * (_dimensions / 8) + w * 4;
                    uint p = (uint)(_prototypes[at] | (_prototypes[at + 1] << 8) | (_prototypes[at + 2] << 16) | (_prototypes[at + 3] << 24));
                    _matches[k] += PopCount(~(q ^ p));
                }
            }
            else
            {
                for (int b = 0; b < n; b++)
                {
                    long v = _h[b];
                    hh += v * v;
                }
                for (int k = 0; k < _count; k++)
                {
                    int at = k * _dimensions + w * n;
                    long dot = 0;
                    for (int b = 0; b < n; b++)
                    {
                        dot += (long)_h[b] * (sbyte)_prototypes[at + b];
                    }
                    _dots[k] += dot;
                }
            }
        }
        if (active == 0)
        {
            return -1f;
        }
        float best = -1f;
        if (_bits)
        {
            for (int k = 0; k < _count; k++)
            {
                float s = (2f * _matches[k] - _dimensions) / _dimensions;
                if (s > best)
                {
                    best = s;
                }
            }
            return best;
        }
        float length = Sqrt(hh);
        for (int k = 0; k < _count; k++)
        {
            // An empty prototype (nothing bundled into it) matches nothing.
            if (_norms[k] == 0f)
            {
                continue;
            }
            float s = _dots[k] / (_norms[k] * length);
            if (s > best)
            {
                best = s;
            }
        }
        return best > 1f ? 1f : best;
    }

    private static int PopCount(uint v)
    {
        v -= (v >> 1) & 0x55555555u;
        v = (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
        v = (v + (v >> 4)) & 0x0F0F0F0Fu;
        return (int)((v * 0x01010101u) >> 24);
    }

    // sqrt without System.Math (nanoFramework): e^(ln x / 2), relative error near 1e-6.
    private static float Sqrt(long x) => x <= 0 ? 0f : FloatMath.Exp(0.5f * FloatMath.Log(x));

    private static int FeatureZeroPoint(PlanImage plan, HdPrototypes prototypes, out int offset)
    {
        if (plan is null) throw new ArgumentNullException(nameof(plan));
        if (prototypes is null) throw new ArgumentNullException(nameof(prototypes));
        TensorInfo x = plan.Tensor(OodBinding.FeatureTensor(plan));
        if (x.ElementCount != prototypes.Features)
            throw new TinyTrainException(
                $"{plan.Source}: the classifier reads {x.ElementCount} features but the prototypes were built for {prototypes.Features}; rebuild them for this plan");
        if (prototypes.Classes != plan.NumClasses)
            throw new TinyTrainException(
                $"{plan.Source}: the model has {plan.NumClasses} classes but the prototypes cover {prototypes.Classes}; rebuild them for this plan");
        offset = x.ArenaOffset;
        return x.ZeroPoint;
    }
}
