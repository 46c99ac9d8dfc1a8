using TinyTrain.Compiler.Graphs;
using TinyTrain.Compiler.Training.Ops;

namespace TinyTrain.Compiler.Training;

/// <summary>
/// Executes a float graph on batches of up to MaxBatch samples (NCHW), forward and backward.
/// Buffers are allocated once when bound; parameters are read from the graph's tensors, so an
/// optimizer that updates those tensors is seen by the next step.
/// </summary>
public sealed class FloatNetwork
{
    private readonly Graphs.Graph _graph;
    private readonly float[][] _act;      // per node: (MaxBatch, size)
    private readonly float[][] _grad;     // per node: dL/d(output), same shape
    private readonly bool[] _needsGrad;   // does anyone need dL/d(this node's output)?
    private readonly ConvGeometry[] _conv;
    private readonly float[][] _savedMean, _savedInvStd;
    private readonly int _workers;
    private readonly float[][] _workerCol;              // im2col scratch per worker
    private readonly float[][][] _workerDw, _workerDb;  // per worker, per node: partial conv gradients

    public FloatNetwork(Graphs.Graph graph, int maxBatch)
    {
        if (maxBatch < 1) throw new ArgumentOutOfRangeException(nameof(maxBatch));
        _graph = graph;
        MaxBatch = maxBatch;
        int count = graph.Nodes.Count;
        _act = new float[count][];
        _grad = new float[count][];
        _needsGrad = new bool[count];
        _conv = new ConvGeometry[count];
        _savedMean = new float[count][];
        _savedInvStd = new float[count][];
        _workers = Math.Max(1, Math.Min(Environment.ProcessorCount, maxBatch));
        int scratch = 1;
        foreach (Node node in graph.Nodes)
        {
            _act[node.Id] = new float[maxBatch * node.Shape.Size];
            if (node.Kind == OpKind.Conv2d)
            {
                Shape x = graph.Nodes[node.Inputs[0]].Shape;
                _conv[node.Id] = new ConvGeometry(x.C, x.H, x.W, node.Shape.C, node.Shape.H, node.Shape.W,
                    node.Kernel, node.Stride, node.Padding, node.Groups);
                scratch = Math.Max(scratch, _conv[node.Id].ScratchFloats);
            }
            if (node.Kind == OpKind.BatchNorm)
            {
                _savedMean[node.Id] = new float[node.Shape.C];
                _savedInvStd[node.Id] = new float[node.Shape.C];
            }
        }
        // A node's output gradient is needed when it has parameters upstream of the loss path:
        // everything after the input needs one, the input itself does not.
        for (int i = 1; i < count; i++)
        {
            _needsGrad[i] = true;
            _grad[i] = new float[maxBatch * graph.Nodes[i].Shape.Size];
        }
        _workerCol = new float[_workers][];
        _workerDw = new float[_workers][][];
        _workerDb = new float[_workers][][];
        for (int w = 0; w < _workers; w++)
        {
            _workerCol[w] = new float[scratch];
            _workerDw[w] = new float[count][];
            _workerDb[w] = new float[count][];
            foreach (Node node in graph.Nodes)
            {
                if (node.Kind != OpKind.Conv2d) continue;
                _workerDw[w][node.Id] = new float[node.Weight!.Length];
                if (node.Bias is not null) _workerDb[w][node.Id] = new float[node.Bias.Length];
            }
        }
        var gradients = new Dictionary<Tensor, float[]>(ReferenceEqualityComparer.Instance);
        foreach (Tensor t in graph.Parameters()) gradients[t] = new float[t.Length];
        Gradients = gradients;
    }

    public Graphs.Graph Graph => _graph;
    public int MaxBatch { get; }
    /// <summary>dL/dθ for every parameter tensor, filled by Backward.</summary>
    public IReadOnlyDictionary<Tensor, float[]> Gradients { get; }
    /// <summary>Write up to MaxBatch samples here (NCHW) before Forward.</summary>
    public float[] InputBuffer => _act[0];

    /// <summary>The output of node <paramref name="nodeId"/> for the first n samples of the last Forward.</summary>
    public ReadOnlySpan<float> Activation(int nodeId, int n) => _act[nodeId].AsSpan(0, n * _graph.Nodes[nodeId].Shape.Size);

    /// <summary>Runs the graph on the first n samples of InputBuffer; returns the logits buffer (n x classes valid).</summary>
    public float[] Forward(int n, bool training)
    {
        CheckBatch(n);
        foreach (Node node in _graph.Nodes)
        {
            if (node.Kind == OpKind.Input) continue;
            float[] y = _act[node.Id];
            float[] x = _act[node.Inputs[0]];
            Shape xs = _graph.Nodes[node.Inputs[0]].Shape, ys = node.Shape;
            switch (node.Kind)
            {
                case OpKind.Conv2d:
                {
                    ConvGeometry g = _conv[node.Id];
                    float[] w = node.Weight!.Data;
                    float[]? b = node.Bias?.Data;
                    ForEachSample(n, (s, worker) =>
                        Conv2dOp.Forward(g, x, s * xs.Size, w, b, y, s * ys.Size, _workerCol[worker]));
                    break;
                }
                case OpKind.Linear:
                    LinearOp.Forward(x, node.Weight!.Data, node.Bias?.Data, y, n, xs.Size, ys.Size);
                    break;
                case OpKind.BatchNorm:
                    if (training)
                        BatchNormOp.ForwardTrain(x, y, n, ys.C, ys.H * ys.W, node.Weight!.Data, node.Bias!.Data,
                            node.RunningMean!.Data, node.RunningVar!.Data, node.Momentum, node.Epsilon,
                            _savedMean[node.Id], _savedInvStd[node.Id]);
                    else
                        BatchNormOp.ForwardInference(x, y, n, ys.C, ys.H * ys.W, node.Weight!.Data, node.Bias!.Data,
                            node.RunningMean!.Data, node.RunningVar!.Data, node.Epsilon);
                    break;
                case OpKind.Relu:
                    ElementwiseOps.ReluForward(x, y, n * ys.Size, float.PositiveInfinity);
                    break;
                case OpKind.Relu6:
                    ElementwiseOps.ReluForward(x, y, n * ys.Size, 6f);
                    break;
                case OpKind.Add:
                    ElementwiseOps.AddForward(x, _act[node.Inputs[1]], y, n * ys.Size);
                    break;
                case OpKind.AvgPool:
                    ForEachSample(n, (s, _) => PoolOps.AvgPoolForward(x, s * xs.Size, y, s * ys.Size,
                        xs.C, xs.H, xs.W, ys.H, ys.W, node.Kernel, node.Stride));
                    break;
                case OpKind.GlobalAvgPool:
                    for (int s = 0; s < n; s++) PoolOps.GlobalForward(x, s * xs.Size, y, s * ys.Size, xs.C, xs.H * xs.W);
                    break;
                case OpKind.Flatten:
                    Array.Copy(x, y, n * ys.Size);
                    break;
                default:
                    throw new TinyTrainException($"node '{node.Name}': op {node.Kind} has no float forward");
            }
        }
        return _act[_graph.Output.Id];
    }

    /// <summary>
    /// Back-propagates dL/dlogits (n x classes) through the last Forward(training: true) and
    /// overwrites Gradients. All backward rules are here, one arm per op kind.
    /// </summary>
    public void Backward(float[] dLogits, int n)
    {
        CheckBatch(n);
        foreach (float[] g in Gradients.Values) Array.Clear(g);
        for (int i = 1; i < _grad.Length; i++) Array.Clear(_grad[i], 0, n * _graph.Nodes[i].Shape.Size);
        Array.Copy(dLogits, _grad[_graph.Output.Id], n * _graph.Output.Shape.Size);

        for (int id = _graph.Nodes.Count - 1; id >= 1; id--)
        {
            Node node = _graph.Nodes[id];
            float[] dy = _grad[id];
            int xId = node.Inputs[0];
            float[] x = _act[xId];
            float[]? dx = _needsGrad[xId] ? _grad[xId] : null;
            Shape xs = _graph.Nodes[xId].Shape, ys = node.Shape;
            switch (node.Kind)
            {
                case OpKind.Conv2d:
                    ConvBackward(node, n, x, xs, dy, ys, dx);
                    break;
                case OpKind.Linear:
                    LinearOp.Backward(x, node.Weight!.Data, dy, Gradients[node.Weight], node.Bias is null ? null : Gradients[node.Bias],
                        dx, n, xs.Size, ys.Size);
                    break;
                case OpKind.BatchNorm:
                    BatchNormOp.Backward(x, dy, dx, n, ys.C, ys.H * ys.W, node.Weight!.Data, _savedMean[id], _savedInvStd[id],
                        Gradients[node.Weight], Gradients[node.Bias!]);
                    break;
                case OpKind.Relu:
                    if (dx is not null) ElementwiseOps.ReluBackward(_act[id], dy, dx, n * ys.Size, float.PositiveInfinity);
                    break;
                case OpKind.Relu6:
                    if (dx is not null) ElementwiseOps.ReluBackward(_act[id], dy, dx, n * ys.Size, 6f);
                    break;
                case OpKind.Add:
                    if (dx is not null) ElementwiseOps.Accumulate(dy, dx, n * ys.Size);
                    if (_needsGrad[node.Inputs[1]]) ElementwiseOps.Accumulate(dy, _grad[node.Inputs[1]], n * ys.Size);
                    break;
                case OpKind.AvgPool:
                    if (dx is not null)
                        ForEachSample(n, (s, _) => PoolOps.AvgPoolBackward(dy, s * ys.Size, dx, s * xs.Size,
                            xs.C, xs.H, xs.W, ys.H, ys.W, node.Kernel, node.Stride));
                    break;
                case OpKind.GlobalAvgPool:
                    if (dx is not null)
                        for (int s = 0; s < n; s++) PoolOps.GlobalBackward(dy, s * ys.Size, dx, s * xs.Size, xs.C, xs.H * xs.W);
                    break;
                case OpKind.Flatten:
                    if (dx is not null) ElementwiseOps.Accumulate(dy, dx, n * ys.Size);
                    break;
                default:
                    throw new TinyTrainException($"node '{node.Name}': op {node.Kind} has no float backward");
            }
        }
    }

    private void ConvBackward(Node node, int n, float[] x, Shape xs, float[] dy, Shape ys, float[]? dx)
    {
        ConvGeometry g = _conv[node.Id];
        float[] w = node.Weight!.Data;
        int id = node.Id;
        bool hasBias = node.Bias is not null;
        for (int worker = 0; worker < _workers; worker++)
        {
            Array.Clear(_workerDw[worker][id]);
            if (hasBias) Array.Clear(_workerDb[worker][id]);
        }
        ForEachSample(n, (s, worker) => Conv2dOp.Backward(g, x, s * xs.Size, w, dy, s * ys.Size,
            _workerDw[worker][id], hasBias ? _workerDb[worker][id] : null, dx, s * xs.Size, _workerCol[worker]));
        float[] dw = Gradients[node.Weight];
        for (int worker = 0; worker < _workers; worker++)
        {
            ElementwiseOps.Accumulate(_workerDw[worker][id], dw, dw.Length);
            if (hasBias) ElementwiseOps.Accumulate(_workerDb[worker][id], Gradients[node.Bias!], node.Bias!.Length);
        }
    }

    // Splits samples 0..n-1 into one contiguous range per worker; body(sample, worker).
    private void ForEachSample(int n, Action<int, int> body)
    {
        int workers = Math.Min(_workers, n);
        if (workers == 1)
        {
            for (int s = 0; s < n; s++) body(s, 0);
            return;
        }
        Parallel.For(0, workers, worker =>
        {
            int start = n * worker / workers, end = n * (worker + 1) / workers;
            for (int s = start; s < end; s++) body(s, worker);
        });
    }

    private void CheckBatch(int n)
    {
        if (n < 1 || n > MaxBatch)
            throw new ArgumentOutOfRangeException(nameof(n), $"batch {n} outside 1..{MaxBatch}");
    }
}
