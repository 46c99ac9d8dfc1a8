namespace TinyTrain.Runtime.Plans;

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
public static partial class PlanFormat
{
    /// <summary>The magic as text (ASCII), for readers without Span (nanoFramework); <c>Magic</c> is the same bytes.</summary>
    public const string MagicText = "TTPLAN\u001A\n";

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
    // Training plans: the params region holds writable copies of trained weights (int8) and biases
    // (int32), filled from Constants by the Init ops at bind; the state region holds optimizer state.
    public const int ModelNameLength = 20;       // u32
    public const int ModelBoardOffset = 24;      // u32, into Names: the board the plan was compiled for (UTF-8 id)
    public const int ModelBoardLength = 28;      // u32, 0 when compiled for no particular board

    // Tensor record (48 bytes).
    public const int TensorType = 0;             // u8 ElementType
    public const int TensorRole = 1;             // u8 TensorRole
    public const int TensorFlags = 2;            // u16, TensorFlagTiled, TensorFlagStreamed or 0
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

    /// <summary>Tensor flag: the tensor never exists whole; it lives only as tiles inside a <see cref="OpKind.PatchStage"/>'s
    /// tile buffer (its arena offset is 0 and unused; only the stage's inner ops may name it). A float32 tensor may be
    /// tiled too: it then lives one channel plane at a time in a <see cref="OpKind.ChannelStage"/>'s plane buffer.</summary>
    public const ushort TensorFlagTiled = 1;

    /// <summary>Tensor flag, on the model input only: the input is streamed, never stored whole in the arena (its arena offset
    /// is 0 and unused). The plan's first op is a <see cref="OpKind.PatchStage"/> or <see cref="OpKind.PatchGraphStage"/> whose
    /// args[5] (&gt; 0) is the row capacity of a band after its tile buffer (C x args[5] x W bytes): for each row of tiles the
    /// executor reads into the band the frame rows that row of tiles needs, each frame row once and in order, from a frame the
    /// host holds outside the arena (a camera FIFO, external RAM, the caller's array). No other op reads the input.</summary>
    public const ushort TensorFlagStreamed = 2;

    // Op record (64 bytes).
    public const int OpKindField = 0;            // u16 OpKind
    public const int OpPhase = 2;                // u8 OpPhase
    public const int OpFlags = 3;                // u8 OpFlags
    public const int OpInput0 = 4;               // u16 tensor index
    public const int OpInput1 = 6;               // u16 tensor index or NoTensor
    public const int OpOutput = 8;               // u16 tensor index
    public const int OpScratch = 10;             // u16 tensor index or NoTensor: for forward Conv2D / DepthwiseConv2D /
                                                 // FullyConnected of a training plan, the Bits mask they write in a step
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
    /// <summary>Inference: run by Invoke and by a training step.</summary>
    Forward = 0,
    /// <summary>Gradient propagation: run by a training step only.</summary>
    Backward = 1,
    /// <summary>Weight and bias gradient applied in place as soon as it is computed: training step only.</summary>
    Update = 2,
    /// <summary>Forward-time work that only training needs (1-bit masks): training step only.</summary>
    Save = 3,
    /// <summary>Fills the params region from Constants: run at bind and on reset, never in a step.</summary>
    Init = 4,
}

/// <summary>Bits of an op record's flags byte.</summary>
[Flags]
public enum OpFlags : byte
{
    None = 0,
    /// <summary>The Weights field is an offset into the params region (writable int8 weights), not into Constants.</summary>
    WeightsInParams = 1,
    /// <summary>The Bias field is an offset into the params region (writable int32 biases), not into Constants.</summary>
    BiasInParams = 2,
    /// <summary>A float32 output is added to (+=) instead of overwritten: gradients of a tensor read twice.</summary>
    Accumulate = 4,
    /// <summary>A 1x1 Conv2D (one group) whose weights train only their first trainChannels input channels keeps only
    /// that slice writable: Weights is the params offset of the slice (OutC rows of trainChannels bytes); the whole
    /// weight (OutC rows of InC bytes) stays in Constants at the offset the op's args give, and its frozen columns
    /// are read from there. Conv2D: args[7] = trainChannels, args[8] = that offset; Conv2DBackwardInput (no
    /// Accumulate): args[4], args[5] likewise; Conv2DUpdate: args[4] is trainChannels (it runs on x's first trainChannels
    /// channels with the slice as its whole weight). A forward or
    /// input-gradient op assembles each row in the params region's last InC bytes (the row buffer) and runs the
    /// kernel one output channel at a time: bit for bit the whole weight's results.</summary>
    WeightsSliced = 8,
}

/// <summary>
/// Op kinds and the meaning of their nine int args. Weights, bias, multiplier and shift are
/// offsets into the Constants section; zero points and scales come from the tensor records.
/// Requantization is TFLite's: y = clamp(zp_y + MultiplyByQuantizedMultiplier(acc, M[c], shift[c]), actMin, actMax).
/// </summary>
public enum OpKind : ushort
{
    /// <summary>x (IC,H,W) int8, w (OC,IC/G,K,K) int8, y (OC,OH,OW) int8. args: kernel, stride, pad, groups, actMin, actMax,
    /// maskMode (training plans: with a Scratch mask tensor, the gradient mask written in a training step from the int32
    /// accumulator: 1 = ReLU, acc &gt; 0; 2 = ReLU6, acc &gt; 0 and below the top; 0 = none).</summary>
    Conv2D = 1,
    /// <summary>Depthwise (groups == IC == OC): w (C,1,K,K). args: kernel, stride, pad, actMin, actMax, maskMode.</summary>
    DepthwiseConv2D = 2,
    /// <summary>x flat (IC*H*W) int8, w (OC, IN) int8, y (OC,1,1). args: actMin, actMax, maskMode.</summary>
    FullyConnected = 3,
    /// <summary>y = x0 + x1, TFLite int8 Add. args: input0Multiplier, input0Shift, input1Multiplier, input1Shift, outputMultiplier, outputShift, leftShift, actMin, actMax.</summary>
    Add = 4,
    /// <summary>Average pool, no padding; output keeps the input's scale and zero point. args: kernel, stride, actMin, actMax.</summary>
    AvgPool = 5,
    /// <summary>Mean over H,W; output (C,1,1) keeps the input's scale and zero point. args: actMin, actMax.</summary>
    GlobalAvgPool = 6,

    // ---- Training. Gradients are float32 tensors in the arena, in real units (dL/d(dequantized value)).
    // For the ops below, the Multiplier field is the Constants offset of the op's float32 weight scales
    // s_w[OC] (dequantized w = w_q * s_w[oc]); Weights and Bias follow OpFlags (Constants or params).

    /// <summary>Phase Init. Copies args[0] bytes from Constants at Weights to the params region at args[1].</summary>
    InitParams = 20,
    /// <summary>Phase Save. (Compilers now fuse masks into the forward op; kept for plans that save them separately.)
    /// x = y int8 of a forward op with a fused activation, out = Bits tensor of the same count:
    /// bit = 1 where the gradient passes, lower &lt; y &amp;&amp; y &lt; upper (exclusive; -129 and 128 mean no bound).
    /// args: lower, upper (ReLU: its output's real zero, 128; ReLU6: real zero, real six).</summary>
    SaveMask = 21,
    /// <summary>x = logits int8 (K), out = dlogits float32 (K,1,1). args[0] = objective: 0 = softmax cross-entropy with
    /// the step's label: softmax(z) - onehot(label), z = (q - zp) * scale; 1 = entropy of the prediction (no label),
    /// H = -sum p log p, dH/dz = -p (log p + H); args[1] (entropy) = the filter threshold (float32 bits): a sample with
    /// H above it is not learned from (EATA), and the step skips its backward and update ops.</summary>
    LossGradient = 22,
    /// <summary>x0 = mask Bits, x1 = dy float32, out = dy * mask float32 (out may be x1 itself).</summary>
    MaskGradient = 23,
    /// <summary>x = dy float32 (OC,OH,OW), out = dx float32 (IC,H,W) = transposed conv with w_q * s_w. args: kernel, stride, pad, groups.</summary>
    Conv2DBackwardInput = 24,
    /// <summary>Depthwise form of Conv2DBackwardInput: x = dy (C,OH,OW), out = dx (C,H,W). args: kernel, stride, pad.</summary>
    DepthwiseBackwardInput = 25,
    /// <summary>x = dy float32 (OUT), out = dx float32 (the forward input's shape, IN elements) = W^T dy with w_q * s_w.</summary>
    FullyConnectedBackwardInput = 26,
    /// <summary>Phase Update. x0 = forward input int8 (saved), x1 = dy float32 w.r.t. the op's output (masked).
    /// Weight gradient of the first trainChannels input channels of every output channel, and bias gradient, each
    /// applied at once: QAS (dw / s_w^2 in the int8 domain, db / (s_x s_w)^2) or plain int8 SGD, with stochastic rounding;
    /// Weights / Bias = NoConstant when not trained. args: kernel, stride, pad, groups, trainChannels, qas (0/1),
    /// stateOffset (float32 momentum in the state region for the trained weights then biases, or -1).</summary>
    Conv2DUpdate = 27,
    /// <summary>Depthwise form of Conv2DUpdate: trains the first trainChannels channels. args: kernel, stride, pad, trainChannels, qas, stateOffset.</summary>
    DepthwiseUpdate = 28,
    /// <summary>Fully connected form: x0 = forward input int8 (IN), x1 = dy (OUT); trains the first trainChannels inputs of every output.
    /// args: trainChannels, qas, stateOffset.</summary>
    FullyConnectedUpdate = 29,
    /// <summary>x = dy float32 (C,OH,OW), out = dx float32 (C,H,W). args: kernel, stride.</summary>
    AvgPoolBackward = 30,
    /// <summary>x = dy float32 (C,1,1), out = dx float32 (C,H,W): dy / (H*W) everywhere.</summary>
    GlobalAvgPoolBackward = 31,
    /// <summary>out = x0 + x1, float32 (out may be x0 or x1 itself).</summary>
    GradientAdd = 32,
    /// <summary>Phase Update. A layer that trains only its bias: x0 = dy float32 (C,H,W) w.r.t. its (masked) output;
    /// g_b[c] = sum of dy over the plane, applied at once (QAS: / (s_x s_w[c])). It keeps no input alive, unlike the
    /// *Update ops. Bias = params offset (BiasInParams); Multiplier = float32 weight scales. args: input scale (float32
    /// bits of s_x), qas (0/1), stateOffset (C float32 momentum entries, or -1).</summary>
    BiasUpdate = 33,

    // ---- Memory (kinds 60-69).

    /// <summary>Phase Forward. Runs the next args[0] ops (a chain of frozen Conv2D / DepthwiseConv2D ops without masks,
    /// the first reading x, the last writing y, the ones between writing tiled tensors) tile by tile, so that the
    /// tensors between them never exist whole: for each of args[1] x args[2] tiles of y, each op's input tile with its
    /// halo is built in the Scratch tensor (the tile buffer: args[3] bytes for the padded input tile, then args[4] bytes
    /// for the op's output tile), positions outside the image holding that tensor's zero point, and the op's kernel runs
    /// on it without padding; the last op's tile is copied into y. Outputs are bit for bit those of the ops run whole.
    /// args: ops, tileRows, tileCols, paddedBytes, outputBytes, bandRows (0 unless x is streamed: see TensorFlagStreamed),
    /// spillRows, stageBase: when spillRows &gt; 0, x dies here and y is staged over it: output row r (all channels, C x W bytes,
    /// row-major) is kept at x + stageBase + (r - spillRows) x C x W, on input rows no later tile reads, rows below spillRows in
    /// a spill buffer after the band (spillRows x C x W bytes), and y is moved to its place after the last tile; y then lies
    /// apart from x, or inside x apart from the staged bytes (Kernels.PatchTile.Stage / Unstage, Execution.PatchTiling.SpillRows).</summary>
    PatchStage = 60,
    /// <summary>Phase Backward. Runs the next args[0] ops (at most 8) one channel at a time, for args[1] channels, so that
    /// the float32 gradients between them (tiled tensors of args[1] channels) never exist whole: each exists as one plane
    /// of at most args[2] floats in one of two slots of the Scratch tensor (2 x args[2] floats). The inner ops are the
    /// backward of a 1x1 expansion conv -> depthwise conv -> 1x1 projection conv, taken apart per expanded channel c:
    /// first a Conv2DBackwardInput (1x1, stride 1, no padding, one group) from the whole x (dy of the projection) to a
    /// tiled plane (column c of the projection's weights, into slot 0); then any of MaskGradient (in its input's slot),
    /// DepthwiseBackwardInput (into the other slot), BiasUpdate and Conv2DUpdate (one group, no momentum) on channel c,
    /// each reading a tiled plane held in a slot; at most one Conv2DBackwardInput (1x1) from a tiled plane to the whole
    /// output y, which adds row c's contribution (channel 0 writes it). Each update op draws its random numbers from
    /// where the ops run whole would (a cursor per op), and every sum keeps the whole kernels' order, so the results are
    /// bit for bit those of the inner ops run whole, one after another. args: ops, channels, planeFloats.</summary>
    ChannelStage = 61,
    /// <summary>Phase Forward. A 1x1 Conv2D (stride 1, no padding, one group, no mask, OC &lt;= IC) over an input that dies
    /// here, its output starting at whole plane m of the input (0 &lt;= m &lt;= IC - OC): for each pixel i, the input's
    /// channels x[:, i] are gathered into the Scratch tensor (int8, at least IC + OC bytes), the Conv2D kernel runs on that
    /// (IC,1,1) pixel into the bytes after them, and the result is scattered to y[:, i]. y[o, i] lies over x[m + o, i], a
    /// byte of the same pixel, already read, so the output needs no buffer of its own. Bit for bit the Conv2D op. Fields
    /// and args as Conv2D (kernel 1, stride 1, pad 0, groups 1, actMin, actMax, maskMode 0).</summary>
    PointwiseInPlace = 62,
    /// <summary>Phase Forward. A patch stage (as <see cref="PatchStage"/>: fields, grid and the zero-point border alike) whose
    /// next args[0] inner ops (at most 32) form a small DAG rather than a chain, so that it runs through residual blocks:
    /// frozen Conv2D / DepthwiseConv2D ops without masks and Adds, each input being x (the stage input, whole) or the output
    /// of an earlier inner op (tiled), the last op writing y. For a tile of y, each op computes the union of the rows and
    /// columns its readers need (Execution.PatchGraph.Ranges); its output tile lives in a slot of the tile buffer after the
    /// args[3]-byte padded input area, slots placed first-fit by lifetime over args[4] bytes (PatchGraph.Measure). A window
    /// op builds its padded input tile from its source, an Add reads both inputs from their slots row by row. Outputs are
    /// bit for bit those of the ops run whole. args: ops, tileRows, tileCols, paddedBytes, slotBytes, bandRows (as PatchStage).</summary>
    PatchGraphStage = 63,

    /// <summary>Phase Init. Copies the first args[2] bytes of each of args[0] rows of args[1] bytes from Constants at
    /// Weights to the params region at args[3], packed (row r at args[3] + r * args[2]): the trained slice of a weight
    /// kept writable with <see cref="OpFlags.WeightsSliced"/>. args: rows, rowBytes, sliceBytes, paramsOffset.</summary>
    InitParamsRows = 66,
    // ---- Per-channel scale/shift beside a folded conv (test-time adaptation, channel-wise adapters): 40..49.
    // An affine block is float32 in the params region: scale[C] then shift[C] (Weights, flag WeightsInParams);
    // an optional statistics correction statScale[C] then statShift[C] (Bias, flag BiasInParams, or NoConstant),
    // written by NormStats. The effective map on the real value u of the input is
    //   v = scale * (statScale * u + statShift) + shift,   y = quantize(activation(v)).

    /// <summary>Phase Forward. x = u int8 (C,H,W), the pre-activation output of a folded conv; y int8 (C,H,W) = the map
    /// above, rounded to nearest and clamped to [actMin, actMax]. Scratch (training plans): the gradient mask written in
    /// a training step from v (1 = ReLU, v &gt; 0; 2 = ReLU6, 0 &lt; v &lt; 6). args: actMin, actMax, maskMode.</summary>
    NormAffine = 40,
    /// <summary>Phase Backward. x = dv float32 (C,H,W) (masked), out = du float32 = dv * scale * statScale (out may be x).
    /// Weights / Bias as NormAffine.</summary>
    NormAffineBackwardInput = 41,
    /// <summary>Phase Update. x0 = u int8 (the forward input, saved), x1 = dv float32 (masked). Gradients of scale and shift
    /// (d scale[c] = sum dv * (statScale u + statShift), d shift[c] = sum dv) applied at once by SGD, each step clipped
    /// to +-maxStep, scale kept in [minScale, maxScale], with an L2 pull of weight anchor towards the source values (1, 0).
    /// args: maxStep, minScale, maxScale, anchor (float32 bits).</summary>
    NormAffineUpdate = 42,
    /// <summary>Phase Save (right after its NormAffine, so u need not outlive it; Invoke does not run it). x0 = u int8. Running per-channel statistics of u at batch 1 (Weights: params, float32
    /// mean[C] then var[C]); writes the statistics correction (Bias: params) that maps them onto the source statistics
    /// (Multiplier: Constants, float32 mean[C] then var[C]): statScale = sqrt(varSrc / var), statShift = meanSrc -
    /// statScale * mean. args: momentum (float32 bits), maxStatScale (float32 bits; statScale is kept in [1/max, max]).</summary>
    NormStats = 43,
    /// <summary>Phase Backward. EcoTTA's self-distilled regularization at a meta network's join y = x + m (an Add whose
    /// input 1 is the meta network's output m): x0 = m int8 (saved), x1 = dy float32 (the loss's gradient at the join's
    /// output), out = dm float32 = dy + weight * sign(m) (out may be x1), the gradient of loss + weight * sum |y - x|.
    /// args: weight (float32 bits; lambda / element count for a mean L1 distance).</summary>
    DistillGradient = 44,
}
