namespace TinyTrain.Runtime.Plans;

using System.Text;

/// <summary>
/// A loaded plan: the file image itself (on a board, the bytes in Flash) plus the offsets of its
/// sections. Loading checks the file completely (see Plan.Validate.cs) and allocates nothing but
/// this object; tensors and ops are read on demand through small structs, so a plan that loaded
/// can be executed without any range check failing.
/// </summary>
public sealed partial class Plan
{
    /// <summary>A tensor's FirstOp or LastOp when no op writes (the model input) or reads it.</summary>
    public const ushort NoOp = 0xFFFF;

    private readonly byte[] _image;
    private readonly string _source;
    private readonly int _model;
    private readonly int _tensors;
    private readonly int _tensorCount;
    private readonly int _ops;
    private readonly int _opCount;
    private readonly int _constants;
    private readonly int _constantsLength;
    private readonly int _names;
    private readonly int _namesLength;
    private string? _modelName;

    private Plan(byte[] image, string source, in Sections s)
    {
        _image = image;
        _source = source;
        _model = s.ModelOffset;
        _tensors = s.TensorsOffset;
        _tensorCount = s.TensorsLength / PlanFormat.TensorRecordSize;
        _ops = s.OpsOffset;
        _opCount = s.OpsLength / PlanFormat.OpRecordSize;
        _constants = s.ConstantsOffset;
        _constantsLength = s.ConstantsLength;
        _names = s.NamesOffset;
        _namesLength = s.NamesLength;
    }

    /// <summary>
    /// Checks <paramref name="image"/> and wraps it (the array is kept, not copied: do not change it).
    /// Throws <see cref="PlanException"/> naming <paramref name="source"/> if the file is truncated,
    /// foreign, from a newer format, damaged, or structurally invalid.
    /// </summary>
    public static Plan Load(byte[] image, string source = "plan")
    {
        if (image == null) throw new ArgumentNullException(nameof(image));
        if (source == null) throw new ArgumentNullException(nameof(source));
        int length = image.Length;

        // A short file that starts like a plan is truncated; one that does not is foreign.
        ReadOnlySpan<byte> magic = PlanFormat.Magic;
        int compare = length < magic.Length ? length : magic.Length;
        for (int i = 0; i < compare; i++)
        {
            if (image[PlanFormat.HeaderMagic + i] != magic[i])
                throw new PlanException(PlanError.Foreign, source,
                    $"{source}: not a TinyTrain plan (its first bytes are not the .ttplan magic); pass a file written by 'tinytrain compile'");
        }
        const int smallest = PlanFormat.HeaderSize + PlanFormat.TrailerSize;
        if (length < smallest)
            throw new PlanException(PlanError.Truncated, source,
                $"{source}: truncated: the file is {length} bytes, shorter than any plan ({smallest} bytes); copy it again or recompile it");

        int major = LittleEndian.U16(image, PlanFormat.HeaderVersionMajor);
        int minor = LittleEndian.U16(image, PlanFormat.HeaderVersionMinor);
        if (major > PlanFormat.VersionMajor)
            throw new PlanException(PlanError.NewerVersion, source,
                $"{source}: written by a newer TinyTrain (format {major}.{minor}); this runtime reads {PlanFormat.VersionMajor}.x: update TinyTrain or recompile the plan");

        uint declared = LittleEndian.U32(image, PlanFormat.HeaderFileLength);
        if (declared > (uint)length)
            throw new PlanException(PlanError.Truncated, source,
                $"{source}: truncated: the file is {length} bytes but its header says {declared}; copy it again or recompile it");
        if (declared < (uint)length)
            throw new PlanException(PlanError.Damaged, source,
                $"{source}: damaged: {length - declared} bytes follow the end its header declares ({declared} bytes); copy it again or recompile it");

        int body = length - PlanFormat.TrailerSize;
        if (Crc32.Compute(image, 0, body) != LittleEndian.U32(image, body))
            throw new PlanException(PlanError.Damaged, source,
                $"{source}: checksum mismatch: the file is damaged; recompile it");

        if (major < PlanFormat.VersionMajor)
            throw Invalid(source, $"format {major}.{minor} predates format {PlanFormat.VersionMajor}.0, the first this runtime reads");
        Sections sections = ReadSections(image, source);
        var plan = new Plan(image, source, sections);
        plan.Validate();
        return plan;
    }

    /// <summary>The whole file; kernels read weights at <see cref="ConstantsOffset"/> + op.Weights.</summary>
    public byte[] Image => _image;

    /// <summary>The name the plan was loaded under, used in messages.</summary>
    public string Source => _source;

    public int TensorCount => _tensorCount;
    public int OpCount => _opCount;

    /// <summary>The one block of memory the runtime allocates for activations, gradients and scratch.</summary>
    public int ArenaBytes => (int)LittleEndian.U32(_image, PlanFormat.HeaderArenaBytes);

    /// <summary>Absolute offset of the Constants section inside <see cref="Image"/>.</summary>
    public int ConstantsOffset => _constants;
    public int ConstantsLength => _constantsLength;

    public int InputTensor => LittleEndian.U16(_image, _model + PlanFormat.ModelInputTensor);
    public int OutputTensor => LittleEndian.U16(_image, _model + PlanFormat.ModelOutputTensor);
    public int NumClasses => LittleEndian.U16(_image, _model + PlanFormat.ModelNumClasses);

    /// <summary>Ops [0, ForwardOpCount) are the inference pass.</summary>
    public int ForwardOpCount => LittleEndian.U16(_image, _model + PlanFormat.ModelForwardOps);
    public long FlashBytes => LittleEndian.U32(_image, _model + PlanFormat.ModelFlashBytes);
    public long SramParamBytes => LittleEndian.U32(_image, _model + PlanFormat.ModelSramParamBytes);
    public long StateBytes => LittleEndian.U32(_image, _model + PlanFormat.ModelStateBytes);

    /// <summary>The model's name, decoded on first use.</summary>
    /// <summary>The board the plan was compiled for (checked against at compile time), or null.</summary>
    public string? Board
    {
        get
        {
            int length = (int)LittleEndian.U32(_image, _model + PlanFormat.ModelBoardLength);
            return length == 0 ? null : Encoding.UTF8.GetString(_image, _names + (int)LittleEndian.U32(_image, _model + PlanFormat.ModelBoardOffset), length);
        }
    }

    public string ModelName => _modelName ??= Encoding.UTF8.GetString(_image, _model + PlanFormat.ModelRecordSize,
        (int)LittleEndian.U32(_image, _model + PlanFormat.ModelNameLength));

    public TensorInfo Tensor(int i)
    {
        if ((uint)i >= (uint)_tensorCount) throw new ArgumentOutOfRangeException(nameof(i));
        return new TensorInfo(_image, _tensors + i * PlanFormat.TensorRecordSize, _names);
    }

    public OpInfo Op(int i)
    {
        if ((uint)i >= (uint)_opCount) throw new ArgumentOutOfRangeException(nameof(i));
        return new OpInfo(_image, _ops + i * PlanFormat.OpRecordSize);
    }

    // Absolute offset and length of each known section; -1 until the section table names it.
    private struct Sections
    {
        public int ModelOffset, ModelLength, TensorsOffset, TensorsLength, OpsOffset, OpsLength;
        public int ConstantsOffset, ConstantsLength, NamesOffset, NamesLength;

        public void Set(int kind, int offset, int length)
        {
            switch ((SectionKind)kind)
            {
                case SectionKind.Model: ModelOffset = offset; ModelLength = length; break;
                case SectionKind.Tensors: TensorsOffset = offset; TensorsLength = length; break;
                case SectionKind.Ops: OpsOffset = offset; OpsLength = length; break;
                case SectionKind.Constants: ConstantsOffset = offset; ConstantsLength = length; break;
                default: NamesOffset = offset; NamesLength = length; break;
            }
        }

        public readonly void Get(int kind, out int offset, out int length)
        {
            switch ((SectionKind)kind)
            {
                case SectionKind.Model: offset = ModelOffset; length = ModelLength; break;
                case SectionKind.Tensors: offset = TensorsOffset; length = TensorsLength; break;
                case SectionKind.Ops: offset = OpsOffset; length = OpsLength; break;
                case SectionKind.Constants: offset = ConstantsOffset; length = ConstantsLength; break;
                default: offset = NamesOffset; length = NamesLength; break;
            }
        }
    }
}
