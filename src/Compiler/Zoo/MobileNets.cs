namespace TinyTrain.Compiler.Zoo;

using TinyTrain.Compiler.Graphs;

/// <summary>
/// The inverted-residual networks of "On-Device Training Under 256KB Memory" (MbV2-w0.35,
/// Proxyless-w0.3, MCUNet-5FPS), as tiny-training ships them: no feature-mix layer, the
/// classifier right after global average pooling. Block tables are copied from
/// data/reference/tte-models.json (`models.&lt;name&gt;.blocks`); tests check the built graphs
/// against that file's per-layer list.
/// </summary>
internal static class MobileNets
{
    public const int DefaultResolution = 128;

    // All three nets start with conv 3x3, 3 -> 16, stride 2.
    private const int StemChannels = 16;
    private const int StemKernel = 3;
    private const int StemStride = 2;

    /// <summary>
    /// One inverted-residual block: [pw1 1x1 in->in*Expand + BN + ReLU6, absent when Expand is 1]
    /// -> dw KxK stride S + BN + ReLU6 -> pw2 1x1 -> OutChannels + BN (linear bottleneck)
    /// [-> + block input when Residual].
    /// </summary>
    internal readonly record struct Block(int Expand, int OutChannels, int Kernel, int Stride, bool Residual);

    // Comments: block index: in -> mid -> out channels, spatial side in -> out at 128x128.

    internal static readonly Block[] MobileNetV2W035 =
    [
        new(1, 8, 3, 1, false),    // 0: 16 -> 16 -> 8, 64 -> 64
        new(6, 8, 3, 2, false),    // 1: 8 -> 48 -> 8, 64 -> 32
        new(6, 8, 3, 1, true),     // 2: 8 -> 48 -> 8, 32 -> 32
        new(6, 16, 3, 2, false),   // 3: 8 -> 48 -> 16, 32 -> 16
        new(6, 16, 3, 1, true),    // 4: 16 -> 96 -> 16, 16 -> 16
        new(6, 16, 3, 1, true),    // 5: 16 -> 96 -> 16, 16 -> 16
        new(6, 24, 3, 2, false),   // 6: 16 -> 96 -> 24, 16 -> 8
        new(6, 24, 3, 1, true),    // 7: 24 -> 144 -> 24, 8 -> 8
        new(6, 24, 3, 1, true),    // 8: 24 -> 144 -> 24, 8 -> 8
        new(6, 24, 3, 1, true),    // 9: 24 -> 144 -> 24, 8 -> 8
        new(6, 32, 3, 1, false),   // 10: 24 -> 144 -> 32, 8 -> 8
        new(6, 32, 3, 1, true),    // 11: 32 -> 192 -> 32, 8 -> 8
        new(6, 32, 3, 1, true),    // 12: 32 -> 192 -> 32, 8 -> 8
        new(6, 56, 3, 2, false),   // 13: 32 -> 192 -> 56, 8 -> 4
        new(6, 56, 3, 1, true),    // 14: 56 -> 336 -> 56, 4 -> 4
        new(6, 56, 3, 1, true),    // 15: 56 -> 336 -> 56, 4 -> 4
        new(6, 112, 3, 1, false),  // 16: 56 -> 336 -> 112, 4 -> 4
    ];

    internal static readonly Block[] ProxylessW03 =
    [
        new(1, 8, 3, 1, false),    // 0: 16 -> 16 -> 8, 64 -> 64
        new(3, 16, 5, 2, false),   // 1: 8 -> 24 -> 16, 64 -> 32
        new(3, 16, 3, 1, true),    // 2: 16 -> 48 -> 16, 32 -> 32
        new(3, 16, 7, 2, false),   // 3: 16 -> 48 -> 16, 32 -> 16
        new(3, 16, 3, 1, true),    // 4: 16 -> 48 -> 16, 16 -> 16
        new(3, 16, 5, 1, true),    // 5: 16 -> 48 -> 16, 16 -> 16
        new(3, 16, 5, 1, true),    // 6: 16 -> 48 -> 16, 16 -> 16
        new(6, 24, 7, 2, false),   // 7: 16 -> 96 -> 24, 16 -> 8
        new(3, 24, 5, 1, true),    // 8: 24 -> 72 -> 24, 8 -> 8
        new(3, 24, 5, 1, true),    // 9: 24 -> 72 -> 24, 8 -> 8
        new(3, 24, 5, 1, true),    // 10: 24 -> 72 -> 24, 8 -> 8
        new(6, 32, 5, 1, false),   // 11: 24 -> 144 -> 32, 8 -> 8
        new(3, 32, 5, 1, true),    // 12: 32 -> 96 -> 32, 8 -> 8
        new(3, 32, 5, 1, true),    // 13: 32 -> 96 -> 32, 8 -> 8
        new(3, 32, 5, 1, true),    // 14: 32 -> 96 -> 32, 8 -> 8
        new(6, 64, 7, 2, false),   // 15: 32 -> 192 -> 64, 8 -> 4
        new(6, 64, 7, 1, true),    // 16: 64 -> 384 -> 64, 4 -> 4
        new(3, 64, 7, 1, true),    // 17: 64 -> 192 -> 64, 4 -> 4
        new(3, 64, 7, 1, true),    // 18: 64 -> 192 -> 64, 4 -> 4
        new(6, 96, 7, 1, false),   // 19: 64 -> 384 -> 96, 4 -> 4
    ];

    internal static readonly Block[] McuNet5Fps =
    [
        new(1, 8, 3, 1, false),    // 0: 16 -> 16 -> 8, 64 -> 64
        new(4, 16, 3, 2, false),   // 1: 8 -> 32 -> 16, 64 -> 32
        new(3, 16, 3, 1, true),    // 2: 16 -> 48 -> 16, 32 -> 32
        new(3, 24, 7, 2, false),   // 3: 16 -> 48 -> 24, 32 -> 16
        new(5, 24, 3, 1, true),    // 4: 24 -> 120 -> 24, 16 -> 16
        new(5, 40, 3, 2, false),   // 5: 24 -> 120 -> 40, 16 -> 8
        new(4, 40, 7, 1, true),    // 6: 40 -> 160 -> 40, 8 -> 8
        new(4, 48, 5, 1, false),   // 7: 40 -> 160 -> 48, 8 -> 8
        new(3, 48, 3, 1, true),    // 8: 48 -> 144 -> 48, 8 -> 8
        new(4, 48, 3, 1, true),    // 9: 48 -> 192 -> 48, 8 -> 8
        new(5, 96, 7, 2, false),   // 10: 48 -> 240 -> 96, 8 -> 4
        new(4, 96, 5, 1, true),    // 11: 96 -> 384 -> 96, 4 -> 4
        new(4, 96, 5, 1, true),    // 12: 96 -> 384 -> 96, 4 -> 4
        new(6, 160, 3, 1, false),  // 13: 96 -> 576 -> 160, 4 -> 4
    ];

    /// <summary>
    /// Node names follow the reference's layer names (first_conv, blocks.3.pw1, blocks.3.dw,
    /// blocks.3.pw2), with .bn / .relu6 suffixes, blocks.3.add for the skip, pool and classifier.
    /// </summary>
    public static Graph Build(string name, Block[] blocks, int resolution, int classes, int seed)
    {
        int totalStride = StemStride;
        foreach (Block block in blocks) totalStride *= block.Stride;
        ModelZoo.CheckResolution(name, resolution, totalStride);

        var b = new GraphBuilder(name, seed);
        Node x = b.Input(new Shape(3, resolution, resolution));
        x = ConvBn(b, x, StemChannels, StemKernel, StemStride, groups: 1, relu6: true, "first_conv");
        for (int i = 0; i < blocks.Length; i++)
            x = InvertedResidual(b, x, blocks[i], $"blocks.{i}");
        x = b.GlobalAvgPool(x, "pool");
        b.Linear(x, classes, bias: true, name: "classifier");
        return b.Build();
    }

    private static Node InvertedResidual(GraphBuilder b, Node x, Block block, string name)
    {
        Node input = x;
        int mid = x.Shape.C * block.Expand;
        if (block.Expand != 1)
            x = ConvBn(b, x, mid, kernel: 1, stride: 1, groups: 1, relu6: true, name + ".pw1");
        x = ConvBn(b, x, mid, block.Kernel, block.Stride, groups: mid, relu6: true, name + ".dw");
        x = ConvBn(b, x, block.OutChannels, kernel: 1, stride: 1, groups: 1, relu6: false, name + ".pw2");
        if (block.Residual)
        {
            if (input.Shape != x.Shape)
                throw new InvalidOperationException($"{name}: residual block maps {input.Shape} to {x.Shape}; the block table is wrong");
            x = b.Add(x, input, name + ".add");
        }
        return x;
    }

    private static Node ConvBn(GraphBuilder b, Node x, int outChannels, int kernel, int stride, int groups, bool relu6, string name)
    {
        // No conv bias: BatchNorm follows, and folding it gives the conv its bias.
        x = b.Conv(x, outChannels, kernel, stride, padding: (kernel - 1) / 2, groups: groups, bias: false, name: name);
        x = b.BatchNorm(x, name + ".bn");
        return relu6 ? b.Relu6(x, name + ".relu6") : x;
    }
}
