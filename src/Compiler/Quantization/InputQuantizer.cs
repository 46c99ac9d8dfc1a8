namespace TinyTrain.Compiler.Quantization;

using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Graphs;
using TinyTrain.Compiler.Training;

/// <summary>Turns data set images into a plan's int8 input: the float layout of the trainer, then q = round(v / scale) + zp.</summary>
public sealed class InputQuantizer
{
    private readonly Shape _shape;
    private readonly float _scale;
    private readonly int _zeroPoint;
    private readonly float[] _scratch;

    public InputQuantizer(Shape shape, float scale, int zeroPoint)
    {
        _shape = shape;
        _scale = scale;
        _zeroPoint = zeroPoint;
        _scratch = new float[shape.Size];
    }

    public static InputQuantizer For(Runtime.Plans.Plan plan)
    {
        Runtime.Plans.TensorInfo t = plan.Tensor(plan.InputTensor);
        return new InputQuantizer(new Shape(t.C, t.H, t.W), t.Scale, t.ZeroPoint);
    }

    public int Length => _shape.Size;

    public void Fill(Dataset data, int index, byte[] destination, int offset)
    {
        InputLayout.Fill(data, index, _shape, _scratch, 0);
        for (int i = 0; i < _scratch.Length; i++)
        {
            int q = (int)MathF.Round(_scratch[i] / _scale, MidpointRounding.AwayFromZero) + _zeroPoint;
            destination[offset + i] = (byte)(sbyte)Math.Clamp(q, -128, 127);
        }
    }
}
