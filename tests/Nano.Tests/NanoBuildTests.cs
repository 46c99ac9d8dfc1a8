namespace TinyTrain.Nano.Tests;

/// <summary>What the nanoFramework build is made of: nanoFramework's mscorlib and nothing else, and src/Runtime's kernels.</summary>
public class NanoBuildTests
{
    [Fact]
    public void The_assembly_references_only_nanoFrameworks_mscorlib()
    {
        var references = NanoAssembly.References();
        var only = Assert.Single(references);
        Assert.Equal("mscorlib", only.Name);
        // .NET's own mscorlib facade is 4.0.0.0; nanoFramework.CoreLibrary 1.17.11's is 1.17.x.
        Assert.Equal(1, only.Version.Major);
        Assert.Equal(17, only.Version.Minor);
    }

    [Fact]
    public void It_holds_the_runtime_reference_kernels_and_not_their_fast_paths()
    {
        var assembly = NanoAssembly.Assembly;
        foreach (string kernel in new[] { "Conv2D", "DepthwiseConv2D", "FullyConnected", "Add", "AvgPool", "GlobalAvgPool" })
        {
            Type type = assembly.GetType("TinyTrain.Runtime.Kernels." + kernel, throwOnError: true)!;
            Assert.Contains(type.GetMethods(), m => m.Name == "RunReference");
            Assert.DoesNotContain(type.GetMethods(), m => m.Name is "Run" or "RunSimd");
        }
        Assert.NotNull(assembly.GetType("TinyTrain.Runtime.Kernels.Training"));
        Assert.NotNull(assembly.GetType("TinyTrain.Runtime.Ood.OodScores"));
    }

    [Fact]
    public void Its_float_bits_agree_with_the_desktop_on_special_values()
    {
        Type floatBits = NanoAssembly.Assembly.GetType("TinyTrain.Runtime.Kernels.FloatBits", throwOnError: true)!;
        var toBits = floatBits.GetMethod("ToBits")!;
        var fromBits = floatBits.GetMethod("FromBits")!;
        int[] bits =
        [
            0, unchecked((int)0x80000000), 1, 0x007FFFFF, 0x00400000, unchecked((int)0x80000001), 0x00800000, 0x3F800000,
            unchecked((int)0xBF800000), 0x7F7FFFFF, 0x7F800000, unchecked((int)0xFF800000), 0x7FC00000, 0x12345678, 0x0000ABCD,
        ];
        foreach (int b in bits)
        {
            float f = BitConverter.Int32BitsToSingle(b);
            Assert.Equal(b, (int)toBits.Invoke(null, [f])!);
            Assert.Equal(b, BitConverter.SingleToInt32Bits((float)fromBits.Invoke(null, [b])!));
        }
        var random = new Random(9);
        for (int i = 0; i < 10000; i++)
        {
            int b = random.Next(int.MinValue, int.MaxValue);
            if ((b & 0x7F800000) == 0x7F800000) continue; // NaN payloads: the FPU may quiet them
            Assert.Equal(b, (int)toBits.Invoke(null, [BitConverter.Int32BitsToSingle(b)])!);
            Assert.Equal(b, BitConverter.SingleToInt32Bits((float)fromBits.Invoke(null, [b])!));
        }
    }
}
