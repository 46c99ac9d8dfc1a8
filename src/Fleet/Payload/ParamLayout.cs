namespace TinyTrain.Fleet.Payload;

using System.Buffers.Binary;
using TinyTrain.Runtime.Plans;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

/// <summary>One trained tensor inside the runtime's writable params region: int8 weights or int32 biases.</summary>
public sealed record ParamSlice(string Name, ElementType Type, int ByteOffset, int Count);

/// <summary>
/// The trainable parameters of a compiled plan as named tensors, read from the plan's forward ops (those whose
/// weights or bias live in the params region). This is what a fleet shares today: the seam where adapter packs
/// (issue 8) take over. Values cross it as float arrays in the integer units of the params region.
/// </summary>
public sealed class ParamLayout
{
    private ParamLayout(IReadOnlyList<ParamSlice> slices)
    {
        Slices = slices;
        int total = 0;
        foreach (ParamSlice s in slices) total += s.Count;
        TotalCount = total;
    }

    public IReadOnlyList<ParamSlice> Slices { get; }

    /// <summary>Elements over all slices.</summary>
    public int TotalCount { get; }

    /// <summary>A layout of the given slices, in order (for tests and tools; FromPlan reads a plan's).</summary>
    public static ParamLayout Create(IReadOnlyList<ParamSlice> slices)
    {
        ArgumentNullException.ThrowIfNull(slices);
        if (slices.Count == 0) throw new ArgumentException("a layout needs at least one tensor", nameof(slices));
        return new ParamLayout([.. slices]);
    }

    public static ParamLayout FromPlan(PlanImage plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        // InitParams ops say how many bytes each params slot holds: args[0] bytes at params offset args[1].
        var lengths = new Dictionary<int, int>();
        for (int i = 0; i < plan.ForwardOpCount; i++)
        {
            OpInfo op = plan.Op(i);
            if (op.Phase == OpPhase.Init && op.Kind == OpKind.InitParams) lengths[op.Arg(1)] = op.Arg(0);
        }
        var slices = new List<ParamSlice>();
        var seen = new HashSet<int>();
        for (int i = 0; i < plan.ForwardOpCount; i++)
        {
            OpInfo op = plan.Op(i);
            if (op.Phase != OpPhase.Forward) continue;
            string name = plan.Tensor(op.Output).Name();
            if ((op.Flags & OpFlags.WeightsInParams) != 0 && seen.Add((int)op.Weights))
                slices.Add(new ParamSlice(name + ".weight", ElementType.Int8, (int)op.Weights, Length(lengths, (int)op.Weights, plan)));
            if ((op.Flags & OpFlags.BiasInParams) != 0 && seen.Add((int)op.Bias))
                slices.Add(new ParamSlice(name + ".bias", ElementType.Int32, (int)op.Bias, Length(lengths, (int)op.Bias, plan) / 4));
        }
        if (slices.Count == 0)
            throw new TinyTrainException($"{plan.Source} has no trainable parameters; compile it with --update bias:K, sparse:... or full to share what it learns");
        return new ParamLayout(slices);
    }

    private static int Length(Dictionary<int, int> lengths, int offset, PlanImage plan)
        => lengths.TryGetValue(offset, out int bytes) ? bytes
            : throw new TinyTrainException($"{plan.Source}: no InitParams op fills the params region at offset {offset}; the plan is damaged");

    /// <summary>Reads every slice of <paramref name="parameters"/> (the executor's Params) into one flat array.</summary>
    public float[] Read(byte[] parameters)
    {
        var values = new float[TotalCount];
        int at = 0;
        foreach (ParamSlice s in Slices)
            for (int i = 0; i < s.Count; i++)
                values[at++] = s.Type == ElementType.Int8 ? (sbyte)parameters[s.ByteOffset + i]
                    : BinaryPrimitives.ReadInt32LittleEndian(parameters.AsSpan(s.ByteOffset + 4 * i));
        return values;
    }

    /// <summary>Writes <paramref name="values"/> (rounded to nearest, clamped to the type's range) into <paramref name="parameters"/>.</summary>
    public void Write(float[] values, byte[] parameters)
    {
        if (values.Length != TotalCount) throw new ArgumentException($"expected {TotalCount} values, got {values.Length}", nameof(values));
        int at = 0;
        foreach (ParamSlice s in Slices)
            for (int i = 0; i < s.Count; i++)
            {
                double v = Math.Round((double)values[at++], MidpointRounding.AwayFromZero);
                if (s.Type == ElementType.Int8)
                    parameters[s.ByteOffset + i] = (byte)(sbyte)Math.Clamp(v, -127, 127);
                else
                    BinaryPrimitives.WriteInt32LittleEndian(parameters.AsSpan(s.ByteOffset + 4 * i), (int)Math.Clamp(v, int.MinValue, int.MaxValue));
            }
    }
}
