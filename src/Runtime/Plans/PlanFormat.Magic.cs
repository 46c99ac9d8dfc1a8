namespace TinyTrain.Runtime.Plans;

// Apart from PlanFormat.cs because a Span does not exist on nanoFramework, which links PlanFormat.cs alone.
public static partial class PlanFormat
{
    /// <summary>"TTPLAN" then 0x1A 0x0A, which catch a file mangled by text-mode transfer.</summary>
    public static ReadOnlySpan<byte> Magic => "TTPLAN\u001A\n"u8;
}
