namespace TinyTrain.Compiler.Tests.Boards;

using TinyTrain.Compiler.Boards;

public class BoardCatalogTests
{
    private static readonly string[] ExpectedIds =
    [
        "stm32f746-disco", "stm32h743", "nrf52840", "esp32-s3", "rp2040", "raspberry-pi-zero-2w", "raspberry-pi-4",
    ];

    [Fact]
    public void EveryBoardLoads_WithPositiveFiguresAndASource()
    {
        Assert.Equal(ExpectedIds.Order(), BoardCatalog.All.Select(b => b.Id).Order());
        foreach (BoardProfile b in BoardCatalog.All)
        {
            Assert.False(string.IsNullOrWhiteSpace(b.Name), b.Id);
            Assert.False(string.IsNullOrWhiteSpace(b.Core), b.Id);
            Assert.False(string.IsNullOrWhiteSpace(b.Source), b.Id);
            Assert.True(b.ClockMhz > 0 && b.Cores > 0, b.Id);
            Assert.True(b.SramBytes > 0 && b.FlashBytes > 0, b.Id);
            Assert.True(b.ReservedSramBytes > 0 && b.ReservedFlashBytes > 0, b.Id);
            Assert.True(b.UsableSramBytes > 0 && b.UsableFlashBytes > 0, b.Id);
            Assert.NotEmpty(b.Notes);
            Assert.True(b.Throughput.ConvMacsPerCycle > 0 && b.Throughput.DepthwiseMacsPerCycle > 0, b.Id);
            Assert.True(b.Throughput.PointwiseMacsPerCycle > 0 && b.Throughput.MemoryBytesPerCycle > 0, b.Id);
            Assert.False(string.IsNullOrWhiteSpace(b.Throughput.Note), b.Id);
        }
    }

    [Fact]
    public void Figures_MatchTheDatasheets()
    {
        BoardProfile f7 = BoardCatalog.Get("stm32f746-disco");
        Assert.Equal(("Cortex-M7", 216, BoardFpu.Single, "dsp"), (f7.Core, f7.ClockMhz, f7.Fpu, f7.Simd));
        Assert.Equal((320 * 1024L, 1024 * 1024L), (f7.SramBytes, f7.FlashBytes));

        BoardProfile h7 = BoardCatalog.Get("stm32h743");
        Assert.Equal((480, BoardFpu.Double, 512 * 1024L, 2 * 1024 * 1024L), (h7.ClockMhz, h7.Fpu, h7.SramBytes, h7.FlashBytes));

        BoardProfile nrf = BoardCatalog.Get("nrf52840");
        Assert.Equal(("Cortex-M4F", 64, 256 * 1024L, 1024 * 1024L), (nrf.Core, nrf.ClockMhz, nrf.SramBytes, nrf.FlashBytes));

        BoardProfile esp = BoardCatalog.Get("esp32-s3");
        Assert.Equal((2, 240, 512 * 1024L, 8 * 1024 * 1024L), (esp.Cores, esp.ClockMhz, esp.SramBytes, esp.FlashBytes));

        BoardProfile rp = BoardCatalog.Get("rp2040");
        Assert.Equal((BoardFpu.None, "none", 2, 264 * 1024L), (rp.Fpu, rp.Simd, rp.Cores, rp.SramBytes));
        Assert.False(rp.HasFpu);

        BoardProfile zero = BoardCatalog.Get("raspberry-pi-zero-2w");
        Assert.Equal((BoardKind.Linux, "neon", 4, 512L << 20), (zero.Kind, zero.Simd, zero.Cores, zero.SramBytes));

        BoardProfile pi4 = BoardCatalog.Get("raspberry-pi-4");
        Assert.Equal(("Cortex-A72", 1500, 4L << 30), (pi4.Core, pi4.ClockMhz, pi4.SramBytes));
    }

    [Fact]
    public void All_IsMicrocontrollersFirst_ThenBySmallestUsableSram()
    {
        IReadOnlyList<BoardProfile> all = BoardCatalog.All;
        for (int i = 1; i < all.Count; i++)
        {
            var (a, b) = (all[i - 1], all[i]);
            Assert.True(a.Kind < b.Kind || (a.Kind == b.Kind && a.UsableSramBytes <= b.UsableSramBytes), $"{a.Id} before {b.Id}");
        }
    }

    [Fact]
    public void Get_IsCaseInsensitive()
    {
        Assert.Same(BoardCatalog.Get("nrf52840"), BoardCatalog.Get("NRF52840"));
    }

    [Fact]
    public void Get_UnknownId_ListsTheKnownOnes()
    {
        var e = Assert.Throws<TinyTrainException>(() => BoardCatalog.Get("stm32f4-nope"));
        Assert.Contains("Unknown board 'stm32f4-nope'", e.Message);
        foreach (string id in ExpectedIds)
            Assert.Contains(id, e.Message);
        Assert.Null(BoardCatalog.TryGet("stm32f4-nope"));
    }

    [Fact]
    public void Build_RefusesDuplicateIds()
    {
        BoardProfile b = BoardCatalog.Get("rp2040");
        var e = Assert.Throws<TinyTrainException>(() => BoardCatalog.Build([b, b with { Name = "copy" }]));
        Assert.Contains("'rp2040' is defined twice", e.Message);
    }
}
