using Google.Protobuf;
using Onnx;
namespace TinyTrain.Compiler.Tests.Onnx;
using static OnnxTestSupport;
public class TmpFuzz
{
    [Fact]
    public void Fuzz()
    {
        var originals = new[] { Export(AllOps()), Export(Heads()), Export(TinyTrain.Compiler.Zoo.ModelZoo.Build("cnn-s", 8, 3)) };
        var random = new Random(12345);
        var kinds = new Dictionary<string, int>();
        long[] vals = { -3, -1, 0, 1, 2, 3, 5, 100, 1 << 20, long.MaxValue, long.MinValue, int.MaxValue };
        int ok = 0;
        for (int trial = 0; trial < 20000; trial++)
        {
            var m = ModelProto.Parser.ParseFrom(originals[trial % 3]);
            var g = m.Graph;
            int muts = 1 + random.Next(3);
            for (int k = 0; k < muts; k++)
            {
                switch (random.Next(9))
                {
                    case 0: { var n = g.Node[random.Next(g.Node.Count)]; if (n.Attribute.Count > 0) { var a = n.Attribute[random.Next(n.Attribute.Count)]; if (a.Ints.Count > 0) a.Ints[random.Next(a.Ints.Count)] = vals[random.Next(vals.Length)]; else { a.I = vals[random.Next(vals.Length)]; a.F = (float)random.NextDouble() * 10 - 2; } } break; }
                    case 1: { var t = g.Initializer[random.Next(g.Initializer.Count)]; if (t.Dims.Count > 0) t.Dims[random.Next(t.Dims.Count)] = vals[random.Next(vals.Length)]; else t.Dims.Add(vals[random.Next(vals.Length)]); break; }
                    case 2: { var t = g.Initializer[random.Next(g.Initializer.Count)]; t.DataType = random.Next(17); break; }
                    case 3: { g.Node.RemoveAt(random.Next(g.Node.Count)); break; }
                    case 4: { var n = g.Node[random.Next(g.Node.Count)]; if (n.Input.Count > 0) n.Input[random.Next(n.Input.Count)] = g.Node[random.Next(g.Node.Count)].Output[0]; break; }
                    case 5: { var n = g.Node[random.Next(g.Node.Count)]; n.OpType = new[] { "Conv", "Gemm", "MatMul", "Add", "Reshape", "Flatten", "Clip", "Identity", "Shape", "Gather", "Concat", "Unsqueeze", "Squeeze", "Constant", "Dropout", "AveragePool", "BatchNormalization" }[random.Next(17)]; break; }
                    case 6: { var d = g.Input[0].Type.TensorType.Shape.Dim[random.Next(4)]; d.DimValue = vals[random.Next(vals.Length)]; break; }
                    case 7: { var n = g.Node[random.Next(g.Node.Count)]; if (n.Input.Count > 0) n.Input.RemoveAt(random.Next(n.Input.Count)); break; }
                    case 8: { var n = g.Node[random.Next(g.Node.Count)]; n.Attribute.Add(new AttributeProto { Name = new[] { "axis", "auto_pad", "value", "transB", "allowzero", "axes", "start" }[random.Next(7)], I = vals[random.Next(vals.Length)], S = ByteString.CopyFromUtf8("SAME_UPPER"), Ints = { vals[random.Next(vals.Length)] } }); break; }
                }
            }
            try { var gr = Import(m.ToByteArray()); ok++; if (gr.InputShape.Size < 100000) { try { RunFloat(gr, new float[2 * gr.InputShape.Size], 2); } catch (Exception e) { Assert.Fail($"run {trial}: {e}"); } } }
            catch (TinyTrainException ex) { string k = ex.Message.Length > 70 ? ex.Message[..70] : ex.Message; kinds[k] = kinds.GetValueOrDefault(k) + 1; Assert.DoesNotContain('\n', ex.Message); }
            catch (Exception ex) { Assert.Fail($"trial {trial}: {ex.GetType()}: {ex.Message}\n{ex.StackTrace}"); }
        }
        Console.WriteLine($"ok {ok}");
        foreach (var kv in kinds.OrderByDescending(k => k.Value).Take(60)) Console.WriteLine($"{kv.Value,6} {kv.Key}");
    }
}
