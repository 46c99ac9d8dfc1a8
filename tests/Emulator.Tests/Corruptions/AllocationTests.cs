using TinyTrain.Emulator.Corruptions;

namespace TinyTrain.Emulator.Tests.Corruptions;

public class AllocationTests
{
    public static TheoryData<string> Names => new([.. CorruptionCatalog.Names, "clean"]);

    /// <summary>Scratch comes from the shared pool (stack for small kernels): after warm-up a call allocates nothing.</summary>
    [Theory]
    [MemberData(nameof(Names))]
    public void Apply_AfterWarmUp_AllocatesNothing(string name)
    {
        ICorruption c = CorruptionCatalog.Get(name);
        byte[] x = Digits.Image(0);
        var y = new byte[x.Length];
        for (int i = 0; i < 3; i++)
            c.Apply(x, y, 28, 28, 1.0, (ulong)i);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 50; i++)
            c.Apply(x, y, 28, 28, 1.0, (ulong)i);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
