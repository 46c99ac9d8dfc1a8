namespace TinyTrain.Fleet.Tests;

using System.Security.Cryptography;
using TinyTrain.Fleet.Aggregation;
using TinyTrain.Fleet.Messages;
using TinyTrain.Fleet.Payload;
using TinyTrain.Runtime.Plans;

/// <summary>A small fleet for tests: a model layout of two tensors, registered device keys, an aggregator key.</summary>
internal sealed class FleetFixture : IDisposable
{
    public static readonly ParamLayout Layout = ParamLayout.Create([
        new ParamSlice("fc.weight", ElementType.Int8, 0, 6),
        new ParamSlice("fc.bias", ElementType.Int32, 8, 3),
    ]);

    public FleetFixture(int devices = 3)
    {
        Model = new FleetModel("00112233aabbccdd", FleetModel.ParamsKind, "test", Layout);
        for (int i = 0; i < devices; i++)
        {
            string id = $"dev{i}";
            Keys[id] = FleetKeys.Create();
            Registry[id] = FleetKeys.FromPublicKey(FleetKeys.PublicKey(Keys[id]));
        }
        Directory = Path.Combine(Path.GetTempPath(), "tinytrain-fleet-tests", Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(Directory);
    }

    public FleetModel Model { get; }
    public Dictionary<string, ECDsa> Keys { get; } = [];
    public Dictionary<string, ECDsa> Registry { get; } = [];
    public ECDsa AggregatorKey { get; } = FleetKeys.Create();
    public string Directory { get; }

    public Aggregator NewAggregator(AggregatorOptions? options = null, AggregatorState? state = null)
        => new(Model, options ?? new AggregatorOptions { BufferSize = 100 }, Registry, AggregatorKey,
            state ?? new AggregatorState { Global = new float[Layout.TotalCount] });

    public static UpdateEnvelope Update(string device, long sequence, float[] delta, int samples = 10, long baseVersion = 0, FleetModel? model = null)
    {
        model ??= new FleetModel("00112233aabbccdd", FleetModel.ParamsKind, "test", Layout);
        return new UpdateEnvelope
        {
            DeviceId = device,
            ModelId = model.ModelId,
            AdapterKind = model.AdapterKind,
            Task = model.Task,
            BaseVersion = baseVersion,
            SampleCount = samples,
            Sequence = sequence,
            Payload = FleetSerializer.Serialize(TensorPayload.Encode(model.Layout, delta)),
        };
    }

    public byte[] Signed(UpdateEnvelope update, string? signer = null)
        => SignedMessage.Sign(update, signer ?? update.DeviceId, Keys[signer ?? update.DeviceId]);

    public static float[] Delta(float value) => [value, value, value, value, value, value, value * 10, value * 10, value * 10];

    public void Dispose()
    {
        try { System.IO.Directory.Delete(Directory, recursive: true); } catch (IOException) { }
    }
}
