using TinyTrain.Emulator.Corruptions;

namespace TinyTrain.Emulator.Tests.Corruptions;

public class AllocationTests
{
    public static TheoryData<string> Names => new([.. CorruptionCatalog.Names, "clean"]);

    /// <summary>
    /// Scratch comes from the per-thread pool (stack for small kernels): after warm-up a call allocates nothing.
    /// The runtime itself may allocate on this thread while it moves a method to its optimized tier (which,
    /// under load, can land in any window), so the 50 calls are measured up to five times: code that
    /// allocates does so in every window, the tier-up in at most one.
    /// </summary>
    [Theory]
    [MemberData(nameof(Names))]
    public void Apply_AfterWarmUp_AllocatesNothing(string name)
    {
        ICorruption c = CorruptionCatalog.Get(name);
        byte[] x = Digits.Image(0);
        var y = new byte[x.Length];
        for (int i = 0; i < 3; i++)
            c.Apply(x, y, 28, 28, 1.0, (ulong)i);
        long allocated = long.MaxValue;
        for (int attempt = 0; attempt < 5 && allocated != 0; attempt++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 50; i++)
                c.Apply(x, y, 28, 28, 1.0, (ulong)i);
            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        }
        Assert.Equal(0, allocated);
    }
}
