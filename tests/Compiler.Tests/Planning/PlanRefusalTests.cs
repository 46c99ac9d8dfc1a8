namespace TinyTrain.Compiler.Tests.Planning;

using TinyTrain.Runtime.Plans;
using static PlanImage;

// Every refusal path: the error kind, and a one-line message naming the file, the problem and the fix.
public class PlanRefusalTests
{
    private const string Source = "models/base.ttplan";

    private static PlanException Refuse(byte[] image, PlanError expected, params string[] fragments)
    {
        PlanException e = Assert.Throws<PlanException>(() => Plan.Load(image, Source));
        Assert.Equal(expected, e.Error);
        Assert.Equal(Source, e.SourceName);
        Assert.IsAssignableFrom<TinyTrainException>(e);
        Assert.StartsWith(Source + ": ", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        foreach (string fragment in fragments) Assert.Contains(fragment, e.Message);
        return e;
    }

    [Fact]
    public void EveryPrefix_IsTruncated()
    {
        byte[] image = new PlanTestNet().Image;
        for (int length = 0; length < image.Length; length++)
        {
            PlanException e = Refuse(image[..length], PlanError.Truncated, "truncated", "copy it again or recompile it");
            Assert.Contains($"the file is {length} bytes", e.Message);
        }
    }

    [Fact]
    public void ChangedMagic_IsForeign()
    {
        byte[] image = new PlanTestNet().Image;
        for (int i = 0; i < 8; i++)
        {
            byte[] copy = (byte[])image.Clone();
            copy[i] ^= 0x20;
            Refuse(copy, PlanError.Foreign, "not a TinyTrain plan", "'tinytrain compile'");
        }
        Refuse("{\"model\": \"cnn-s\"}"u8.ToArray(), PlanError.Foreign, "not a TinyTrain plan");
        Refuse("TT"u8.ToArray(), PlanError.Truncated, "the file is 2 bytes");
        Refuse("TX"u8.ToArray(), PlanError.Foreign);
        // A text-mode transfer turns "\n" into "\r\n": the magic's last bytes catch it.
        byte[] mangled = [.. image[..7], (byte)'\r', .. image[7..]];
        Refuse(mangled, PlanError.Foreign);
    }

    [Fact]
    public void NewerMajorVersion_AsksForAnUpdate()
    {
        byte[] image = new PlanTestNet().Image;
        Put16(image, PlanFormat.HeaderVersionMajor, 2);
        Put16(image, PlanFormat.HeaderVersionMinor, 3);
        Seal(image);
        PlanException e = Refuse(image, PlanError.NewerVersion);
        Assert.Equal($"{Source}: written by a newer TinyTrain (format 2.3); this runtime reads 1.x: update TinyTrain or recompile the plan", e.Message);

        // A newer minor version of the same major is read, its unknown sections skipped.
        image = new PlanTestNet().Image;
        Put16(image, PlanFormat.HeaderVersionMinor, 7);
        Seal(image);
        Assert.Equal(6, Plan.Load(image).OpCount);

        Put16(image, PlanFormat.HeaderVersionMajor, 0);
        Seal(image);
        Refuse(image, PlanError.Invalid, "format 0.7 predates format 1.0");
    }

    [Fact]
    public void AnyChangedByteAfterTheFileLength_IsDamaged()
    {
        byte[] image = new PlanTestNet().Image;
        for (int i = PlanFormat.HeaderFileLength + 4; i < image.Length; i++)
        {
            byte[] copy = (byte[])image.Clone();
            copy[i] ^= (byte)(1 << (i % 8));
            PlanException e = Refuse(copy, PlanError.Damaged);
            Assert.Equal($"{Source}: checksum mismatch: the file is damaged; recompile it", e.Message);
        }
    }

    [Fact]
    public void HeaderLengthDisagreeingWithTheFile_IsTruncatedOrDamaged()
    {
        byte[] image = new PlanTestNet().Image;
        Refuse([.. image, 0, 0, 0, 0], PlanError.Damaged, "4 bytes follow the end its header declares");
        byte[] longer = (byte[])image.Clone();
        Put32(longer, PlanFormat.HeaderFileLength, (uint)image.Length + 100);
        Refuse(longer, PlanError.Truncated, $"its header says {image.Length + 100}");
    }

    public static TheoryData<string, string[]> Forgeries => new()
    {
        { "tensor out of arena", new[] { "tensor 2 'dw'", "arena bytes [700, 828)", "768-byte arena" } },
        { "tensor byte length", new[] { "tensor 3 'pw'", "byte length 127 does not match its shape (8,4,4) of int8 (128 bytes)" } },
        { "tensor zero dim", new[] { "tensor 1 'c1'", "shape (8,0,8) has an empty dimension" } },
        { "tensor huge dims", new[] { "tensor 1 'c1'", "more elements than a plan allows" } },
        { "tensor type", new[] { "tensor 4 'add'", "unknown element type 9" } },
        { "tensor role", new[] { "tensor 4 'add'", "unknown role 6" } },
        { "tensor name", new[] { "tensor 5", "its name", "outside the", "Names section" } },
        { "tensor scale nan", new[] { "tensor 0 'x'", "scale NaN" } },
        { "tensor scale zero", new[] { "tensor 0 'x'", "scale 0" } },
        { "tensor zero point", new[] { "tensor 0 'x'", "zero point 128" } },
        { "tensor int32 misaligned", new[] { "tensor 7 'gap.acc'", "not 4-byte aligned" } },
        { "tensor lifetime", new[] { "tensor 2 'dw'", "lifetime ops 6..3 are not among the plan's 6 ops" } },
        { "arena too large", new[] { "arena is 268435457 bytes" } },
        { "bad geometry", new[] { "op 1 (DepthwiseConv2D -> tensor 2 'dw')", "output (8,4,4) does not follow from input (8,8,8) with kernel 3, stride 1, padding 1" } },
        { "bad constant offset", new[] { "op 5 (FullyConnected -> tensor 6 'logits')", "weights (80 bytes at constant offset" } },
        { "missing weights", new[] { "op 0 (Conv2D -> tensor 1 'c1')", "has no weights" } },
        { "misaligned bias", new[] { "op 2 (Conv2D -> tensor 3 'pw')", "bias at constant offset", "not 4-byte aligned" } },
        { "bad tensor index", new[] { "op 3 (Add -> tensor 4 'add')", "input 1 is tensor 99, but the plan has 9 tensors" } },
        { "bad output index", new[] { "op 3 (Add)", "output is tensor 65535" } },
        { "input 1 on a unary op", new[] { "op 4 (GlobalAvgPool -> tensor 5 'gap')", "takes one input" } },
        { "non-int8 input", new[] { "op 4", "input 0 tensor 7 'gap.acc' is int32, not int8" } },
        { "writes model input", new[] { "op 2", "writes the model input tensor 0 'x'" } },
        { "scratch is model input", new[] { "op 4", "writes the model input" } },
        { "output overlaps input", new[] { "op 2 (Conv2D -> tensor 3 'pw')", "output at arena bytes [64, 192) overlaps input 0 tensor 2 'dw' at [0, 128)" } },
        { "add partly in place", new[] { "op 3 (Add -> tensor 4 'add')", "overlaps input 0 tensor 3 'pw'", "only an Add may write over an input, and exactly" } },
        { "kernel zero", new[] { "op 0", "kernel 0 is outside 1..15" } },
        { "stride nine", new[] { "op 0", "stride 9 is outside 1..8" } },
        { "pad equals kernel", new[] { "op 1", "padding 3 is outside 0..2" } },
        { "groups", new[] { "op 0", "groups 2 does not divide input channels 3" } },
        { "depthwise channels", new[] { "op 1", "depthwise input has 8 channels but output has 4" } },
        { "activation range", new[] { "op 5", "activation range 10..-10" } },
        { "negative multiplier", new[] { "op 2", "multiplier of channel 3 is -5, negative" } },
        { "shift range", new[] { "op 5", "shift of channel 9 is 32, outside -31..31" } },
        { "add shapes", new[] { "op 3", "shapes (8,4,4) + (8,1,1) -> (8,4,4) are not all equal" } },
        { "add left shift", new[] { "op 3", "left shift 24 is outside 0..23" } },
        { "add shift arg", new[] { "op 3", "shift arg 5 is -32, outside -31..31" } },
        { "add with constants", new[] { "op 3", "takes no constants" } },
        { "gap quantization", new[] { "op 4", "output quantization" } },
        { "fc output shape", new[] { "op 5", "is not (OC,1,1)" } },
        { "unknown op kind", new[] { "op 2: unknown kind 77" } },
        { "unknown phase", new[] { "op 2", "unknown phase 5" } },
        { "backward op in the forward pass", new[] { "op 5", "is one of the 6 inference ops, but its phase is Backward" } },
        { "classes", new[] { "the model has 9 classes, but its output tensor 6 'logits' holds 10 values" } },
        { "model output index", new[] { "the model output is tensor 9, but the plan has 9 tensors" } },
        { "forward ops", new[] { "the model has 7 forward ops, but the plan has 6 ops" } },
        { "model name", new[] { "model name", "runs past the end of the Model section" } },
        { "section outside", new[] { "section 3 (Constants)", "outside the room between the section table" } },
        { "section twice", new[] { "lists the Ops section twice" } },
        { "section missing", new[] { "it has no Names section" } },
        { "sections overlap", new[] { "its Tensors and Ops sections overlap" } },
        { "section misaligned", new[] { "the Constants section starts at byte", "not 4-byte aligned" } },
        { "section table too long", new[] { "section table (1000 entries) runs past the end" } },
        { "tensor records", new[] { "Tensors section is 431 bytes, not a whole number of 48-byte records" } },
    };

    [Theory]
    [MemberData(nameof(Forgeries))]
    public void ForgedChecksumOverABrokenStructure_IsInvalid_NamingTheRecord(string forgery, string[] fragments)
    {
        byte[] image = new PlanTestNet().Image;
        Forge(image, forgery);
        Seal(image);
        Refuse(image, PlanError.Invalid, [.. fragments, "invalid plan: ", "; recompile it with this version of TinyTrain"]);
    }

    private static void Forge(byte[] b, string forgery)
    {
        int constants = Section(b, SectionKind.Constants, out int constantsLength);
        switch (forgery)
        {
            case "tensor out of arena": Put32(b, Tensor(b, 2, PlanFormat.TensorArenaOffset), 700); break;
            case "tensor byte length": Put32(b, Tensor(b, 3, PlanFormat.TensorByteLength), 127); break;
            case "tensor zero dim": Put32(b, Tensor(b, 1, PlanFormat.TensorH), 0); break;
            case "tensor huge dims":
                Put32(b, Tensor(b, 1, PlanFormat.TensorH), uint.MaxValue);
                Put32(b, Tensor(b, 1, PlanFormat.TensorW), uint.MaxValue);
                break;
            case "tensor type": b[Tensor(b, 4, PlanFormat.TensorType)] = 9; break;
            case "tensor role": b[Tensor(b, 4, PlanFormat.TensorRole)] = 6; break;
            case "tensor name": Put32(b, Tensor(b, 5, PlanFormat.TensorNameLength), 1000); break;
            case "tensor scale nan": Put32(b, Tensor(b, 0, PlanFormat.TensorScale), BitConverter.SingleToInt32Bits(float.NaN)); break;
            case "tensor scale zero": Put32(b, Tensor(b, 0, PlanFormat.TensorScale), 0); break;
            case "tensor zero point": Put32(b, Tensor(b, 0, PlanFormat.TensorZeroPoint), 128); break;
            case "tensor int32 misaligned": Put32(b, Tensor(b, 7, PlanFormat.TensorArenaOffset), 386); break;
            case "tensor lifetime": Put16(b, Tensor(b, 2, PlanFormat.TensorFirstOp), 6); break;
            case "arena too large": Put32(b, PlanFormat.HeaderArenaBytes, PlanFormat.MaxArenaBytes + 1); break;
            case "bad geometry": Put32(b, OpArg(b, 1, 1), 1); break;
            case "bad constant offset": Put32(b, Op(b, 5, PlanFormat.OpWeights), (uint)constantsLength - 40); break;
            case "missing weights": Put32(b, Op(b, 0, PlanFormat.OpWeights), PlanFormat.NoConstant); break;
            case "misaligned bias": Put32(b, Op(b, 2, PlanFormat.OpBias), U32(b, Op(b, 2, PlanFormat.OpBias)) + 2); break;
            case "bad tensor index": Put16(b, Op(b, 3, PlanFormat.OpInput1), 99); break;
            case "bad output index": Put16(b, Op(b, 3, PlanFormat.OpOutput), PlanFormat.NoTensor); break;
            case "input 1 on a unary op": Put16(b, Op(b, 4, PlanFormat.OpInput1), 2); break;
            case "non-int8 input": Put16(b, Op(b, 4, PlanFormat.OpInput0), 7); break;
            case "writes model input": Put16(b, Op(b, 2, PlanFormat.OpOutput), 0); break;
            case "scratch is model input": Put16(b, Op(b, 4, PlanFormat.OpScratch), 0); break;
            case "output overlaps input": Put32(b, Tensor(b, 3, PlanFormat.TensorArenaOffset), 64); break;
            case "add partly in place": Put32(b, Tensor(b, 4, PlanFormat.TensorArenaOffset), 136); break;
            case "kernel zero": Put32(b, OpArg(b, 0, 0), 0); break;
            case "stride nine": Put32(b, OpArg(b, 0, 1), 9); break;
            case "pad equals kernel": Put32(b, OpArg(b, 1, 2), 3); break;
            case "groups": Put32(b, OpArg(b, 0, 3), 2); break;
            case "depthwise channels":
                // Halve dw's channels consistently (byte length too), so the channel check is what fails.
                Put32(b, Tensor(b, 2, PlanFormat.TensorC), 4);
                Put32(b, Tensor(b, 2, PlanFormat.TensorByteLength), 64);
                break;
            case "activation range": Put32(b, OpArg(b, 5, 0), 10); Put32(b, OpArg(b, 5, 1), -10); break;
            case "negative multiplier": Put32(b, constants + (int)U32(b, Op(b, 2, PlanFormat.OpMultiplier)) + 12, -5); break;
            case "shift range": Put32(b, constants + (int)U32(b, Op(b, 5, PlanFormat.OpShift)) + 36, 32); break;
            case "add shapes": Put16(b, Op(b, 3, PlanFormat.OpInput1), 5); break;
            case "add left shift": Put32(b, OpArg(b, 3, 6), 24); break;
            case "add shift arg": Put32(b, OpArg(b, 3, 5), -32); break;
            case "add with constants": Put32(b, Op(b, 3, PlanFormat.OpShift), 0); break;
            case "gap quantization": Put32(b, Tensor(b, 5, PlanFormat.TensorZeroPoint), -4); break;
            case "fc output shape":
                Put32(b, Tensor(b, 6, PlanFormat.TensorC), 5);
                Put32(b, Tensor(b, 6, PlanFormat.TensorH), 2);
                break;
            case "unknown op kind": Put16(b, Op(b, 2, PlanFormat.OpKindField), 77); break;
            case "unknown phase": b[Op(b, 2, PlanFormat.OpPhase)] = 5; break;
            case "backward op in the forward pass": b[Op(b, 5, PlanFormat.OpPhase)] = (byte)OpPhase.Backward; break;
            case "classes": Put16(b, Model(b, PlanFormat.ModelNumClasses), 9); break;
            case "model output index": Put16(b, Model(b, PlanFormat.ModelOutputTensor), 9); break;
            case "forward ops": Put16(b, Model(b, PlanFormat.ModelForwardOps), 7); break;
            case "model name": Put32(b, Model(b, PlanFormat.ModelNameLength), 200); break;
            case "section outside": Put32(b, SectionEntry(3) + 8, (uint)b.Length); break;
            case "section twice": Put32(b, SectionEntry(4), (uint)SectionKind.Ops); break;
            case "section missing": Put32(b, SectionEntry(4), 99); break;
            case "sections overlap": Put32(b, SectionEntry(1) + 8, U32(b, SectionEntry(1) + 8) + 4); break;
            case "section misaligned": Put32(b, SectionEntry(3) + 4, U32(b, SectionEntry(3) + 4) + 1); break;
            case "section table too long": Put32(b, PlanFormat.HeaderSectionCount, 1000); break;
            case "tensor records": Put32(b, SectionEntry(1) + 8, 431); break;
            default: throw new ArgumentException(forgery);
        }
    }

    private static int SectionEntry(int i) => PlanFormat.HeaderSize + i * PlanFormat.SectionEntrySize;
}
