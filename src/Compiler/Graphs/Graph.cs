namespace TinyTrain.Compiler.Graphs;

/// <summary>
/// A float model: nodes in topological order, one input (node 0) and one output (the last node,
/// the logits). Every later pass of the compiler reads and returns graphs of this kind.
/// </summary>
public sealed class Graph
{
    public Graph(string name, IReadOnlyList<Node> nodes)
    {
        if (nodes.Count == 0 || nodes[0].Kind != OpKind.Input)
            throw new TinyTrainException($"graph '{name}': the first node must be the input");
        for (int i = 0; i < nodes.Count; i++)
        {
            if (nodes[i].Id != i)
                throw new TinyTrainException($"graph '{name}': node '{nodes[i].Name}' has id {nodes[i].Id}, expected {i}");
            foreach (int input in nodes[i].Inputs)
                if (input < 0 || input >= i)
                    throw new TinyTrainException($"graph '{name}': node '{nodes[i].Name}' reads node {input}, which does not come before it");
        }
        Name = name;
        Nodes = nodes;
    }

    public string Name { get; }
    public IReadOnlyList<Node> Nodes { get; }
    public Node Input => Nodes[0];
    public Node Output => Nodes[^1];
    public Shape InputShape => Input.Shape;
    public int NumClasses => Output.Shape.Size;

    public IEnumerable<Tensor> Parameters()
    {
        foreach (Node n in Nodes)
            foreach (Tensor t in n.Parameters())
                yield return t;
    }

    public int ParameterCount()
    {
        int count = 0;
        foreach (Tensor t in Parameters()) count += t.Length;
        return count;
    }

    /// <summary>A deep copy: same structure, own parameter and statistics arrays.</summary>
    public Graph Clone()
    {
        var nodes = new List<Node>(Nodes.Count);
        foreach (Node n in Nodes)
        {
            nodes.Add(new Node
            {
                Id = n.Id, Name = n.Name, Kind = n.Kind, Inputs = (int[])n.Inputs.Clone(), Shape = n.Shape,
                Kernel = n.Kernel, Stride = n.Stride, Padding = n.Padding, Groups = n.Groups,
                Epsilon = n.Epsilon, Momentum = n.Momentum,
                WeightScaleFloor = n.WeightScaleFloor, RangeLike = n.RangeLike, RangeFraction = n.RangeFraction,
                Weight = n.Weight?.Clone(), Bias = n.Bias?.Clone(),
                RunningMean = n.RunningMean?.Clone(), RunningVar = n.RunningVar?.Clone(),
            });
        }
        return new Graph(Name, nodes);
    }
}
