namespace TinyTrain.Runtime.Plans;

/// <summary>
/// One tensor record, read from the plan image when a property is asked for (nothing is copied
/// at load). Values are as validated by <see cref="Plan.Load"/>: dims and byte figures fit an int.
/// </summary>
public readonly partial struct TensorInfo
{
    private readonly byte[] _image;
    private readonly int _record;
    private readonly int _names;

    internal TensorInfo(byte[] image, int record, int names)
    {
        _image = image;
        _record = record;
        _names = names;
    }

    public ElementType Type => (ElementType)_image[_record + PlanFormat.TensorType];
    public TensorRole Role => (TensorRole)_image[_record + PlanFormat.TensorRole];
    public int C => (int)LittleEndian.U32(_image, _record + PlanFormat.TensorC);
    public int H => (int)LittleEndian.U32(_image, _record + PlanFormat.TensorH);
    public int W => (int)LittleEndian.U32(_image, _record + PlanFormat.TensorW);
    public int ElementCount => C * H * W;
    public int ArenaOffset => (int)LittleEndian.U32(_image, _record + PlanFormat.TensorArenaOffset);
    public int ByteLength => (int)LittleEndian.U32(_image, _record + PlanFormat.TensorByteLength);
    /// <summary>The tensor lives only as tiles inside a patch stage (see <see cref="PlanFormat.TensorFlagTiled"/>).</summary>
    public bool Tiled => (LittleEndian.U16(_image, _record + PlanFormat.TensorFlags) & PlanFormat.TensorFlagTiled) != 0;
    /// <summary>The model input is streamed band by band into its patch stage (see <see cref="PlanFormat.TensorFlagStreamed"/>).</summary>
    public bool Streamed => (LittleEndian.U16(_image, _record + PlanFormat.TensorFlags) & PlanFormat.TensorFlagStreamed) != 0;
    public float Scale => LittleEndian.F32(_image, _record + PlanFormat.TensorScale);
    public int ZeroPoint => LittleEndian.I32(_image, _record + PlanFormat.TensorZeroPoint);

    /// <summary>The first op that writes the tensor, or <see cref="Plan.NoOp"/> (the model input).</summary>
    public int FirstOp => LittleEndian.U16(_image, _record + PlanFormat.TensorFirstOp);

    /// <summary>The last op that reads the tensor, or <see cref="Plan.NoOp"/>.</summary>
    public int LastOp => LittleEndian.U16(_image, _record + PlanFormat.TensorLastOp);
}
