namespace TinyTrain.Runtime.Plans;

using static LittleEndian;

// Validation of OpKind.PointwiseInPlace: a 1x1 Conv2D without a mask whose output starts at a whole plane m of its
// input, 0 <= m <= IC - OC (each output byte then lies over an input byte of the same pixel), with a pixel scratch of
// at least IC + OC bytes apart from both.
public sealed partial class Plan
{
    private void ValidatePointwiseInPlace(int j, int r, int flags)
    {
        byte[] b = _image;
        int in0 = U16(b, r + PlanFormat.OpInput0), in1 = U16(b, r + PlanFormat.OpInput1);
        int output = U16(b, r + PlanFormat.OpOutput), scratch = U16(b, r + PlanFormat.OpScratch);
        RequireTensor(j, "input 0", in0, ElementType.Int8);
        RequireOneInput(j, in1);
        RequireTensor(j, "output", output, ElementType.Int8);
        RequireTensor(j, "pixel buffer (scratch)", scratch, ElementType.Int8);
        if (in0 == InputTensor || output == InputTensor || scratch == InputTensor)
            throw Invalid(_source, $"{OpLabel(j)}: runs in place, so it may not read or write the model input {TensorLabel(InputTensor)}");
        TensorInfo x = Tensor(in0), y = Tensor(output), s = Tensor(scratch);
        if (x.Tiled || y.Tiled || s.Tiled)
            throw Invalid(_source, $"{OpLabel(j)}: its input, output and pixel buffer must exist whole in the arena, not as tiles");
        if (Arg(r, 0) != 1 || Arg(r, 1) != 1 || Arg(r, 2) != 0 || Arg(r, 3) != 1 || Arg(r, 6) != 0)
            throw Invalid(_source, $"{OpLabel(j)}: args kernel {Arg(r, 0)}, stride {Arg(r, 1)}, padding {Arg(r, 2)}, groups {Arg(r, 3)}, mask mode {Arg(r, 6)} " +
                "are not 1, 1, 0, 1, 0: only a 1x1 conv without a mask runs in place");
        CheckOutputSize(j, x, y, 1, 1, 0, "input", "output");
        CheckActivation(j, r, 4);
        CheckChannelConstants(j, r, flags, y.C, Multiply(y.C, x.C));
        long plane = (long)x.H * x.W, d = (long)y.ArenaOffset - x.ArenaOffset;
        if (d < 0 || d % plane != 0 || d / plane > x.C - y.C)
            throw Invalid(_source, $"{OpLabel(j)}: its output starts at arena byte {y.ArenaOffset}, not at a whole plane 0..{x.C - y.C} of its input " +
                $"(arena byte {x.ArenaOffset}, {plane}-byte planes); in place, each output byte must lie over the same pixel's input byte");
        if (s.ByteLength < x.C + y.C)
            throw Invalid(_source, $"{OpLabel(j)}: its pixel buffer {TensorLabel(scratch)} holds {s.ByteLength} bytes, but a pixel needs {x.C} + {y.C}");
        CheckApart(j, scratch, in0, "input");
        CheckApart(j, scratch, output, "output");
    }
}
