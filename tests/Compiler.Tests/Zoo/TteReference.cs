// Reads data/reference/tte-models.json, the independent description the zoo's mobile nets are checked against.
using System.Text.Json;

namespace TinyTrain.Compiler.Tests.Zoo;

internal sealed record RefLayer(
    string Name, string Type, int InCh, int OutCh, int Kernel, int Stride, int Pad, int Groups,
    int InHw, int OutHw, string Act, long Weights, long Biases, long Macs, bool ResidualAddAfter);

internal sealed record RefModel(
    string Name, IReadOnlyList<RefLayer> Layers, int NConv, int NResidualAdds, int ClassifierInCh,
    long ParamsWPlusB, long ParamsFp32Style, long TotalMacs, long ClassifierParams10, long ClassifierMacs10);

internal static class TteReference
{
    private static readonly Lazy<JsonDocument> Document = new(() =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(RepoRoot(), "data", "reference", "tte-models.json"))));

    public static RefModel Model(string name)
    {
        JsonElement m = Document.Value.RootElement.GetProperty("models").GetProperty(name);
        var layers = new List<RefLayer>();
        foreach (JsonElement l in m.GetProperty("layers").EnumerateArray())
        {
            layers.Add(new RefLayer(
                l.GetProperty("name").GetString()!, l.GetProperty("type").GetString()!,
                l.GetProperty("in_ch").GetInt32(), l.GetProperty("out_ch").GetInt32(),
                l.GetProperty("kernel").GetInt32(), l.GetProperty("stride").GetInt32(),
                l.GetProperty("pad").GetInt32(), l.GetProperty("groups").GetInt32(),
                l.GetProperty("in_hw").GetInt32(), l.GetProperty("out_hw").GetInt32(),
                l.GetProperty("act").GetString()!, l.GetProperty("weights").GetInt64(),
                l.GetProperty("biases").GetInt64(), l.GetProperty("macs").GetInt64(),
                l.GetProperty("residual_add_after").GetBoolean()));
        }
        JsonElement totals = m.GetProperty("totals_at_128");
        return new RefModel(
            name, layers,
            m.GetProperty("n_conv_excluding_classifier").GetInt32(),
            m.GetProperty("n_residual_adds").GetInt32(),
            m.GetProperty("head").GetProperty("classifier").GetProperty("in_ch").GetInt32(),
            totals.GetProperty("params_w_plus_b").GetInt64(),
            totals.GetProperty("params_fp32_style_w_plus_bn").GetInt64(),
            totals.GetProperty("macs").GetInt64(),
            totals.GetProperty("classifier_params_10cls").GetInt64(),
            totals.GetProperty("classifier_macs_10cls").GetInt64());
    }

    public static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "TinyTrain.sln")))
                return dir.FullName;
        throw new InvalidOperationException($"TinyTrain.sln not found above {AppContext.BaseDirectory}");
    }
}
