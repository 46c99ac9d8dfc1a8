using TinyTrain.Emulator.Corruptions;
using TinyTrain.Emulator.Streams;

namespace TinyTrain.Emulator.Tests.Streams;

public class StreamSpecTests
{
    [Theory]
    [InlineData("mnist:clean*2000", "mnist:clean*2000")]
    [InlineData("mnist-c:fog*2000", "mnist-c:fog*2000")]
    [InlineData("mnist-c:rotate@2*2000/every:10", "mnist-c:rotate@2*2000/every:10")]
    [InlineData("fashion-mnist:clean*500/none", "fashion-mnist:clean*500/none")]
    [InlineData("mnist[0-4]:clean*1000", "mnist[0-4]:clean*1000")]
    [InlineData("mnist[5-9]:clean*1000/first:100", "mnist[5-9]:clean*1000/first:100")]
    [InlineData("mnist[1,3,5]:clean*10", "mnist[1,3,5]:clean*10")]
    [InlineData("mnist[7, 0-2]:fog@0.5*10/all", "mnist[0-2,7]:fog@0.5*10")]
    [InlineData("mnist[0,1]:clean*3", "mnist[0,1]:clean*3")]
    [InlineData("mnist[3-3,4]:clean*3", "mnist[3,4]:clean*3")]
    [InlineData("MNIST-C:Fog*10", "mnist-c:fog*10")]
    [InlineData("mnist:fog", "mnist:fog")]
    [InlineData("mnist-c:fog", "mnist-c:fog")]
    [InlineData("mnist:shot-noise/every:3", "mnist:shot-noise/every:3")]
    [InlineData("mnist:fog@1*5", "mnist:fog*5")]
    [InlineData("mnist:fog@0*5/first:0", "mnist:fog@0*5/first:0")]
    [InlineData("mnist-c:zigzag@1.25*7/first:2", "mnist-c:zigzag@1.25*7/first:2")]
    [InlineData("mnist-mini-c:canny-edges*5", "mnist-mini-c:canny-edges*5")]
    [InlineData("fashion-mnist-mini[9]:clean*5/none", "fashion-mnist-mini[9]:clean*5/none")]
    [InlineData("  mnist:clean*1 ,fashion-mnist-c:spatter*2  ", "mnist:clean*1, fashion-mnist-c:spatter*2")]
    public void Every_form_parses_to_its_canonical_text_and_back(string text, string canonical)
    {
        StreamSpec spec = StreamSpec.Parse(text);

        Assert.Equal(canonical, spec.ToString());
        StreamSpec again = StreamSpec.Parse(spec.ToString());
        Assert.Equal(spec, again);
        Assert.Equal(canonical, again.ToString());
    }

    [Fact]
    public void Each_segment_holds_what_its_text_says()
    {
        StreamSpec spec = StreamSpec.Parse(
            "mnist:clean*2000, mnist-c:fog*2000, mnist-c:rotate@2*2000/every:10, fashion-mnist:clean*500/none, "
            + "mnist[0-4]:clean*1000, mnist[5-9]:clean*1000/first:100, mnist[1,3,5]:shear");

        Assert.Null(spec.Seed);
        Assert.Equal(7, spec.Segments.Count);
        StreamSegment[] s = [.. spec.Segments];

        Assert.Equal(("mnist", "mnist", "clean", 1.0, (int?)2000, LabelRule.All), (s[0].Source, s[0].BaseSet, s[0].Corruption, s[0].Severity, s[0].Count, s[0].Labels));
        Assert.True(s[0].IsClean);
        Assert.Null(s[0].Classes);
        Assert.Equal("mnist:clean", s[0].Name);

        Assert.Equal(("mnist-c", "mnist", "fog", 1.0), (s[1].Source, s[1].BaseSet, s[1].Corruption, s[1].Severity));
        Assert.False(s[1].IsClean);
        Assert.Equal("mnist-c:fog", s[1].Name);

        Assert.Equal(("rotate", 2.0, LabelRule.Every(10)), (s[2].Corruption, s[2].Severity, s[2].Labels));
        Assert.Equal("mnist-c:rotate@2", s[2].Name);

        Assert.Equal(("fashion-mnist", "fashion-mnist", (int?)500, LabelRule.None), (s[3].Source, s[3].BaseSet, s[3].Count, s[3].Labels));

        Assert.Equal([0, 1, 2, 3, 4], s[4].Classes!);
        Assert.Equal("mnist[0-4]:clean", s[4].Name);

        Assert.Equal([5, 6, 7, 8, 9], s[5].Classes!);
        Assert.Equal(LabelRule.First(100), s[5].Labels);

        Assert.Equal([1, 3, 5], s[6].Classes!);
        Assert.Null(s[6].Count);
    }

    [Theory]
    [InlineData("mnist:clean*2000, mnist:fog 2000",
        "stream spec, segment 2 ('mnist:fog 2000'), column 28: expected '@<severity>', '*<count>', '/<labels>' or ',', found ' 2000'.")]
    [InlineData("mnist:clean 5",
        "stream spec, segment 1 ('mnist:clean 5'), column 12: expected '*<count>', '/<labels>' or ',', found ' 5'.")]
    [InlineData("mnist:fog*10/all*3",
        "stream spec, segment 1 ('mnist:fog*10/all*3'), column 17: expected ',' or the end, found '*3'.")]
    [InlineData("mnist*10",
        "stream spec, segment 1 ('mnist*10'), column 6: expected ':<transform>' after 'mnist', found '*10'.")]
    [InlineData("mnist:*10",
        "stream spec, segment 1 ('mnist:*10'), column 7: expected a transform after ':' (clean, or a corruption such as fog), found '*10'.")]
    [InlineData(":fog",
        "stream spec, segment 1 (':fog'), column 1: expected a data source such as 'mnist', found ':fog'.")]
    [InlineData("mnist:clean@2*10",
        "stream spec, segment 1 ('mnist:clean@2*10'), column 12: 'clean' takes no severity.")]
    [InlineData("mnist:fog@x*10",
        "stream spec, segment 1 ('mnist:fog@x*10'), column 11: expected a severity after '@', as in @2 or @0.5, found 'x*10'.")]
    [InlineData("mnist:fog@11*10",
        "stream spec, segment 1 ('mnist:fog@11*10'), column 10: severity must be in 0..10 (1 is MNIST-C's setting), got 11.")]
    [InlineData("mnist:fog*",
        "stream spec, segment 1 ('mnist:fog*'), column 11: expected a sample count after '*', as in *2000, found the end of the segment.")]
    [InlineData("mnist:fog*0",
        "stream spec, segment 1 ('mnist:fog*0'), column 11: count must be at least 1.")]
    [InlineData("mnist:fog*99999999999",
        "stream spec, segment 1 ('mnist:fog*99999999999'), column 11: count 99999999999 is too large (at most 2147483647).")]
    [InlineData("mnist:fog*10/some",
        "stream spec, segment 1 ('mnist:fog*10/some'), column 14: unknown labels 'some': expected all, none, every:N or first:N.")]
    [InlineData("mnist:fog*10/every:0",
        "stream spec, segment 1 ('mnist:fog*10/every:0'), column 20: every:N needs N >= 1.")]
    [InlineData("mnist:fog*10/every",
        "stream spec, segment 1 ('mnist:fog*10/every'), column 19: 'every' needs a number: every:N.")]
    [InlineData("mnist:fog*10/none:3",
        "stream spec, segment 1 ('mnist:fog*10/none:3'), column 18: 'none' takes no number.")]
    [InlineData("mnist:fog*10/",
        "stream spec, segment 1 ('mnist:fog*10/'), column 14: expected labels after '/' (all, none, every:N or first:N), found the end of the segment.")]
    [InlineData("mnist[4-0]:clean*10",
        "stream spec, segment 1 ('mnist[4-0]:clean*10'), column 7: class range 4-0 runs backwards; write 0-4.")]
    [InlineData("mnist[0-4:clean*10",
        "stream spec, segment 1 ('mnist[0-4:clean*10'), column 10: expected ',' or ']' in the class list, found ':clean*10'.")]
    [InlineData("mnist[]:clean",
        "stream spec, segment 1 ('mnist[]:clean'), column 7: expected a class number, as in [0-4] or [1,3,5], found ']:clean'.")]
    [InlineData("mnist[300]:clean",
        "stream spec, segment 1 ('mnist[300]:clean'), column 7: class 300 is out of range 0..255.")]
    [InlineData("mnist:clean*10,, mnist:fog",
        "stream spec, segment 2 (''), column 16: expected a segment such as 'mnist:clean*2000' (an empty segment: two commas, or one at the end?).")]
    [InlineData("mnist:clean*10, ",
        "stream spec, segment 2 (''), column 17: expected a segment such as 'mnist:clean*2000' (an empty segment: two commas, or one at the end?).")]
    [InlineData("mnist-c:clean*10",
        "stream spec, segment 1 ('mnist-c:clean*10'): 'mnist-c' is the corrupted set: name a corruption (shot-noise, impulse-noise, glass-blur, motion-blur, shear, scale, rotate, brightness, translate, stripe, fog, spatter, dotted-line, zigzag, canny-edges), or use 'mnist:clean'.")]
    [InlineData("mnsit:clean*10",
        "stream spec, segment 1 ('mnsit:clean*10'): unknown source 'mnsit'; known: mnist, fashion-mnist, mnist-mini, fashion-mnist-mini, imu-gestures, mnist-c, fashion-mnist-c, mnist-mini-c, fashion-mnist-mini-c.")]
    [InlineData("", "stream spec is empty: expected segments such as 'mnist:clean*2000, mnist-c:fog*2000'.")]
    [InlineData("   ", "stream spec is empty: expected segments such as 'mnist:clean*2000, mnist-c:fog*2000'.")]
    public void A_bad_spec_names_the_segment_and_the_column(string text, string message)
    {
        var e = Assert.Throws<TinyTrainException>(() => StreamSpec.Parse(text));
        Assert.Equal(message, e.Message);
    }

    [Fact]
    public void An_unknown_corruption_lists_the_known_ones()
    {
        var e = Assert.Throws<TinyTrainException>(() => StreamSpec.Parse("mnist:clean*2000, mnist-c:fgo*2000"));

        Assert.Equal(
            $"stream spec, segment 2 ('mnist-c:fgo*2000'): unknown corruption 'fgo'; known: {string.Join(", ", CorruptionCatalog.Names)}.",
            e.Message);
        Assert.StartsWith("stream spec, segment 2 ('mnist-c:fgo*2000'): unknown corruption 'fgo'; known: shot-noise, impulse-noise,", e.Message);
    }

    [Fact]
    public void An_unknown_transform_on_a_plain_set_lists_clean_too()
    {
        var e = Assert.Throws<TinyTrainException>(() => StreamSpec.Parse("mnist:fog2000"));

        Assert.Equal(
            $"stream spec, segment 1 ('mnist:fog2000'): unknown transform 'fog2000'; known: clean, {string.Join(", ", CorruptionCatalog.Names)}.",
            e.Message);
    }

    [Fact]
    public void Every_corruption_of_the_catalog_is_a_transform()
    {
        foreach (string name in CorruptionCatalog.Names)
        {
            StreamSegment segment = StreamSpec.Parse($"mnist-c:{name}*3").Segments[0];
            Assert.Equal(name, segment.Corruption);
        }
    }

    [Fact]
    public void Messages_are_one_line()
    {
        string[] bad = ["mnist:fog 1", "mnist-c:fgo", "x:clean", "mnist[1:clean", "mnist:fog*10/every:x"];
        foreach (string text in bad)
        {
            var e = Assert.Throws<TinyTrainException>(() => StreamSpec.Parse(text));
            Assert.DoesNotContain('\n', e.Message);
        }
    }

    [Theory]
    [InlineData("all", LabelKind.All, 0, new[] { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 })]
    [InlineData("none", LabelKind.None, 0, new int[0])]
    [InlineData("every:3", LabelKind.Every, 3, new[] { 2, 5, 8 })]
    [InlineData("every:1", LabelKind.Every, 1, new[] { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 })]
    [InlineData("first:4", LabelKind.First, 4, new[] { 0, 1, 2, 3 })]
    [InlineData("first:0", LabelKind.First, 0, new int[0])]
    public void Label_rules_label_exactly_their_samples(string text, LabelKind kind, int n, int[] labelled)
    {
        LabelRule rule = StreamSpec.Parse("mnist:clean*10/" + text).Segments[0].Labels;

        Assert.Equal(new LabelRule(kind, n), rule);
        var actual = new List<int>();
        for (int i = 0; i < 10; i++)
            if (rule.IsLabelled(i)) actual.Add(i);
        Assert.Equal(labelled, actual);
        Assert.Equal(labelled.Length, rule.LabelledCount(10));
    }
}
