namespace TinyTrain.Fleet.Payload;

using PlanImage = TinyTrain.Runtime.Plans.Plan;

/// <summary>What a fleet shares: one model (by identity), one adapter kind, one task, and the layout of its trained tensors.</summary>
public sealed record FleetModel(string ModelId, string AdapterKind, string Task, ParamLayout Layout)
{
    /// <summary>The adapter kind of a plan's own trainable set (before adapter packs).</summary>
    public const string ParamsKind = "params";
    public const string AggregatorSigner = "aggregator";

    public static FleetModel FromPlan(PlanImage plan, string task)
        => new(ModelIdentity.Of(plan), ParamsKind, task, ParamLayout.FromPlan(plan));

    public string Describe()
    {
        var parts = new List<string>();
        foreach (ParamSlice s in Layout.Slices) parts.Add($"{s.Name}[{s.Count}]");
        return string.Join(", ", parts);
    }
}
