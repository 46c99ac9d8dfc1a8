namespace TinyTrain.Compiler.Tests.Boards;

using TinyTrain.Compiler.Boards;

public class MemoryFitTests
{
    private const long KB = 1024;

    // A 256 KB / 1 MB board with 32 KB / 128 KB reserved, so that the numbers can be checked by hand.
    private static readonly BoardProfile Board = new(
        "test-m4", "Test M4", "Cortex-M4F", 64, 1, BoardFpu.Single, "dsp",
        SramBytes: 256 * KB, FlashBytes: 1024 * KB, ReservedSramBytes: 32 * KB, ReservedFlashBytes: 128 * KB,
        BoardKind.Mcu, "Test datasheet", [], new BoardThroughput(1, 0.5, 1, 4, "test"));

    [Fact]
    public void Overflowing_Sram_HandComputed()
    {
        // arena 310 KB + params 60 KB + state 0 + reserve 32 KB = 402 KB; 402 - 256 = 146 KB over.
        FitReport r = MemoryFit.Check(new MemoryRequirement(310 * KB, 60 * KB, 0, 500 * KB, 20 * KB), Board);

        Assert.Equal((310 * KB, 60 * KB, 0L, 32 * KB, 256 * KB),
            (r.Sram.ArenaBytes, r.Sram.ParamBytes, r.Sram.StateBytes, r.Sram.ReserveBytes, r.Sram.CapacityBytes));
        Assert.Equal(402 * KB, r.Sram.TotalBytes);
        Assert.Equal(r.Sram.TotalBytes, r.Sram.Parts.Sum(p => p.Bytes));
        Assert.Equal(146 * KB, r.Sram.OverBytes);
        Assert.Equal(0, r.Sram.HeadroomBytes);
        Assert.False(r.Sram.Fits);

        // constants 500 KB + plan 20 KB + reserve 128 KB = 648 KB of 1024 KB: 376 KB left.
        Assert.Equal((500 * KB, 20 * KB, 128 * KB, 648 * KB), (r.Flash.ConstantBytes, r.Flash.PlanBytes, r.Flash.ReserveBytes, r.Flash.TotalBytes));
        Assert.Equal(r.Flash.TotalBytes, r.Flash.Parts.Sum(p => p.Bytes));
        Assert.Equal((true, 376 * KB, 0L), (r.Flash.Fits, r.Flash.HeadroomBytes, r.Flash.OverBytes));

        Assert.False(r.Fits);
        Assert.Equal((146 * KB, 0L), (r.SramOverBytes, r.FlashOverBytes));
        Assert.Equal(new MemoryPart(MemoryCategory.Arena, 310 * KB), r.LargestOverflowingPart);
        Assert.Equal(
            "plan needs 402 KB SRAM (arena 310 KB + params 60 KB + state 0 + reserve 32 KB) but test-m4 has 256 KB: over by 146 KB",
            r.Summary);
    }

    [Fact]
    public void ExactlyFull_Fits()
    {
        // 150 + 50 + 24 + 32 = 256 KB of SRAM; 880 + 16 + 128 = 1024 KB of Flash.
        FitReport r = MemoryFit.Check(new MemoryRequirement(150 * KB, 50 * KB, 24 * KB, 880 * KB, 16 * KB), Board);
        Assert.True(r.Fits);
        Assert.Equal((256 * KB, 0L, 0L), (r.Sram.TotalBytes, r.Sram.HeadroomBytes, r.Sram.OverBytes));
        Assert.Equal((1024 * KB, 0L, 0L), (r.Flash.TotalBytes, r.Flash.HeadroomBytes, r.Flash.OverBytes));
        Assert.Null(r.LargestOverflowingPart);
        Assert.Equal(
            "plan fits test-m4: SRAM 256 KB of 256 KB (arena 150 KB + params 50 KB + state 24 KB + reserve 32 KB), "
            + "Flash 1 MB of 1 MB (constants 880 KB + plan 16 KB + runtime reserve 128 KB)",
            r.Summary);
    }

    [Fact]
    public void OneByteOver_IsRefused_AndSaysSo()
    {
        FitReport r = MemoryFit.Check(new MemoryRequirement(150 * KB, 50 * KB, 24 * KB + 1, 0, 0), Board);
        Assert.False(r.Fits);
        Assert.Equal(1, r.SramOverBytes);
        Assert.EndsWith("but test-m4 has 256 KB: over by 1 B", r.Summary);
    }

    [Fact]
    public void BothOver_NamesBoth_AndTheLargestPartOfSramFirst()
    {
        // SRAM: 100 + 120.5 + 10 + 32 = 262.5 KB, over by 6.5 KB. Flash: 900 + 0.5 + 128 = 1028.5 KB, over by 4.5 KB.
        FitReport r = MemoryFit.Check(new MemoryRequirement(100 * KB, 120 * KB + 512, 10 * KB, 900 * KB, 512), Board);
        Assert.Equal((6 * KB + 512, 4 * KB + 512), (r.SramOverBytes, r.FlashOverBytes));
        Assert.Equal(new MemoryPart(MemoryCategory.SramParams, 120 * KB + 512), r.Sram.LargestPlanPart);
        Assert.Equal(new MemoryPart(MemoryCategory.FlashConstants, 900 * KB), r.Flash.LargestPlanPart);
        Assert.Equal(r.Sram.LargestPlanPart, r.LargestOverflowingPart);
        Assert.Equal(
            "plan needs 262.5 KB SRAM (arena 100 KB + params 120.5 KB + state 10 KB + reserve 32 KB) but test-m4 has 256 KB: over by 6.5 KB; "
            + "plan needs 1028.5 KB Flash (constants 900 KB + plan 512 B + runtime reserve 128 KB) but test-m4 has 1 MB: over by 4.5 KB",
            r.Summary);
    }

    [Fact]
    public void FlashOnlyOver_PointsAtFlash()
    {
        FitReport r = MemoryFit.Check(new MemoryRequirement(10 * KB, 0, 0, 100 * KB, 900 * KB), Board);
        Assert.True(r.Sram.Fits);
        Assert.Equal(new MemoryPart(MemoryCategory.Plan, 900 * KB), r.LargestOverflowingPart);
        Assert.StartsWith("plan needs 1.1 MB Flash", r.Summary);
    }

    [Fact]
    public void UsesTheCatalogReserve()
    {
        BoardProfile nrf = BoardCatalog.Get("nrf52840");
        FitReport r = MemoryFit.Check(new MemoryRequirement(100 * KB, 0, 0, 0, 0), nrf);
        Assert.Equal(nrf.ReservedSramBytes, r.Sram.ReserveBytes);
        Assert.Equal(nrf.ReservedFlashBytes, r.Flash.ReserveBytes);
        Assert.Equal(100 * KB + nrf.ReservedSramBytes, r.Sram.TotalBytes);

        // The example in boards/README.md.
        FitReport readme = MemoryFit.Check(new MemoryRequirement(310 * KB, 60 * KB, 0, 500 * KB, 20 * KB), nrf);
        Assert.Equal(
            "plan needs 418 KB SRAM (arena 310 KB + params 60 KB + state 0 + reserve 48 KB) but nrf52840 has 256 KB: over by 162 KB",
            readme.Summary);
    }

    [Fact]
    public void NegativeRequirement_IsAProgrammingError()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => MemoryFit.Check(new MemoryRequirement(-1, 0, 0, 0, 0), Board));
    }

    [Theory]
    [InlineData(0, "0")]
    [InlineData(1023, "1023 B")]
    [InlineData(1024, "1 KB")]
    [InlineData(1536, "1.5 KB")]
    [InlineData(327680, "320 KB")]
    [InlineData(1048576, "1 MB")]
    [InlineData(4294967296, "4 GB")]
    [InlineData(-2048, "-2 KB")]
    [InlineData(1024 * 1024 + 1024, "1025 KB")]
    [InlineData(1024 * 1024 + 1, "1048577 B")]
    [InlineData(16_000_000_000, "14.9 GB")]
    public void ByteSize_Formats(long bytes, string expected) => Assert.Equal(expected, ByteSize.Format(bytes));

    [Theory]
    [InlineData("65536", 65536L)]
    [InlineData("64KB", 65536L)]
    [InlineData("64 kb", 65536L)]
    [InlineData("64K", 65536L)]
    [InlineData("1.5MB", 1572864L)]
    [InlineData("512B", 512L)]
    [InlineData("lots", null)]
    [InlineData("-4KB", null)]
    [InlineData("0.3B", null)]
    [InlineData("", null)]
    public void ByteSize_Parses(string text, long? expected) => Assert.Equal(expected, ByteSize.Parse(text));
}
