using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Learning;
using TinyTrain.Compiler.Planning;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Compiler.Zoo;
using TinyTrain.Runtime.Execution;
using TinyTrain.Runtime.Plans;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

namespace TinyTrain.Bench;

/// <summary>
/// `memory` (issue 5, item 4): peak SRAM of one training step against the Tiny Training Engine's
/// published figures (paper Fig. 10(a), STM32F746, batch 1, 128x128). For mbv2-w0.35, proxyless-w0.3
/// and mcunet-5fps (random weights, seed 0, 10 classes, calibrated on 4 random inputs), every sparse
/// scheme that data/reference/tte-models.json ships, full update and inference are compiled with the
/// default options; each row gives the planned peak SRAM (arena + writable parameters + optimizer
/// state), the arena's live bytes at the busiest op by category, and the measured high-water mark of
/// one real training step of that plan in the runtime (ArenaProbe, random int8 input) plus parameters
/// and state. Published comparisons are conservative, as the issue asks: each model's largest shipped
/// scheme against the published sparse-update-with-reordering peak, full update against the
/// published full-update peak; the other schemes have no published figure and show the analytic
/// extra memory (the scheme's name) for reference. KB = 1024 bytes.
/// Options: --reference FILE (default data/reference/tte-models.json, found upwards), --models a,b, --patch auto|off|RxC,
/// --inplace-dw on|off, --channel-backward on|off, --inplace-pw on|off, --trained-slices on|off, --patch-mid on|off,
/// --stage-over-input on|off (the defaults are the CLI's: auto, on, on, on, on, on, on),
/// --detail (the largest live tensors at each compared row's peak, on stderr).
/// </summary>
internal static class MemoryBench
{
    private const int Resolution = 128, Classes = 10;

    private static readonly string[] Models = ["mbv2-w0.35", "proxyless-w0.3", "mcunet-5fps"];

    public static object Run(BenchArgs args)
    {
        string referencePath = args.Text("reference", ReferenceFile());
        string[] models = args.Text("models", string.Join(",", Models)).Split(',', StringSplitOptions.RemoveEmptyEntries);
        bool detail = TransferBench.HasFlag("detail");
        string patch = args.Text("patch", "auto");
        bool inPlaceDepthwise = args.Text("inplace-dw", "on") == "on";
        bool channelBackward = args.Text("channel-backward", "on") == "on";
        bool inPlacePointwise = args.Text("inplace-pw", "on") == "on";
        bool trainedSlices = args.Text("trained-slices", "on") == "on";
        bool midStages = args.Text("patch-mid", "on") == "on";
        bool stageOverInput = args.Text("stage-over-input", "on") == "on";
        using JsonDocument reference = JsonDocument.Parse(File.ReadAllBytes(referencePath));
        args.Log($"memory: peak SRAM of one training step, {Resolution}x{Resolution}, {Classes} classes, batch 1, default options " +
            $"(greedy planner, QAS, no momentum); random weights (seed 0), calibrated on 4 random inputs; KB = 1024 B; reference {referencePath}");

        var rows = new List<Row>();
        var effects = new List<Effect>();
        var streamed = new List<Streamed>();
        var clock = Stopwatch.StartNew();
        foreach (string name in models)
        {
            JsonElement model = reference.RootElement.GetProperty("models").GetProperty(name);
            JsonElement published = model.GetProperty("published").GetProperty("peak_sram_kb_stm32f746");
            int publishedFullKb = published.GetProperty("full_update").GetInt32();
            int publishedSparseKb = published.GetProperty("sparse_update_plus_reorder").GetInt32();

            var graph = ModelZoo.Build(name, Resolution, Classes, seed: 0);
            var calibration = CalibrationSet.Random(graph.InputShape, 4, 0);

            var schemes = model.GetProperty("sparse_update_schemes").EnumerateArray().ToList();
            // The largest shipped scheme: the one with the most analytic memory (the last one in the file).
            string largest = schemes.OrderBy(s => s.GetProperty("analytic_extra_memory_kb_recomputed").GetDouble()).Last().GetProperty("name").GetString()!;
            foreach (JsonElement s in schemes)
            {
                string schemeName = s.GetProperty("name").GetString()!;
                var scheme = new SparseScheme(s.GetProperty("n_bias_update").GetInt32(),
                    s.GetProperty("manual_weight_idx").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
                    s.GetProperty("weight_update_ratio").EnumerateArray().Select(e => e.GetDouble()).ToArray());
                var options = new CompileOptions { Trainable = m => TrainableSet.FromScheme(scheme, m, schemeName), Patch = patch, InPlaceDepthwise = inPlaceDepthwise,
                    ChannelBackward = channelBackward, InPlacePointwise = inPlacePointwise, TrainedSlices = trainedSlices, PatchMidStages = midStages,
                    StageOverInput = stageOverInput };
                bool isLargest = schemeName == largest;
                rows.Add(Measure(args, name, schemeName, graph, calibration, options, training: true,
                    isLargest ? publishedSparseKb : null, isLargest ? "sparse+reorder" : null,
                    s.GetProperty("analytic_extra_memory_kb_recomputed").GetDouble(), detail && isLargest));
                if (isLargest)
                    foreach (double limit in new[] { PatchStages.DefaultAutoRecompute, double.PositiveInfinity })
                    {
                        // The input streamed from outside SRAM (--stream-input on): not the conservative comparison, see PrintStreamed.
                        CompileOptions o = options with { Patch = "auto", StreamInput = true, PatchRecomputeLimit = limit };
                        Row r = Measure(args, name, schemeName, graph, calibration, o, training: true, publishedSparseKb, "sparse+reorder", null, false);
                        CompileResult c = PlanCompiler.Compile(graph, calibration, o);
                        long extra = c.Program.Patch!.ExtraMacs + c.Program.MidStages.Sum(m => m.ExtraMacs);
                        long stepMacs = c.Plan.Ops.Sum(op => op.Macs) - extra;
                        streamed.Add(new Streamed(r, limit, c.Program.Patch!, c.Program.MidStages.Count, (double)extra / stepMacs));
                    }
                if (isLargest)
                    foreach ((string p, bool dw, bool cb, bool pw, bool mid, bool staged) in EffectOptions)
                    {
                        Row r = Measure(args, name, schemeName, graph, calibration,
                            options with { Patch = p, InPlaceDepthwise = dw, ChannelBackward = cb, InPlacePointwise = pw, PatchMidStages = mid, StageOverInput = staged },
                            training: true, null, null, null, false);
                        effects.Add(new Effect(name, schemeName, p, dw, cb, pw, mid, staged, r));
                    }
            }
            rows.Add(Measure(args, name, "full", graph, calibration, new CompileOptions { Update = "full", Patch = patch, InPlaceDepthwise = inPlaceDepthwise, ChannelBackward = channelBackward, InPlacePointwise = inPlacePointwise, TrainedSlices = trainedSlices, PatchMidStages = midStages, StageOverInput = stageOverInput }, training: true,
                publishedFullKb, "full update", null, detail));
            rows.Add(Measure(args, name, "inference", graph, calibration, new CompileOptions { Update = "none", Patch = patch, InPlaceDepthwise = inPlaceDepthwise, ChannelBackward = channelBackward, InPlacePointwise = inPlacePointwise, TrainedSlices = trainedSlices, PatchMidStages = midStages, StageOverInput = stageOverInput }, training: false,
                null, null, null, false));
        }

        PrintTable(args, rows, clock.Elapsed);
        PrintEffects(args, effects);
        PrintStreamed(args, streamed);
        return new
        {
            benchmark = "memory",
            resolution = Resolution,
            classes = Classes,
            kb = 1024,
            patch,
            inplace_depthwise = inPlaceDepthwise,
            channel_backward = channelBackward,
            inplace_pointwise = inPlacePointwise,
            trained_slices = trainedSlices,
            patch_mid_stages = midStages,
            stage_over_input = stageOverInput,
            optimizations = effects.Select(e => new
            {
                name = e.Model, scheme = e.Scheme, patch = e.Patch, inplace_depthwise = e.InPlaceDepthwise, channel_backward = e.ChannelBackward, inplace_pointwise = e.InPlacePointwise,
                patch_mid_stages = e.MidStages, stage_over_input = e.StageOverInput,
                peak_sram_bytes = e.Row.PeakSram, measured_high_water_bytes = e.Row.MeasuredSram, arena_bytes = e.Row.Arena, peak_op = e.Row.Peak.OpName,
            }).ToList(),
            streamed_input = streamed.Select(e => new
            {
                name = e.Row.Model, scheme = e.Row.Scheme, recompute_limit = double.IsInfinity(e.RecomputeLimit) ? (double?)null : e.RecomputeLimit,
                stage = $"{e.Patch.FirstOp}..{e.Patch.LastOp}", grid = $"{e.Patch.Rows}x{e.Patch.Cols}", band_rows = e.Patch.BandRows, band_bytes = e.Patch.BandBytes,
                stages_further_in = e.MidStages,
                extra_macs_share_of_step = Math.Round(e.ExtraShare, 3),
                peak_sram_bytes = e.Row.PeakSram, measured_high_water_bytes = e.Row.MeasuredSram, arena_bytes = e.Row.Arena, peak_op = e.Row.Peak.OpName,
                published_bytes = e.Row.PublishedKb!.Value * 1024L, ratio_to_published = Math.Round(e.Row.PeakSram / (e.Row.PublishedKb!.Value * 1024.0), 3),
            }).ToList(),
            models = rows.Select(r => new
            {
                name = r.Model,
                scheme = r.Scheme,
                peak_sram_bytes = r.PeakSram,
                measured_high_water_bytes = r.MeasuredSram,
                published_bytes = r.PublishedKb is { } kb ? kb * 1024L : (long?)null,
                published_figure = r.PublishedWhat,
                ratio_to_published = r.PublishedKb is { } p ? Math.Round(r.PeakSram / (p * 1024.0), 3) : (double?)null,
                analytic_extra_memory_kb = r.AnalyticKb,
                arena_bytes = r.Arena,
                arena_high_water_bytes = r.ArenaHighWater,
                param_bytes = r.Params,
                state_bytes = r.State,
                activation_bytes = r.Peak.ActivationBytes,
                saved_for_backward_bytes = r.Peak.SavedForBackwardBytes,
                gradient_bytes = r.Peak.GradientBytes,
                scratch_bytes = r.Peak.ScratchBytes,
                peak_op = r.Peak.OpName,
            }).ToList(),
        };
    }

    private sealed record Streamed(Row Row, double RecomputeLimit, PatchInfo Patch, int MidStages, double ExtraShare);

    /// <summary>
    /// The largest schemes with the input streamed (--stream-input on): the 48 KB input image is read band by band from where
    /// the host keeps it (a camera FIFO, external RAM), never stored whole in SRAM. Not the conservative comparison: the Tiny
    /// Training Engine's figure held the input in its arena.
    /// </summary>
    private static void PrintStreamed(BenchArgs args, List<Streamed> streamed)
    {
        args.Log("");
        args.Log("the largest schemes with the input streamed (--stream-input on; the frame outside SRAM, read band by band; NOT the conservative " +
            "comparison: the published figures held the input in SRAM):");
        args.Log($"{"model",-15}{"scheme",-8}{"recompute",11}{"stage (+ stages further in)",37}{"grid",7}{"band",8}{"arena",8}{"PEAK",8}{"measured",10}{"halo MACs",11}{"published",11}{"ours/pub",9}");
        foreach (Streamed e in streamed)
        {
            Row r = e.Row;
            string limit = double.IsInfinity(e.RecomputeLimit) ? "unlimited" : $"<= {e.RecomputeLimit * 100:F0} %";
            string stage = e.Patch.FirstOp + ".." + e.Patch.LastOp + (e.MidStages > 0 ? $" +{e.MidStages}" : "");
            args.Log($"{r.Model,-15}{r.Scheme,-8}{limit,11}{stage,37}{e.Patch.Rows + "x" + e.Patch.Cols,7}{Kb(e.Patch.BandBytes),8}" +
                $"{Kb(r.Arena),8}{Kb(r.PeakSram),8}{Kb(r.MeasuredSram),10}{"+" + (e.ExtraShare * 100).ToString("F0", CultureInfo.InvariantCulture) + " %",11}" +
                $"{r.PublishedKb,11}{(r.PeakSram / (r.PublishedKb!.Value * 1024.0)).ToString("F2", CultureInfo.InvariantCulture) + "x",9}");
        }
        args.Log("recompute = auto's limit on the halo recomputation (CompileOptions.PatchRecomputeLimit; the default is 15 % of the step's MACs); " +
            "halo MACs = what all stages recompute, as a share of the step's MACs; band = the input rows the stage holds; measured == planned on " +
            (streamed.All(e => e.Row.ArenaHighWater == e.Row.Arena) ? "every row" : "NOT every row"));
    }

    private sealed record Effect(string Model, string Scheme, string Patch, bool InPlaceDepthwise, bool ChannelBackward, bool InPlacePointwise, bool MidStages,
        bool StageOverInput, Row Row);

    // What each optimization buys: none, each alone, all but one, all four (patch, in-place depthwise, channel backward,
    // in-place pointwise), then all four with patch stages further in, then with the first stage's output staged over its input too.
    private static readonly (string Patch, bool InPlaceDepthwise, bool ChannelBackward, bool InPlacePointwise, bool MidStages, bool StageOverInput)[] EffectOptions =
    [
        ("off", false, false, false, false, false), ("auto", false, false, false, false, false), ("off", true, false, false, false, false),
        ("off", false, true, false, false, false), ("off", false, false, true, false, false), ("off", true, true, true, false, false),
        ("auto", false, true, true, false, false), ("auto", true, false, true, false, false), ("auto", true, true, false, false, false),
        ("auto", true, true, true, false, false), ("auto", true, true, true, true, false), ("auto", true, true, true, true, true),
    ];

    private static readonly string[] EffectNames =
        ["none", "patch", "in-place dw", "channel bw", "in-place pw", "all - patch", "all - dw", "all - channel", "all - pw", "all four", "+ mid stages",
         "+ staged"];

    /// <summary>The largest scheme of each model with each memory optimization off and on: what each one buys.</summary>
    private static void PrintEffects(BenchArgs args, List<Effect> effects)
    {
        args.Log("");
        args.Log("effect of each optimization on the largest scheme (planned peak SRAM, KB; arena in brackets; measured == planned):");
        args.Log($"{"model",-15}{"scheme",-8}" + string.Concat(EffectNames.Select(n => $"{n,15}")) + "  peak op with all");
        foreach (var g in effects.GroupBy(e => (e.Model, e.Scheme)))
        {
            var cells = g.Select(e => $"{Kb(e.Row.PeakSram)} ({Kb(e.Row.Arena)})" + (e.Row.ArenaHighWater == e.Row.Arena ? "" : "!")).ToList();
            args.Log($"{g.Key.Model,-15}{g.Key.Scheme,-8}" + string.Concat(cells.Select(c => $"{c,15}")) + $"  {g.Last().Row.Peak.OpName}");
        }
    }

    private sealed record Row(string Model, string Scheme, int Arena, int ArenaHighWater, int Params, int State, PeakBreakdown Peak,
        int? PublishedKb, string? PublishedWhat, double? AnalyticKb, double Seconds)
    {
        public long PeakSram => (long)Arena + Params + State;
        public long MeasuredSram => (long)ArenaHighWater + Params + State;
    }

    private static Row Measure(BenchArgs args, string model, string scheme, TinyTrain.Compiler.Graphs.Graph graph, CalibrationSet calibration,
        CompileOptions options, bool training, int? publishedKb, string? publishedWhat, double? analyticKb, bool detail)
    {
        var clock = Stopwatch.StartNew();
        CompileResult result = PlanCompiler.Compile(graph, calibration, options);
        var plan = PlanImage.Load(result.Image, $"{model}-{scheme}.ttplan");
        byte[] input = new byte[plan.Tensor(plan.InputTensor).ByteLength];
        var random = new Random(1);
        random.NextBytes(input);
        int label = random.Next(plan.NumClasses);
        int highWater = training ? ArenaProbe.MeasureTrainStep(plan, input, 0, label) : ArenaProbe.MeasureInference(plan, input, 0);
        EmittedPlan p = result.Plan;
        var row = new Row(model, scheme, p.ArenaBytes, highWater, p.ParamBytes, p.StateBytes, p.Peak, publishedKb, publishedWhat, analyticKb,
            clock.Elapsed.TotalSeconds);
        args.Log($"  {model} {scheme}: planned {Kb(row.PeakSram)} KB, measured {Kb(row.MeasuredSram)} KB ({row.Seconds:F1} s)");
        if (detail) LogPeakTensors(args, result, plan);
        return row;
    }

    /// <summary>The tensors live at the busiest op (one row per arena buffer: in-place outputs share their input's), largest first.</summary>
    private static void LogPeakTensors(BenchArgs args, CompileResult result, PlanImage plan)
    {
        int initOps = 0;
        while (initOps < plan.OpCount && plan.Op(initOps).Phase == OpPhase.Init) initOps++;
        int peakOp = initOps + result.Plan.Peak.OpIndex;
        var live = new Dictionary<int, (int Tensor, int Bytes)>();
        for (int t = 0; t < plan.TensorCount; t++)
        {
            TensorInfo info = plan.Tensor(t);
            int first = info.FirstOp == PlanImage.NoOp ? 0 : info.FirstOp;
            int last = info.LastOp == PlanImage.NoOp ? first : info.LastOp;
            if (first > peakOp || last < peakOp) continue;
            if (!live.TryGetValue(info.ArenaOffset, out var seen) || seen.Bytes < info.ByteLength)
                live[info.ArenaOffset] = (t, info.ByteLength);
        }
        long total = live.Values.Sum(v => (long)v.Bytes);
        args.Log($"    live at peak op {peakOp} ({result.Plan.Peak.OpName}, forward ops end at {plan.ForwardOpCount}): {live.Count} buffers, {Kb(total)} KB; largest:");
        foreach ((int t, int bytes) in live.Values.OrderByDescending(v => v.Bytes).Take(12))
        {
            TensorInfo info = plan.Tensor(t);
            PTensor pt = result.Program.Tensors[t];
            args.Log($"      {Kb(bytes),8} KB  {info.Name(),-40} {pt.Role,-16} {pt.Type,-6} {pt.Shape,-14} ops {(info.FirstOp == PlanImage.NoOp ? "input" : info.FirstOp.ToString(CultureInfo.InvariantCulture))}..{info.LastOp}");
        }
    }

    private static void PrintTable(BenchArgs args, List<Row> rows, TimeSpan elapsed)
    {
        args.Log("");
        args.Log($"{"model",-15}{"scheme",-10}{"arena",8}{"params",8}{"state",7}{"PEAK",8}{"act",8}{"saved",8}{"grad",7}{"scratch",8}" +
            $"{"measured",10}{"published",11}{"ours/pub",9}{"analytic",10}  peak op");
        foreach (Row r in rows)
        {
            string published = r.PublishedKb is { } kb ? kb.ToString(CultureInfo.InvariantCulture) : "-";
            string ratio = r.PublishedKb is { } p ? (r.PeakSram / (p * 1024.0)).ToString("F2", CultureInfo.InvariantCulture) + "x" : "";
            string analytic = r.AnalyticKb is { } a ? a.ToString("F1", CultureInfo.InvariantCulture) : "";
            args.Log($"{r.Model,-15}{r.Scheme,-10}{Kb(r.Arena),8}{Kb(r.Params),8}{Kb(r.State),7}{Kb(r.PeakSram),8}" +
                $"{Kb(r.Peak.ActivationBytes),8}{Kb(r.Peak.SavedForBackwardBytes),8}{Kb(r.Peak.GradientBytes),7}{Kb(r.Peak.ScratchBytes),8}" +
                $"{Kb(r.MeasuredSram),10}{published,11}{ratio,9}{analytic,10}  {r.Peak.OpName}");
        }
        args.Log("KB = 1024 B. PEAK = arena + params (writable, SRAM) + state (optimizer); act/saved/grad/scratch = arena bytes live at the " +
            "busiest op (their sum can be below the arena: the greedy layout leaves gaps; or above it: an in-place 1x1 conv's output is " +
            "counted beside the input planes it overwrites); measured = runtime arena high-water of one " +
            "real step + params + state; analytic = the scheme's published analytic extra memory (no measured figure published).");

        var mismatched = rows.Where(r => r.ArenaHighWater != r.Arena).ToList();
        args.Log(mismatched.Count == 0
            ? $"measured high-water mark == planned arena on all {rows.Count} rows"
            : $"MEASURED != PLANNED on {mismatched.Count} rows: " + string.Join(", ", mismatched.Select(r => $"{r.Model} {r.Scheme} ({r.ArenaHighWater} vs {r.Arena} B)")));

        var compared = rows.Where(r => r.PublishedKb is not null).ToList();
        int atOrBelow = compared.Count(r => r.PeakSram <= r.PublishedKb!.Value * 1024L);
        int goal = compared.Count(r => r.PeakSram <= 0.8 * r.PublishedKb!.Value * 1024L);
        args.Log("");
        foreach (Row r in compared)
        {
            long pub = r.PublishedKb!.Value * 1024L;
            string verdict = r.PeakSram <= 0.8 * pub ? "at or below (and >= 20 % under: goal met)" : r.PeakSram <= pub ? "AT OR BELOW the published figure" : "ABOVE the published figure";
            args.Log($"{r.Model} {r.Scheme} vs published {r.PublishedWhat}: {Kb(r.PeakSram)} KB vs {r.PublishedKb} KB = {r.PeakSram / (double)pub:F2}x, " +
                $"{(r.PeakSram > pub ? $"{Kb(r.PeakSram - pub)} KB over" : $"{Kb(pub - r.PeakSram)} KB under")}: {verdict}");
        }
        args.Log(atOrBelow == compared.Count
            ? $"RESULT: at or below every published figure ({compared.Count} of {compared.Count}); {goal} of {compared.Count} meet the 20 %-below goal."
            : $"RESULT: NOT at or below the published figures: {atOrBelow} of {compared.Count} comparisons at or below " +
              $"({goal} of {compared.Count} meet the 20 %-below goal). The bar of issue 5 is not met today.");
        args.Log($"({rows.Count} plans compiled and run in {elapsed.TotalSeconds:F0} s)");
    }

    private static string Kb(long bytes) => (bytes / 1024.0).ToString("F1", CultureInfo.InvariantCulture);

    /// <summary>data/reference/tte-models.json, found from the working directory or the build output upwards.</summary>
    private static string ReferenceFile()
    {
        foreach (string start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (DirectoryInfo? dir = new(start); dir is not null; dir = dir.Parent)
            {
                string path = Path.Combine(dir.FullName, "data", "reference", "tte-models.json");
                if (File.Exists(path)) return path;
            }
        throw new TinyTrain.TinyTrainException($"data/reference/tte-models.json not found from {Directory.GetCurrentDirectory()}; pass --reference <file>");
    }
}
