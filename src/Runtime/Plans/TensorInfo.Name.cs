namespace TinyTrain.Runtime.Plans;

using System.Text;

// Apart from TensorInfo.cs because System.Text is not in nanoFramework's core library, and a board has no use for names.
public readonly partial struct TensorInfo
{
    /// <summary>Decodes the name (UTF-8) from the Names section; allocates the string, so not for hot paths.</summary>
    public string Name()
    {
        int offset = (int)LittleEndian.U32(_image, _record + PlanFormat.TensorNameOffset);
        int length = (int)LittleEndian.U32(_image, _record + PlanFormat.TensorNameLength);
        return Encoding.UTF8.GetString(_image, _names + offset, length);
    }
}
