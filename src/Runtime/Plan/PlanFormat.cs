namespace TinyTrain.Runtime.Plan;

/// <summary>
/// The .ttplan file layout: one flat little-endian image, readable in place (on a board: straight
/// from Flash) with no allocation beyond the arena. All offsets are from the start of the file.
///
///   Header        32 bytes   magic, version, file length, section count, arena bytes
///   Section table 12 bytes per section: kind, offset, length
///   Sections      Model, Tensors, Ops, Constants, Names (unknown kinds are skipped: forward compatible)
///   Trailer       4 bytes    CRC-32 (IEEE) of every byte before it
///
/// The plan carries forward, backward and update ops in one list (each op tagged with its phase),
/// so an inference plan and a training plan are the same format.
/// </summary>
public static class PlanFormat
{
    /// <summary>"TTPLAN" then 0x1A 0x0A, which catch a file mangled by text-mode transfer.</summary>
    public static ReadOnlySpan<byte> Magic => "TTPLAN\u001A\n"u8;

    public const ushort VersionMajor = 1;
    public const ushort VersionMinor = 0;

    public const int HeaderSize = 32;
    public const int SectionEntrySize = 12;
    public const int TrailerSize = 4;
    public const int TensorRecordSize = 48;
    public const int OpRecordSize = 64;
    public const int ModelRecordSize = 32;
    public const int OpArgCount = 9;

    /// <summary>Marks an absent tensor index (u16) in an op record.</summary>
    public const ushort NoTensor = 0xFFFF;
    /// <summary>Marks an absent constant offset (u32) in an op record.</summary>
    public const uint NoConstant = 0xFFFFFFFF;

    /// <summary>Plans larger than this are refused before anything is allocated.</summary>
    public const int MaxArenaBytes = 256 * 1024 * 1024;

    // Header fields (byte offsets).
    public const int HeaderMagic = 0;            // 8 bytes
    public const int HeaderVersionMajor = 8;     // u16
    public const int HeaderVersionMinor = 10;    // u16
    public const int HeaderFileLength = 12;      // u32, whole file including the trailer
    public const int HeaderSectionCount = 16;    // u32
    public const int HeaderArenaBytes = 20;      // u32, the planner's peak: the one arena the runtime allocates
    public const int HeaderFlags = 24;           // u32, reserved (0)
    public const int HeaderReserved = 28;        // u32, reserved (0)

    // Model record (section Model, first 32 bytes; the rest of the section is the model name, UTF-8).
    public const int ModelInputTensor = 0;       // u16
    public const int ModelOutputTensor = 2;      // u16, the logits (int8)
    public const int ModelNumClasses = 4;        // u16
    public const int ModelForwardOps = 6;        // u16, ops [0, ForwardOps) are the inference pass
    public const int ModelFlashBytes = 8;        // u32, constants that live in Flash
    public const int ModelSramParamBytes = 12;   // u32, writable (trainable) parameters kept in SRAM, outside the arena
    public const int ModelStateBytes = 16;       // u32, runtime state (optimizer etc.), outside the arena
    public const int ModelNameLength = 20;       // u32
    // 24..31 reserved

    // Tensor record (48 bytes).
    public const int TensorType = 0;             // u8 ElementType
    public const int TensorRole = 1;             // u8 TensorRole
    public const int TensorFlags = 2;            // u16, reserved
    public const int TensorC = 4;                // u32
    public const int TensorH = 8;                // u32
    public const int TensorW = 12;               // u32
    public const int TensorArenaOffset = 16;     // u32
    public const int TensorByteLength = 20;      // u32 == C*H*W*element size (bits: ceil(C*H*W/8))
    public const int TensorScale = 24;           // f32 (quantized types; 0 for float)
    public const int TensorZeroPoint = 28;       // i32
    public const int TensorNameOffset = 32;      // u32, into the Names section
    public const int TensorNameLength = 36;      // u32
    public const int TensorFirstOp = 40;         // u16, first op that writes it (lifetime start; 0xFFFF for the input)
    public const int TensorLastOp = 42;          // u16, last op that reads it (lifetime end)
    // 44..47 reserved

    // Op record (64 bytes).
    public const int OpKindField = 0;            // u16 OpKind
    public const int OpPhase = 2;                // u8 OpPhase
    public const int OpFlags = 3;                // u8, reserved
    public const int OpInput0 = 4;               // u16 tensor index
    public const int OpInput1 = 6;               // u16 tensor index or NoTensor
    public const int OpOutput = 8;               // u16 tensor index
    public const int OpScratch = 10;             // u16 tensor index or NoTensor
    public const int OpWeights = 12;             // u32 offset into Constants (int8 weights) or NoConstant
    public const int OpBias = 16;                // u32 offset into Constants (int32 per output channel) or NoConstant
    public const int OpMultiplier = 20;          // u32 offset into Constants (int32 Q31 per output channel) or NoConstant
    public const int OpShift = 24;               // u32 offset into Constants (int32 per output channel) or NoConstant
    public const int OpArgs = 28;                // i32 x 9, meaning per op kind (see OpKind)
}

public enum SectionKind : uint
{
    Model = 1,
    Tensors = 2,
    Ops = 3,
    Constants = 4,
    Names = 5,
}

public enum ElementType : byte
{
    Int8 = 1,
    Int32 = 2,
    Float32 = 3,
    Bits = 4,
}

public enum TensorRole : byte
{
    Activation = 0,
    Input = 1,
    Output = 2,
    Scratch = 3,
    SavedForBackward = 4,
    Gradient = 5,
}

public enum OpPhase : byte
{
    Forward = 0,
    Backward = 1,
    Update = 2,
}

/// <summary>
/// Op kinds and the meaning of their nine int args. Weights, bias, multiplier and shift are
/// offsets into the Constants section; zero points and scales come from the tensor records.
/// Requantization is TFLite's: y = clamp(zp_y + MultiplyByQuantizedMultiplier(acc, M[c], shift[c]), actMin, actMax).
/// </summary>
public enum OpKind : ushort
{
    /// <summary>x (IC,H,W) int8, w (OC,IC/G,K,K) int8, y (OC,OH,OW) int8. args: kernel, stride, pad, groups, actMin, actMax.</summary>
    Conv2D = 1,
    /// <summary>Depthwise (groups == IC == OC): w (C,1,K,K). args: kernel, stride, pad, actMin, actMax.</summary>
    DepthwiseConv2D = 2,
    /// <summary>x flat (IC*H*W) int8, w (OC, IN) int8, y (OC,1,1). args: actMin, actMax.</summary>
    FullyConnected = 3,
    /// <summary>y = x0 + x1, TFLite int8 Add. args: input0Multiplier, input0Shift, input1Multiplier, input1Shift, outputMultiplier, outputShift, leftShift, actMin, actMax.</summary>
    Add = 4,
    /// <summary>Average pool, no padding; output keeps the input's scale and zero point. args: kernel, stride, actMin, actMax.</summary>
    AvgPool = 5,
    /// <summary>Mean over H,W; output (C,1,1) keeps the input's scale and zero point. args: actMin, actMax.</summary>
    GlobalAvgPool = 6,
}
