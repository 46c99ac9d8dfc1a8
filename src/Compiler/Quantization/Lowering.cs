namespace TinyTrain.Compiler.Quantization;

using TinyTrain.Compiler.Graphs;

/// <summary>
/// Canonicalize, step 2: turn a BatchNorm-free float graph into the op list the int8 runtime runs:
/// ReLU/ReLU6 fused into the op that produces their input (when it is the only reader), Flatten
/// dropped (channels-first memory is already flat), Linear becomes FullyConnected.
/// </summary>
public static class Lowering
{
    public static QuantizedModel Run(Graph graph)
    {
        int[] readers = new int[graph.Nodes.Count];
        foreach (Node n in graph.Nodes)
            foreach (int i in n.Inputs) readers[i]++;

        var tensors = new List<QTensor>();
        var ops = new List<QOp>();
        var tensorOf = new int[graph.Nodes.Count];   // float node -> tensor holding its value
        Array.Fill(tensorOf, -1);
        tensors.Add(new QTensor { Id = 0, Name = "input", Shape = graph.InputShape, SourceNode = 0 });
        tensorOf[0] = 0;

        for (int id = 1; id < graph.Nodes.Count; id++)
        {
            Node node = graph.Nodes[id];
            switch (node.Kind)
            {
                case OpKind.Flatten:
                    tensorOf[id] = tensorOf[node.Inputs[0]];
                    continue;
                case OpKind.Relu or OpKind.Relu6:
                {
                    int x = tensorOf[node.Inputs[0]];
                    QOp? producer = ops.Count > 0 && ops[^1].Output == x ? ops[^1] : null;
                    if (producer is null || readers[node.Inputs[0]] != 1 || producer.Activation != Activation.None
                        || producer.Kind is QOpKind.AvgPool or QOpKind.GlobalAvgPool)
                        throw new TinyTrainException($"node '{node.Name}': {node.Kind} must directly follow the conv, linear or add that is its only input to run in int8");
                    ops[^1] = WithActivation(producer, node.Kind == OpKind.Relu ? Activation.Relu : Activation.Relu6);
                    // The fused op's output now holds the activation's value.
                    tensors[x] = new QTensor { Id = x, Name = tensors[x].Name, Shape = tensors[x].Shape, SourceNode = id };
                    tensorOf[id] = x;
                    continue;
                }
                case OpKind.BatchNorm:
                    throw new TinyTrainException($"node '{node.Name}': fold BatchNorm before lowering");
                case OpKind.Input:
                    throw new TinyTrainException($"node '{node.Name}': a second input is not supported");
            }

            int output = tensors.Count;
            tensors.Add(new QTensor { Id = output, Name = node.Name, Shape = node.Shape, SourceNode = id });
            tensorOf[id] = output;
            int[] inputs = Array.ConvertAll(node.Inputs, i => tensorOf[i]);
            ops.Add(node.Kind switch
            {
                OpKind.Conv2d => new QOp
                {
                    Kind = node.IsDepthwise ? QOpKind.DepthwiseConv : QOpKind.Conv, Name = node.Name, Inputs = inputs, Output = output,
                    Kernel = node.Kernel, Stride = node.Stride, Padding = node.Padding, Groups = node.Groups,
                    Weight = (float[])node.Weight!.Data.Clone(), Bias = node.Bias is null ? new float[node.Shape.C] : (float[])node.Bias.Data.Clone(),
                    OutChannels = node.Shape.C, WeightScaleFloor = node.WeightScaleFloor,
                },
                OpKind.Linear => new QOp
                {
                    Kind = QOpKind.FullyConnected, Name = node.Name, Inputs = inputs, Output = output,
                    Weight = (float[])node.Weight!.Data.Clone(), Bias = node.Bias is null ? new float[node.Shape.C] : (float[])node.Bias.Data.Clone(),
                    OutChannels = node.Shape.C, WeightScaleFloor = node.WeightScaleFloor,
                },
                OpKind.Add => new QOp { Kind = QOpKind.Add, Name = node.Name, Inputs = inputs, Output = output },
                OpKind.AvgPool => new QOp { Kind = QOpKind.AvgPool, Name = node.Name, Inputs = inputs, Output = output, Kernel = node.Kernel, Stride = node.Stride },
                OpKind.GlobalAvgPool => new QOp { Kind = QOpKind.GlobalAvgPool, Name = node.Name, Inputs = inputs, Output = output },
                _ => throw new TinyTrainException($"node '{node.Name}': op {node.Kind} has no int8 lowering"),
            });
        }
        int result = tensorOf[graph.Output.Id];
        if (result == 0) throw new TinyTrainException($"graph '{graph.Name}' computes nothing");
        return new QuantizedModel(graph.Name, tensors, ops, result);
    }

    private static QOp WithActivation(QOp op, Activation activation) => new()
    {
        Kind = op.Kind, Name = op.Name, Inputs = op.Inputs, Output = op.Output, Activation = activation,
        Kernel = op.Kernel, Stride = op.Stride, Padding = op.Padding, Groups = op.Groups,
        Weight = op.Weight, Bias = op.Bias, OutChannels = op.OutChannels, WeightScaleFloor = op.WeightScaleFloor,
    };
}
