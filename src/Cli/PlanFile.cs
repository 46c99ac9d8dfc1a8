namespace TinyTrain.Cli;

/// <summary>Reads a .ttplan file from disk; the runtime's loader says what is wrong with a bad one.</summary>
internal static class PlanFile
{
    public static TinyTrain.Runtime.Plans.Plan Load(string path)
    {
        if (!File.Exists(path))
            throw new TinyTrainException($"{path}: no such plan file; make one with `tinytrain compile`");
        return TinyTrain.Runtime.Plans.Plan.Load(File.ReadAllBytes(path), path);
    }
}
