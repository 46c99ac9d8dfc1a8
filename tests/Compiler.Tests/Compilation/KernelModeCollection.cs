namespace TinyTrain.Compiler.Tests.Compilation;

/// <summary>Tests that flip the process-wide KernelMode switch run alone, so no other test sees the flip.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class KernelModeCollection
{
    public const string Name = "KernelMode (not parallel)";
}
