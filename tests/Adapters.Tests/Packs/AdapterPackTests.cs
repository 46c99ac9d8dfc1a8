using TinyTrain.Adapters.Packs;
using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Compiler.Zoo;
using TinyTrain.Runtime.Execution;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

namespace TinyTrain.Adapters.Tests.Packs;

public class AdapterPackTests : IClassFixture<MiniModel>
{
    private readonly MiniModel _mini;
    private readonly PlanImage _plan;
    private readonly AdapterLayout _layout;

    public AdapterPackTests(MiniModel mini)
    {
        _mini = mini;
        _plan = PlanImage.Load(mini.Compile("bias:3").Image, "bias.ttplan");
        _layout = AdapterLayout.Of(_plan);
    }

    // An executor that has learned a little from Fashion-MNIST, and the pack of what it learned.
    private (Executor Executor, AdapterPack Pack) Trained(int steps = 40)
    {
        var executor = new Executor(_plan) { LearningRate = 0.02f };
        var quantizer = InputQuantizer.For(_plan);
        byte[] input = new byte[quantizer.Length];
        for (int i = 0; i < steps; i++)
        {
            quantizer.Fill(_mini.FashionTrain, i, input, 0);
            executor.SetInput(input, 0);
            executor.TrainStep(_mini.FashionTrain.Labels[i]);
        }
        return (executor, _layout.Capture(executor, "fashion", steps, createdUtc: new DateTime(2026, 11, 27, 12, 0, 0, DateTimeKind.Utc)));
    }

    [Fact]
    public void Layout_names_every_writable_parameter_of_the_plan()
    {
        Assert.Equal(["conv1.bias", "conv2.bias", "conv3.bias", "fc.bias", "fc.weight"], _layout.Entries.Select(e => e.Name).Order().ToArray());
        Assert.Equal(16 + 32 + 64 + 10 * 3136 + 10, _layout.ParameterCount);
        Assert.Equal([10, 3136], _layout.Entries.Single(e => e.Name == "fc.weight").Shape);
        Assert.Equal(AdapterLayout.PlainKind, _layout.Kind);
        Assert.Equal(32, _layout.Identity.Length);
    }

    [Fact]
    public void Round_trip_keeps_every_field_and_byte()
    {
        (_, AdapterPack pack) = Trained();
        AdapterPack back = AdapterPack.Deserialize(pack.Serialize());
        Assert.Equal(pack.Identity, back.Identity);
        Assert.Equal(pack.Kind, back.Kind);
        Assert.Equal(pack.Version, back.Version);
        Assert.Equal(pack.Task, back.Task);
        Assert.Equal(pack.Samples, back.Samples);
        Assert.Equal(pack.CreatedUtc, back.CreatedUtc);
        Assert.Equal(pack.Tensors.Count, back.Tensors.Count);
        for (int i = 0; i < pack.Tensors.Count; i++)
        {
            Assert.Equal(pack.Tensors[i].Name, back.Tensors[i].Name);
            Assert.Equal(pack.Tensors[i].Shape, back.Tensors[i].Shape);
            Assert.Equal(pack.Tensors[i].Data, back.Tensors[i].Data);
        }
        // int8 payloads travel as bytes: the file is the payload plus a small header.
        Assert.True(pack.Serialize().Length < pack.PayloadBytes + 400);
    }

    [Fact]
    public void Applying_a_pack_restores_what_was_learned_without_touching_the_base_model()
    {
        byte[] image = (byte[])_plan.Image.Clone();
        (Executor trained, AdapterPack pack) = Trained();
        var fresh = new Executor(_plan);
        Assert.NotEqual(trained.Params, fresh.Params);
        _layout.Apply(fresh, AdapterPack.Deserialize(pack.Serialize()));
        Assert.Equal(trained.Params, fresh.Params);
        Assert.Equal(image, _plan.Image);
    }

    private void AssertRefused(AdapterPack bad, string expected)
    {
        (Executor executor, AdapterPack good) = Trained(10);
        byte[] before = (byte[])executor.Params.Clone();
        var e = Assert.Throws<TinyTrainException>(() => _layout.Apply(executor, bad, "bad.ttpack"));
        Assert.Contains(expected, e.Message);
        Assert.Contains("the adapter in use was kept", e.Message);
        Assert.Equal(before, executor.Params);
        Assert.Equal(good.Tensors[0].Data, _layout.Capture(executor, "x", 0).Tensors[0].Data);
    }

    [Fact]
    public void A_pack_of_another_kind_is_refused()
    {
        (_, AdapterPack pack) = Trained(5);
        AssertRefused(pack with { Kind = "clr" }, "it is a 'clr' adapter but this plan trains a 'params' adapter");
    }

    [Fact]
    public void A_pack_for_another_base_model_is_refused()
    {
        // Same architecture, other weights: another base model.
        Compiler.Graphs.Graph other = ModelZoo.Build("cnn-s", seed: 5);
        var otherPlan = PlanImage.Load(PlanCompiler.Compile(other, _mini.Calibration, new CompileOptions { Update = "bias:3" }).Image);
        AdapterLayout otherLayout = AdapterLayout.Of(otherPlan);
        Assert.NotEqual(_layout.Identity, otherLayout.Identity);
        AdapterPack foreign = otherLayout.Capture(new Executor(otherPlan), "digits", 0);
        AssertRefused(foreign, "it was learned on another base model");
    }

    [Fact]
    public void The_identity_does_not_change_with_what_was_learned()
    {
        (Executor executor, _) = Trained(5);
        Assert.Equal(_layout.Identity, AdapterLayout.Of(executor.Plan).Identity);
        var again = PlanImage.Load(_mini.Compile("bias:3").Image);
        Assert.Equal(_layout.Identity, AdapterLayout.Of(again).Identity);
    }

    [Fact]
    public void A_pack_with_a_wrong_shape_is_refused()
    {
        (_, AdapterPack pack) = Trained(5);
        var tensors = pack.Tensors.ToList();
        int fc = tensors.FindIndex(t => t.Name == "fc.weight");
        tensors[fc] = tensors[fc] with { Shape = [5, 6272] };
        AssertRefused(pack with { Tensors = tensors }, "tensor 'fc.weight' is 5x6272 Int8 but this plan's is 10x3136 Int8");
    }

    [Fact]
    public void A_pack_with_a_missing_or_extra_tensor_is_refused()
    {
        (_, AdapterPack pack) = Trained(5);
        AssertRefused(pack with { Tensors = pack.Tensors.Where(t => t.Name != "conv2.bias").ToList() }, "it has no tensor 'conv2.bias'");
        AssertRefused(pack with { Tensors = [.. pack.Tensors, new PackTensor("extra.bias", PackElement.Int32, [2], new byte[8])] },
            "it has a tensor 'extra.bias' that this plan does not train");
    }

    [Fact]
    public void A_pack_whose_bytes_do_not_match_its_shape_is_refused()
    {
        (_, AdapterPack pack) = Trained(5);
        var tensors = pack.Tensors.ToList();
        tensors[0] = tensors[0] with { Data = tensors[0].Data[..^4] };
        AssertRefused(pack with { Tensors = tensors }, $"tensor '{tensors[0].Name}' has shape");
    }

    [Fact]
    public void A_pack_holding_NaN_is_refused()
    {
        (_, AdapterPack pack) = Trained(5);
        byte[] nan = BitConverter.GetBytes(float.NaN);
        AssertRefused(pack with { Tensors = [.. pack.Tensors, new PackTensor("scale", PackElement.Float32, [1], nan)] }, "tensor 'scale' holds NaN or infinity");
        var e = Assert.Throws<TinyTrainException>(() => AdapterPack.Deserialize((pack with { Tensors = [new PackTensor("s", PackElement.Float32, [1], nan)] }).Serialize()));
        Assert.Contains("holds NaN", e.Message);
    }

    [Fact]
    public void An_int8_weight_outside_the_symmetric_range_is_refused()
    {
        (_, AdapterPack pack) = Trained(5);
        var tensors = pack.Tensors.ToList();
        int fc = tensors.FindIndex(t => t.Name == "fc.weight");
        byte[] data = (byte[])tensors[fc].Data.Clone();
        data[7] = 0x80;
        tensors[fc] = tensors[fc] with { Data = data };
        AssertRefused(pack with { Tensors = tensors }, "holds the int8 value -128");
    }

    [Fact]
    public void Damaged_truncated_or_foreign_bytes_are_refused()
    {
        (_, AdapterPack pack) = Trained(5);
        byte[] bytes = pack.Serialize();
        byte[] flipped = (byte[])bytes.Clone();
        flipped[bytes.Length / 2] ^= 0x10;
        Assert.Contains("checksum mismatch: the pack is damaged", Assert.Throws<TinyTrainException>(() => AdapterPack.Deserialize(flipped, "p")).Message);
        Assert.Contains("damaged or truncated", Assert.Throws<TinyTrainException>(() => AdapterPack.Deserialize(bytes[..^100], "p")).Message);
        Assert.Contains("not a TinyTrain adapter pack", Assert.Throws<TinyTrainException>(() => AdapterPack.Deserialize("hello"u8.ToArray(), "p")).Message);
        Assert.Contains("bytes follow the pack's end", Assert.Throws<TinyTrainException>(() => AdapterPack.Deserialize([.. bytes, 0xC0], "p")).Message);
        // Every single-byte change is caught: by the checksum or by the reader.
        for (int i = 0; i < bytes.Length; i += 97)
        {
            byte[] b = (byte[])bytes.Clone();
            b[i] ^= 0xFF;
            Assert.Throws<TinyTrainException>(() => AdapterPack.Deserialize(b, "p"));
        }
    }

    [Fact]
    public void The_store_keeps_swaps_and_refuses_without_changing_the_state()
    {
        string dir = Path.Combine(Path.GetTempPath(), "tt-adapters-" + Guid.NewGuid().ToString("N"));
        try
        {
            var store = new AdapterStore(dir);
            (Executor executor, AdapterPack pack) = Trained(20);
            store.Save(pack);
            store.Save(_layout.Capture(new Executor(_plan), "base", 0));
            Assert.Equal(["base", "fashion"], store.Tasks());

            var device = new Executor(_plan);
            store.Activate("fashion", device, _layout);
            Assert.Equal(executor.Params, device.Params);
            Assert.Equal("fashion", store.Active);

            // A damaged file on disk: refused, the adapter in use and the active task stay.
            string path = store.PathOf("base");
            byte[] bytes = File.ReadAllBytes(path);
            bytes[^10] ^= 1;
            File.WriteAllBytes(path, bytes);
            var e = Assert.Throws<TinyTrainException>(() => store.Activate("base", device, _layout));
            Assert.Contains("checksum mismatch", e.Message);
            Assert.Equal(executor.Params, device.Params);
            Assert.Equal("fashion", store.Active);

            // Import of a pack of another kind: refused, nothing stored.
            string file = Path.Combine(dir, "in.ttpack");
            File.WriteAllBytes(file, (pack with { Task = "other", Kind = "lora:4" }).Serialize());
            Assert.Contains("'lora:4' adapter", Assert.Throws<TinyTrainException>(() => store.Import(file, _layout)).Message);
            Assert.False(store.Contains("other"));

            string exported = Path.Combine(dir, "out.ttpack");
            store.Export("fashion", exported);
            Assert.Equal(pack.Tensors[0].Data, AdapterPack.Deserialize(File.ReadAllBytes(exported)).Tensors[0].Data);
            Assert.Contains("no adapter for task 'nope'", Assert.Throws<TinyTrainException>(() => store.Load("nope")).Message);
            Assert.Contains("is not valid", Assert.Throws<TinyTrainException>(() => store.Load("../x")).Message);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, true);
        }
    }
}
