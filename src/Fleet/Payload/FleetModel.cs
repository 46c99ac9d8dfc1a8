namespace TinyTrain.Fleet.Payload;

using TinyTrain.Adapters.Packs;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

/// <summary>
/// What a fleet shares: one base model (the adapter layout's identity, a hash of the plan's frozen constants), one
/// adapter kind, one task, and the layout of the adapter's tensors.
/// </summary>
public sealed record FleetModel(string ModelId, string AdapterKind, string Task, ParamLayout Layout)
{
    /// <summary>The adapter kind of a plan compiled with a plain trainable set (bias:K, sparse:..., full).</summary>
    public const string ParamsKind = AdapterLayout.PlainKind;
    public const string AggregatorSigner = "aggregator";

    public static FleetModel FromPlan(PlanImage plan, string task)
    {
        if (!TaskNames.IsValid(task)) throw new TinyTrainException($"task name '{task}' is not valid ({TaskNames.Rule})");
        AdapterLayout adapter = AdapterLayout.Of(plan);
        return new FleetModel(adapter.Identity, adapter.Kind, task, ParamLayout.FromAdapter(adapter));
    }

    /// <summary>The global adapter as an adapter pack: values rounded into the params' integer types; packs count from 1, so pack version = global version + 1.</summary>
    public AdapterPack ToPack(float[] values, long version, long samples)
    {
        var tensors = new List<PackTensor>(Layout.Slices.Count);
        var parameters = new byte[Layout.Slices.Count == 0 ? 0 : MaxEnd()];
        Layout.Write(values, parameters);
        foreach (ParamSlice s in Layout.Slices)
        {
            int size = s.Type == TinyTrain.Runtime.Plans.ElementType.Int8 ? 1 : 4;
            tensors.Add(new PackTensor(s.Name, s.Type == TinyTrain.Runtime.Plans.ElementType.Int8 ? PackElement.Int8 : PackElement.Int32,
                (int[])s.Shape.Clone(), parameters.AsSpan(s.ByteOffset, s.Count * size).ToArray()));
        }
        return new AdapterPack
        {
            Identity = ModelId,
            Kind = AdapterKind,
            Task = Task,
            Version = (int)Math.Min(version + 1, int.MaxValue),
            Samples = samples,
            CreatedUtc = DateTime.UnixEpoch,
            Tensors = tensors,
        };
    }

    /// <summary>A pack's values in the layout's order, or the reason it does not fit this model (null when it fits).</summary>
    public string? FromPack(AdapterPack pack, out float[] values)
    {
        values = [];
        if (pack.Identity != ModelId || pack.Kind != AdapterKind || pack.Task != Task)
            return $"pack for {pack.Identity}/{pack.Kind}/{pack.Task}, this device runs {ModelId}/{AdapterKind}/{Task}";
        if (pack.Tensors.Count != Layout.Slices.Count) return $"pack has {pack.Tensors.Count} tensors, the adapter {Layout.Slices.Count}";
        var parameters = new byte[MaxEnd()];
        for (int t = 0; t < pack.Tensors.Count; t++)
        {
            PackTensor tensor = pack.Tensors[t];
            ParamSlice s = Layout.Slices[t];
            PackElement type = s.Type == TinyTrain.Runtime.Plans.ElementType.Int8 ? PackElement.Int8 : PackElement.Int32;
            if (tensor.Name != s.Name || tensor.Type != type || !tensor.Shape.AsSpan().SequenceEqual(s.Shape) || tensor.Data.Length != s.Count * PackTensor.ElementSize(type))
                return $"tensor {t} is '{tensor.Name}' {tensor.ShapeText} {tensor.Type}, the adapter's is '{s.Name}' {string.Join('x', s.Shape)} {type}";
            tensor.Data.CopyTo(parameters, s.ByteOffset);
        }
        values = Layout.Read(parameters);
        return null;
    }

    private int MaxEnd()
    {
        int end = 0;
        foreach (ParamSlice s in Layout.Slices)
            end = Math.Max(end, s.ByteOffset + s.Count * (s.Type == TinyTrain.Runtime.Plans.ElementType.Int8 ? 1 : 4));
        return end;
    }

    public string Describe()
    {
        var parts = new List<string>();
        foreach (ParamSlice s in Layout.Slices) parts.Add($"{s.Name}[{s.Count}]");
        return string.Join(", ", parts);
    }
}
