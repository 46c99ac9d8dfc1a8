namespace TinyTrain.Runtime.Ood;

using TinyTrain.Runtime.Execution;
using TinyTrain.Runtime.Plans;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

/// <summary>Bind-time look-ups the scorers share: where the classifier's features are, and which plan an executor runs.</summary>
public static class OodBinding
{
    /// <summary>
    /// The tensor the last FullyConnected op of the forward pass reads (the classifier's input features),
    /// checked to be still intact after <see cref="Executor.Invoke"/>: no later forward op writes over it.
    /// </summary>
    public static int FeatureTensor(PlanImage plan)
    {
        int forward = plan.ForwardOpCount, fc = -1;
        for (int i = 0; i < forward; i++)
        {
            OpInfo op = plan.Op(i);
            if (op.Phase == OpPhase.Forward && op.Kind == OpKind.FullyConnected) fc = i;
        }
        if (fc < 0)
            throw new TinyTrainException($"{plan.Source}: the model '{plan.ModelName}' has no FullyConnected classifier, so there are no features to score; use the msp or energy score");
        int tensor = plan.Op(fc).Input0;
        TensorInfo x = plan.Tensor(tensor);
        if (x.Type != ElementType.Int8)
            throw new TinyTrainException($"{plan.Source}: the classifier's input '{x.Name()}' is not int8; the hyperdimensional score reads int8 features");
        for (int i = fc + 1; i < forward; i++)
        {
            OpInfo op = plan.Op(i);
            if (op.Phase != OpPhase.Forward) continue;
            TensorInfo y = plan.Tensor(op.Output);
            if (y.ArenaOffset < x.ArenaOffset + x.ByteLength && x.ArenaOffset < y.ArenaOffset + y.ByteLength)
                throw new TinyTrainException($"{plan.Source}: op {i} writes over the classifier's input '{x.Name()}' after the classifier ran, so the features cannot be read after Invoke");
        }
        return tensor;
    }

    /// <summary>A scorer reads offsets of the plan it was bound to; an executor of another plan would give garbage.</summary>
    internal static void CheckSamePlan(Executor executor, byte[] image, string scorer)
    {
        if (!ReferenceEquals(executor.Plan.Image, image))
            throw new TinyTrainException($"{scorer} score: the executor runs plan '{executor.Plan.Source}', not the plan this scorer was bound to; bind the scorer to executor.Plan");
    }
}
