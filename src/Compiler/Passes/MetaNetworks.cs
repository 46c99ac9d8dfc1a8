namespace TinyTrain.Compiler.Passes;

using TinyTrain.Compiler.Graphs;

/// <summary>
/// EcoTTA (Song et al. 2023) as a rewrite of the float model, before the compiler's passes (`--update tta:eco[:K][:dw]`).
/// The encoder is split into K parts at places no skip connection crosses; beside each part sits a meta network: a
/// 1x1 conv (C -> C; with :dw a depthwise 3x3 conv; its per-channel norm/affine folded into its weights and bias, as
/// every BatchNorm is in TinyTrain) reading the part's output x, whose output m is added to it: x~ = x + m. The conv starts at zero, so the rewritten
/// model computes exactly what the source did. TrainableSet trains the meta networks (and the scale/shift of the
/// folded convs after the first one); the objective adds lambda x the L1 distance |x~ - x| = |m| at each join.
/// </summary>
public static class MetaNetworks
{
    public const string Prefix = "tta:eco";
    /// <summary>Suffix of a meta network's conv; its join (the Add) has <see cref="JoinSuffix"/>.</summary>
    public const string ConvSuffix = ".eco";
    public const string JoinSuffix = ".eco_add";
    /// <summary>Zero-started weights may grow to +-1 (int8 steps fixed at compile time).</summary>
    public const float WeightScale = 1f / 127f;
    /// <summary>A meta network's output may reach +- this share of the larger side of the range of the part's output.</summary>
    public const float BranchRange = 0.5f;
    public const int DefaultParts = 1;

    public static bool IsSpec(string update) => update == Prefix || update.StartsWith(Prefix + ":", StringComparison.Ordinal);

    /// <summary>The places a meta network can join: block ends with a spatial output that no skip connection crosses.</summary>
    public static List<Node> Places(Graph graph)
    {
        var readers = new List<Node>[graph.Nodes.Count];
        for (int i = 0; i < readers.Length; i++) readers[i] = new List<Node>();
        foreach (Node n in graph.Nodes)
            foreach (int i in n.Inputs) readers[i].Add(n);
        var places = new List<Node>();
        // earliest[j]: the earliest node read by any node at or after j (a cut at n needs earliest[n + 1] >= n).
        var earliest = new int[graph.Nodes.Count + 1];
        earliest[graph.Nodes.Count] = int.MaxValue;
        for (int j = graph.Nodes.Count - 1; j >= 0; j--)
        {
            int e = earliest[j + 1];
            foreach (int i in graph.Nodes[j].Inputs) e = Math.Min(e, i);
            earliest[j] = e;
        }
        foreach (Node n in graph.Nodes)
        {
            if (n.Kind is not (OpKind.Conv2d or OpKind.BatchNorm or OpKind.Relu or OpKind.Relu6 or OpKind.Add)) continue;
            if (n.Shape.H * n.Shape.W <= 1 || n.Id + 1 >= graph.Nodes.Count || earliest[n.Id + 1] < n.Id) continue;
            // The end of its block: not followed by its own BatchNorm or activation.
            if (readers[n.Id].Exists(r => r.Kind is OpKind.BatchNorm or OpKind.Relu or OpKind.Relu6)) continue;
            places.Add(n);
        }
        return places;
    }

    /// <summary>
    /// The part ends for `tta:eco[:K]`: K places spread evenly, the last one always at the end of the encoder. The default
    /// is K = 1 (one meta network on the last stage): on cnn-s it is the setting within the 32 KB extra-SRAM goal (a meta
    /// network on the 14x14 stage needs float32 gradients of that stage, 46 KB in all) and the one that measured best.
    /// </summary>
    public static List<Node> PartEnds(Graph graph, string spec)
    {
        List<Node> places = Places(graph);
        if (places.Count == 0)
            throw new TinyTrainException($"--update {spec}: model '{graph.Name}' has no place for a meta network (a conv block with a spatial output that no skip connection crosses); use tta:norm or tta:tent");
        (int k, _) = Parse(spec, places.Count, graph.Name);
        var parts = new List<Node>();
        for (int p = 0; p < k; p++) parts.Add(places[(int)Math.Ceiling((p + 1) * (double)places.Count / k) - 1]);
        return parts;
    }

    /// <summary>K (DefaultParts when not given) and whether the meta convs are depthwise 3x3 (`:dw`) instead of 1x1.</summary>
    private static (int Parts, bool Depthwise) Parse(string spec, int places, string model)
    {
        string[] fields = spec[Prefix.Length..].Split(':');   // "", then K and/or "dw"
        int k = DefaultParts;
        bool depthwise = fields[^1] == "dw" && fields.Length > 1;
        int count = fields.Length - (depthwise ? 1 : 0);
        if (count > 2 || (count == 2 && (!int.TryParse(fields[1], out k) || k < 1 || k > places)))
            throw new TinyTrainException($"--update {spec}: K must be a whole number from 1 to {places} (model '{model}' has {places} places for a meta network); write tta:eco[:K][:dw]");
        return (k, depthwise);
    }

    /// <summary>The rewritten model: a zero-started meta network and its join after each part end.</summary>
    public static Graph Apply(Graph graph, string spec)
    {
        var ends = new HashSet<int>(PartEnds(graph, spec).ConvertAll(n => n.Id));
        bool depthwise = Parse(spec, int.MaxValue, graph.Name).Depthwise;   // the spec is valid: PartEnds checked it
        var nodes = new List<Node>();
        var newId = new int[graph.Nodes.Count];
        foreach (Node node in graph.Nodes)
        {
            newId[node.Id] = nodes.Count;
            nodes.Add(CopyOf(node, nodes.Count, Array.ConvertAll(node.Inputs, i => newId[i])));
            if (!ends.Contains(node.Id)) continue;
            Node x = nodes[^1];
            string name = TensorName(graph, node);
            int c = x.Shape.C;
            var meta = new Node
            {
                Id = nodes.Count, Name = name + ConvSuffix, Kind = OpKind.Conv2d, Inputs = [x.Id], Shape = x.Shape,
                Kernel = depthwise ? 3 : 1, Padding = depthwise ? 1 : 0, Groups = depthwise ? c : 1,
                WeightScaleFloor = WeightScale, RangeLike = name, RangeFraction = -BranchRange,
                Weight = depthwise ? new Tensor(c, 1, 3, 3) : new Tensor(c, c, 1, 1), Bias = new Tensor(c),
            };
            nodes.Add(meta);
            nodes.Add(new Node { Id = nodes.Count, Name = name + JoinSuffix, Kind = OpKind.Add, Inputs = [x.Id, meta.Id], Shape = x.Shape });
            // Later readers of the part's output read the join.
            newId[node.Id] = nodes.Count - 1;
        }
        return new Graph(graph.Name, nodes);
    }

    // The int8 tensor that holds a block end's value is named after the block's first node (BatchNorm and
    // activations are folded into the op that produces their input).
    private static string TensorName(Graph graph, Node node)
    {
        while (node.Kind is OpKind.BatchNorm or OpKind.Relu or OpKind.Relu6) node = graph.Nodes[node.Inputs[0]];
        return node.Name;
    }

    private static Node CopyOf(Node n, int id, int[] inputs) => new()
    {
        Id = id, Name = n.Name, Kind = n.Kind, Inputs = inputs, Shape = n.Shape,
        Kernel = n.Kernel, Stride = n.Stride, Padding = n.Padding, Groups = n.Groups, Epsilon = n.Epsilon, Momentum = n.Momentum,
        WeightScaleFloor = n.WeightScaleFloor, RangeLike = n.RangeLike, RangeFraction = n.RangeFraction,
        Weight = n.Weight?.Clone(), Bias = n.Bias?.Clone(), RunningMean = n.RunningMean?.Clone(), RunningVar = n.RunningVar?.Clone(),
    };
}
