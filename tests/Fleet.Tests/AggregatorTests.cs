namespace TinyTrain.Fleet.Tests;

using TinyTrain.Fleet.Aggregation;
using TinyTrain.Fleet.Messages;
using TinyTrain.Fleet.Payload;

/// <summary>Envelopes round trip; every kind of bad update is refused with its reason counted and never applied.</summary>
public sealed class AggregatorTests
{
    [Fact]
    public void SignedEnvelopeRoundTrips()
    {
        using var fleet = new FleetFixture(1);
        UpdateEnvelope update = FleetFixture.Update("dev0", 7, FleetFixture.Delta(1.5f), samples: 12, baseVersion: 3);
        update.Metrics["accuracy"] = 0.75f;
        byte[] wire = fleet.Signed(update);
        Assert.True(FleetSerializer.TryDeserialize(wire, out SignedMessage signed));
        Assert.True(signed.Verify(fleet.Registry["dev0"]));
        Assert.True(FleetSerializer.TryDeserialize(signed.Body, out UpdateEnvelope back));
        Assert.Equal(("dev0", "00112233aabbccdd", "params", "test", 3L, 12, 7L, UpdateEnvelope.CurrentSchema),
            (back.DeviceId, back.ModelId, back.AdapterKind, back.Task, back.BaseVersion, back.SampleCount, back.Sequence, back.SchemaVersion));
        Assert.Equal(0.75f, back.Metrics["accuracy"]);
        Assert.True(FleetSerializer.TryDeserialize(back.Payload, out TensorPayload payload));
        Assert.True(payload.Matches(FleetFixture.Layout));
        float[] values = payload.Decode();
        Assert.Equal(1.5f, values[0], 2);
        Assert.Equal(15f, values[6], 2);
    }

    [Fact]
    public void EveryBadUpdateIsRefusedCountedAndNeverApplied()
    {
        using var fleet = new FleetFixture(2);
        Aggregator aggregator = fleet.NewAggregator(new AggregatorOptions { BufferSize = 100, MaxMessageBytes = 4096 });
        var log = new List<string>();
        aggregator.Log = (reason, detail) => log.Add($"{RejectReasons.Name(reason)}: {detail}");
        Assert.True(aggregator.Offer(fleet.Signed(FleetFixture.Update("dev0", 1, FleetFixture.Delta(1)))).Accepted);

        void Refused(RejectReason reason, byte[] message, string detail)
        {
            OfferResult result = aggregator.Offer(message);
            Assert.False(result.Accepted);
            Assert.Equal(reason, result.Reason);
            Assert.Contains(detail, result.Detail);
        }

        Refused(RejectReason.Oversize, new byte[5000], "5000 bytes, the limit is 4096");
        Refused(RejectReason.Malformed, [1, 2, 3], "not a signed MessagePack message");
        var stranger = FleetKeys.Create();
        Refused(RejectReason.UnknownDevice, SignedMessage.Sign(FleetFixture.Update("intruder", 1, FleetFixture.Delta(1)), "intruder", stranger),
            "device 'intruder' is not registered");
        // Forged: claims to be dev0, signed with another key.
        Refused(RejectReason.BadSignature, SignedMessage.Sign(FleetFixture.Update("dev0", 2, FleetFixture.Delta(9)), "dev0", stranger),
            "signature of 'dev0' does not verify");
        // Signed by dev1 but claims to be dev0.
        Refused(RejectReason.BadSignature, fleet.Signed(FleetFixture.Update("dev0", 3, FleetFixture.Delta(9)), signer: "dev1"),
            "claims device 'dev0' but is signed by 'dev1'");
        // A body altered after signing.
        byte[] tampered = fleet.Signed(FleetFixture.Update("dev0", 4, FleetFixture.Delta(1)));
        Assert.True(FleetSerializer.TryDeserialize(tampered, out SignedMessage t));
        t.Body[^1] ^= 1;
        Refused(RejectReason.BadSignature, FleetSerializer.Serialize(t), "does not verify");
        var otherModel = new FleetModel("ffffffffffffffff", FleetModel.ParamsKind, "test", FleetFixture.Layout);
        Refused(RejectReason.OtherModel, fleet.Signed(FleetFixture.Update("dev0", 5, FleetFixture.Delta(1), model: otherModel)), "sent ffffffffffffffff/params/test");
        Refused(RejectReason.Replayed, fleet.Signed(FleetFixture.Update("dev0", 1, FleetFixture.Delta(1))), "sequence 1, already seen up to 1");
        Refused(RejectReason.StaleVersion, fleet.Signed(FleetFixture.Update("dev0", 6, FleetFixture.Delta(1), baseVersion: 5)), "built on version 5");
        var wrong = new FleetModel("00112233aabbccdd", FleetModel.ParamsKind, "test",
            ParamLayout.Create([new ParamSlice("fc.weight", TinyTrain.Runtime.Plans.ElementType.Int8, 0, 7)]));
        Refused(RejectReason.WrongShape, fleet.Signed(FleetFixture.Update("dev0", 7, new float[7], model: wrong)), "does not have the tensors fc.weight[6], fc.bias[3]");
        float[] nan = FleetFixture.Delta(1);
        nan[7] = float.NaN;
        Refused(RejectReason.NonFinite, fleet.Signed(FleetFixture.Update("dev0", 8, nan)), "NaN or infinity");

        foreach (RejectReason reason in new[] { RejectReason.Oversize, RejectReason.Malformed, RejectReason.UnknownDevice, RejectReason.OtherModel,
                     RejectReason.Replayed, RejectReason.StaleVersion, RejectReason.WrongShape, RejectReason.NonFinite })
            Assert.Equal(1, aggregator.Rejected(reason));
        Assert.Equal(3, aggregator.Rejected(RejectReason.BadSignature));
        Assert.Equal(11, log.Count);
        // Only the one good update is buffered; the global is untouched until a round closes, then holds only it.
        Assert.Single(aggregator.State.Buffer);
        aggregator.CloseRound();
        Assert.Equal(1, aggregator.State.Version);
        Assert.Equal(1f, aggregator.State.Global[0], 2);
        Assert.Equal(10f, aggregator.State.Global[6], 2);
    }

    [Fact]
    public void RoundClosesWhenTheBufferIsFullAndLateUpdatesWeighLess()
    {
        using var fleet = new FleetFixture(3);
        Aggregator aggregator = fleet.NewAggregator(new AggregatorOptions { BufferSize = 2, StalenessAlpha = 1.0 });
        Assert.False(aggregator.Offer(fleet.Signed(FleetFixture.Update("dev0", 1, FleetFixture.Delta(2)))).RoundClosed);
        Assert.True(aggregator.Offer(fleet.Signed(FleetFixture.Update("dev1", 1, FleetFixture.Delta(2)))).RoundClosed);
        Assert.Equal(1, aggregator.State.Version);
        // Version 1 now: dev2 is one version late (weight 1/2), dev0 is current (weight 1): (0.5*8 + 1*2) / 1.5 = 4.
        aggregator.Offer(fleet.Signed(FleetFixture.Update("dev2", 1, FleetFixture.Delta(8), baseVersion: 0)));
        aggregator.Offer(fleet.Signed(FleetFixture.Update("dev0", 2, FleetFixture.Delta(2), baseVersion: 1)));
        Assert.Equal(2, aggregator.State.Version);
        Assert.Equal(2f + 4f, aggregator.State.Global[0], 1);
        Assert.Equal(["dev0:1", "dev1:1", "dev2:1", "dev0:2"], aggregator.State.Aggregated);
    }

    [Fact]
    public void RobustModeWithClippingResistsAScaledUpdate()
    {
        using var fleet = new FleetFixture(3);
        Aggregator plain = fleet.NewAggregator(new AggregatorOptions { BufferSize = 3 });
        Aggregator robust = fleet.NewAggregator(new AggregatorOptions { BufferSize = 3, Mode = AggregationMode.Median, ClipNorm = -1 });
        foreach (Aggregator a in new[] { plain, robust })
        {
            a.Offer(fleet.Signed(FleetFixture.Update("dev0", 1, FleetFixture.Delta(1))));
            a.Offer(fleet.Signed(FleetFixture.Update("dev1", 1, FleetFixture.Delta(1.2f))));
            a.Offer(fleet.Signed(FleetFixture.Update("dev2", 1, FleetFixture.Delta(-100))));
        }
        Assert.True(plain.State.Global[0] < -30);
        Assert.InRange(robust.State.Global[0], 0.9f, 1.25f);
    }
}
