namespace TinyTrain.Adapters.Packs;

using System.Security.Cryptography;
using TinyTrain.Runtime.Execution;
using TinyTrain.Runtime.Plans;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

/// <summary>One writable parameter of a plan: where it lives in the executor's params region.</summary>
public sealed record ParamEntry(string Name, PackElement Type, int[] Shape, int Offset, int Bytes);

/// <summary>
/// The adapter a plan trains, read from the plan alone: its writable parameters (the params region,
/// named after the forward op that reads them: "conv1.bias", "fc.weight"), the adapter kind (from the
/// model name the adapter rewrite gives, "cnn-s+adapter:clr"), and the base model's identity: a SHA-256
/// of the plan's frozen constants (every constant except the initial values of the writable
/// parameters) — the same base model compiled the same way gives the same identity, whatever a
/// device has learned since.
/// </summary>
public sealed class AdapterLayout
{
    /// <summary>The separator between base model name and adapter kind in a rewritten model's name.</summary>
    public const string KindMarker = "+adapter:";
    /// <summary>The kind of a plan compiled with a plain trainable set (full, bias:K, sparse:...).</summary>
    public const string PlainKind = "params";

    private AdapterLayout(string identity, string kind, string model, IReadOnlyList<ParamEntry> entries, int paramBytes)
    {
        Identity = identity;
        Kind = kind;
        Model = model;
        Entries = entries;
        ParamBytes = paramBytes;
    }

    public string Identity { get; }
    public string Kind { get; }
    /// <summary>The base model's name.</summary>
    public string Model { get; }
    public IReadOnlyList<ParamEntry> Entries { get; }
    public int ParamBytes { get; }

    public long ParameterCount
    {
        get
        {
            long n = 0;
            foreach (ParamEntry e in Entries) n += e.Bytes / PackTensor.ElementSize(e.Type);
            return n;
        }
    }

    public static AdapterLayout Of(PlanImage plan)
    {
        string name = plan.ModelName;
        int marker = name.IndexOf(KindMarker, StringComparison.Ordinal);
        string kind = marker < 0 ? PlainKind : name[(marker + KindMarker.Length)..];
        string model = marker < 0 ? name : name[..marker];

        // Init ops: params offset -> (length, constant offset of the initial value).
        var initial = new Dictionary<int, (int Length, int Constant)>();
        for (int i = 0; i < plan.OpCount; i++)
        {
            OpInfo op = plan.Op(i);
            if (op.Kind == OpKind.InitParamsRows) initial[op.Arg(3)] = (op.Arg(0) * op.Arg(2), (int)op.Weights);
            else if (op.Phase == OpPhase.Init) initial[op.Arg(1)] = (op.Arg(0), (int)op.Weights);
        }

        var entries = new List<ParamEntry>();
        var seen = new HashSet<int>();
        void Add(string name, PackElement type, int[] shape, int offset)
        {
            if (seen.Add(offset)) entries.Add(new ParamEntry(name, type, shape, offset, initial[offset].Length));
        }
        for (int i = 0; i < plan.OpCount; i++)
        {
            OpInfo op = plan.Op(i);
            bool w = (op.Flags & OpFlags.WeightsInParams) != 0, b = (op.Flags & OpFlags.BiasInParams) != 0;
            if (!(w || b) || !initial.ContainsKey(w ? (int)op.Weights : (int)op.Bias)) continue;
            switch (op.Kind)
            {
                case OpKind.Conv2D or OpKind.DepthwiseConv2D or OpKind.FullyConnected when op.Phase == OpPhase.Forward:
                {
                    string layer = plan.Tensor(op.Output).Name();
                    // A trained slice (OpFlags.WeightsSliced) travels as what is writable: OutC rows of its trained input channels.
                    if (w && (op.Flags & OpFlags.WeightsSliced) != 0) Add($"{layer}.weight", PackElement.Int8, [plan.Tensor(op.Output).C, op.Arg(7)], (int)op.Weights);
                    else if (w) Add($"{layer}.weight", PackElement.Int8, WeightShape(plan, op), (int)op.Weights);
                    if (b) Add($"{layer}.bias", PackElement.Int32, [initial[(int)op.Bias].Length / 4], (int)op.Bias);
                    break;
                }
                case OpKind.NormAffine when op.Phase == OpPhase.Forward:
                {
                    // float32 scale[C] then shift[C]; the statistics correction statScale[C] then statShift[C].
                    string layer = plan.Tensor(op.Output).Name();
                    if (w) Add($"{layer}.affine", PackElement.Float32, [2, initial[(int)op.Weights].Length / 8], (int)op.Weights);
                    if (b) Add($"{layer}.norm_correction", PackElement.Float32, [2, initial[(int)op.Bias].Length / 8], (int)op.Bias);
                    break;
                }
                case OpKind.NormStats:
                    // Running mean[C] then var[C] of the input.
                    if (w) Add($"{plan.Tensor(op.Input0).Name()}.norm_stats", PackElement.Float32, [2, initial[(int)op.Weights].Length / 8], (int)op.Weights);
                    break;
            }
        }
        // Anything else the params region holds travels as raw bytes, so that a pack is always the whole region.
        foreach ((int offset, (int length, _)) in initial.OrderBy(e => e.Key))
            Add($"params@{offset}", PackElement.Int8, [length], offset);
        entries.Sort((x, y) => x.Offset.CompareTo(y.Offset));

        // Identity: the constants with the initial values of the writable parameters cut out.
        var skip = new bool[plan.ConstantsLength];
        for (int i = 0; i < plan.OpCount; i++)
        {
            OpInfo op = plan.Op(i);
            if (op.Phase != OpPhase.Init) continue;
            // A trained slice's initial values are the first args[2] bytes of each of args[0] rows of args[1] bytes.
            bool rows = op.Kind == OpKind.InitParamsRows;
            int count = rows ? op.Arg(0) : 1, rowBytes = rows ? op.Arg(1) : 0, length = rows ? op.Arg(2) : op.Arg(0);
            for (int r = 0; r < count; r++)
                for (int k = 0; k < length; k++) skip[(int)op.Weights + r * rowBytes + k] = true;
        }
        byte[] frozen = new byte[plan.ConstantsLength];
        int n = 0;
        for (int k = 0; k < skip.Length; k++)
            if (!skip[k]) frozen[n++] = plan.Image[plan.ConstantsOffset + k];
        string identity = Convert.ToHexStringLower(SHA256.HashData(frozen.AsSpan(0, n)))[..32];
        return new AdapterLayout(identity, kind, model, entries, (int)plan.SramParamBytes);
    }

    private static int[] WeightShape(PlanImage plan, OpInfo op)
    {
        TensorInfo x = plan.Tensor(op.Input0), y = plan.Tensor(op.Output);
        return op.Kind switch
        {
            OpKind.Conv2D => [y.C, x.C / op.Arg(3), op.Arg(0), op.Arg(0)],
            OpKind.DepthwiseConv2D => [y.C, 1, op.Arg(0), op.Arg(0)],
            _ => [y.C, x.ElementCount],
        };
    }

    /// <summary>
    /// Refuses, with one line that says why, a pack that does not belong to this plan: another kind,
    /// another base model, other tensors or shapes, an int8 weight outside [-127, 127]. Nothing is changed.
    /// </summary>
    public void Check(AdapterPack pack, string source = "pack")
    {
        PackCodec.Check(pack, source);
        if (pack.Kind != Kind)
            throw PackCodec.Refuse(source, $"it is a '{pack.Kind}' adapter but this plan trains a '{Kind}' adapter");
        if (pack.Identity != Identity)
            throw PackCodec.Refuse(source, $"it was learned on another base model (identity {pack.Identity}, this plan's is {Identity}; model '{Model}')");
        var byName = new Dictionary<string, PackTensor>(StringComparer.Ordinal);
        foreach (PackTensor t in pack.Tensors) byName[t.Name] = t;
        foreach (ParamEntry e in Entries)
        {
            if (!byName.TryGetValue(e.Name, out PackTensor? t))
                throw PackCodec.Refuse(source, $"it has no tensor '{e.Name}' ({string.Join('x', e.Shape)} {e.Type}), which this plan trains");
            if (t.Type != e.Type || !t.Shape.AsSpan().SequenceEqual(e.Shape))
                throw PackCodec.Refuse(source, $"tensor '{e.Name}' is {t.ShapeText} {t.Type} but this plan's is {string.Join('x', e.Shape)} {e.Type}");
            if (t.Type == PackElement.Int8 && e.Name.EndsWith(".weight", StringComparison.Ordinal))
                foreach (byte b in t.Data)
                    if ((sbyte)b == -128) throw PackCodec.Refuse(source, $"tensor '{e.Name}' holds the int8 value -128, outside the weights' range [-127, 127]");
        }
        if (pack.Tensors.Count != Entries.Count)
        {
            var known = new HashSet<string>(Entries.Select(e => e.Name), StringComparer.Ordinal);
            string extra = pack.Tensors.First(t => !known.Contains(t.Name)).Name;
            throw PackCodec.Refuse(source, $"it has a tensor '{extra}' that this plan does not train");
        }
    }

    /// <summary>Checks the pack, then writes its tensors into the executor's params region and clears optimizer state.</summary>
    public void Apply(Executor executor, AdapterPack pack, string source = "pack")
    {
        CheckExecutor(executor);
        Check(pack, source);
        foreach (PackTensor t in pack.Tensors)
        {
            ParamEntry e = Entries.First(x => x.Name == t.Name);
            Array.Copy(t.Data, 0, executor.Params, e.Offset, e.Bytes);
        }
        Array.Clear(executor.State);
    }

    /// <summary>The executor's current adapter as a pack (a copy of its params region, named and shaped).</summary>
    public AdapterPack Capture(Executor executor, string task, long samples, int version = 1, DateTime? createdUtc = null)
    {
        CheckExecutor(executor);
        if (!TaskNames.IsValid(task)) throw new TinyTrainException($"task name '{task}' is not valid ({TaskNames.Rule})");
        var tensors = new List<PackTensor>(Entries.Count);
        foreach (ParamEntry e in Entries)
            tensors.Add(new PackTensor(e.Name, e.Type, (int[])e.Shape.Clone(), executor.Params.AsSpan(e.Offset, e.Bytes).ToArray()));
        return new AdapterPack
        {
            Identity = Identity, Kind = Kind, Version = version, Task = task, Samples = samples,
            CreatedUtc = createdUtc ?? DateTime.UtcNow, Tensors = tensors,
        };
    }

    private void CheckExecutor(Executor executor)
    {
        if (executor.Params.Length != ParamBytes)
            throw new TinyTrainException($"this executor runs another plan (params {executor.Params.Length} bytes, the layout's {ParamBytes}); use AdapterLayout.Of(executor.Plan)");
        if (Entries.Count == 0)
            throw new TinyTrainException($"model '{Model}': the plan trains nothing, so it has no adapter; compile it with --update adapter:KIND");
    }
}
