namespace TinyTrain.Runtime.Plans;

/// <summary>
/// One op record, read from the plan image when a property is asked for. Tensor indices are
/// <see cref="PlanFormat.NoTensor"/> where absent; constant offsets are relative to the Constants
/// section (<see cref="Plan.ConstantsOffset"/>) and <see cref="PlanFormat.NoConstant"/> where absent.
/// </summary>
public readonly struct OpInfo
{
    private readonly byte[] _image;
    private readonly int _record;

    internal OpInfo(byte[] image, int record)
    {
        _image = image;
        _record = record;
    }

    public OpKind Kind => (OpKind)LittleEndian.U16(_image, _record + PlanFormat.OpKindField);
    public OpPhase Phase => (OpPhase)_image[_record + PlanFormat.OpPhase];
    public OpFlags Flags => (OpFlags)_image[_record + PlanFormat.OpFlags];
    public int Input0 => LittleEndian.U16(_image, _record + PlanFormat.OpInput0);
    public int Input1 => LittleEndian.U16(_image, _record + PlanFormat.OpInput1);
    public int Output => LittleEndian.U16(_image, _record + PlanFormat.OpOutput);
    public int Scratch => LittleEndian.U16(_image, _record + PlanFormat.OpScratch);
    public uint Weights => LittleEndian.U32(_image, _record + PlanFormat.OpWeights);
    public uint Bias => LittleEndian.U32(_image, _record + PlanFormat.OpBias);
    public uint Multiplier => LittleEndian.U32(_image, _record + PlanFormat.OpMultiplier);
    public uint Shift => LittleEndian.U32(_image, _record + PlanFormat.OpShift);

    /// <summary>Arg <paramref name="k"/> (0..8); its meaning depends on <see cref="Kind"/> (see <see cref="OpKind"/>).</summary>
    public int Arg(int k)
    {
        if ((uint)k >= PlanFormat.OpArgCount) throw new ArgumentOutOfRangeException(nameof(k));
        return LittleEndian.I32(_image, _record + PlanFormat.OpArgs + 4 * k);
    }
}
