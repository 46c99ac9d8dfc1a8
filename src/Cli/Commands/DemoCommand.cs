using Spectre.Console;
using TinyTrain.Adapters.Kinds;
using TinyTrain.Adapters.Packs;
using TinyTrain.Adapters.Routing;
using TinyTrain.Compiler.Analysis;
using TinyTrain.Compiler.Boards;
using TinyTrain.Compiler.Compilation;
using TinyTrain.Compiler.Quantization;
using TinyTrain.Compiler.Data;
using TinyTrain.Compiler.Onnx;
using TinyTrain.Compiler.Training;
using TinyTrain.Compiler.Zoo;

namespace TinyTrain.Cli.Commands;

/// <summary>
/// `tinytrain demo`: the whole path that exists so far, on the bundled data, with no network:
/// model -> float training -> ONNX out and back in -> int8 plan -> the runtime's accuracy and memory ->
/// on-device int8 training of a new task -> the emulator with drift -> test-time adaptation without labels ->
/// new tasks as adapter packs beside the frozen base, routed without a task label -> a fleet sharing updates over MQTT.
/// </summary>
internal static class DemoCommand
{
    public static int Run(string[] args, CommandContext context)
    {
        var a = new Arguments(args, new HashSet<string>());
        string dataName = a.Option("data") ?? "fashion-mnist-mini";
        int epochs = a.Int("epochs", 1, 100) ?? 4;
        string outDir = a.Option("out") ?? Path.Combine(Path.GetTempPath(), "tinytrain-demo");
        a.EnsureAllUsed(0);
        IAnsiConsole console = context.Console;
        var clock = System.Diagnostics.Stopwatch.StartNew();

        console.Write(new Rule("[bold]TinyTrain demo[/]").LeftJustified());
        Dataset train = DataCatalog.Load(dataName, Split.Train), test = DataCatalog.Load(dataName, Split.Test);
        console.MarkupLine($"1. data: [bold]{Markup.Escape(dataName)}[/], bundled with TinyTrain: {train.Count:N0} training and {test.Count:N0} test images, " +
                           $"{train.NumClasses} classes ({Markup.Escape(string.Join(", ", train.ClassNames.Take(4)))}, ...)");

        var graph = ModelZoo.Build("cnn-s", classes: train.NumClasses, seed: 0);
        ModelStats stats = ModelStats.Compute(graph);
        console.MarkupLine($"2. model: [bold]cnn-s[/], {stats.Params:N0} parameters ({InfoCommand.Bytes(stats.Params)} as int8), " +
                           $"{stats.Macs:N0} MACs per image, peak activation {InfoCommand.Bytes(stats.PeakActivationBytesInt8)} in int8");

        float before = Trainer.Evaluate(graph, test);
        console.MarkupLine($"3. float training on the CPU ({epochs} epochs, seed 0); untrained accuracy {before:P1}");
        var options = new TrainOptions { Epochs = epochs, Seed = 0, BatchSize = 32, LearningRate = 0.05f };
        TrainResult result = Consoles.WithProgress(console, "training cnn-s", progress =>
            Trainer.Train(graph, train, test, options, progress,
                e => console.MarkupLine($"   epoch {e.Epoch}/{e.Epochs}: loss {e.Loss:F3}, test accuracy {e.TestAccuracy:P1}")));

        Directory.CreateDirectory(outDir);
        string onnxPath = Path.Combine(outDir, "cnn-s.onnx");
        OnnxExporter.Export(graph, onnxPath);
        var imported = OnnxImporter.Import(onnxPath);
        float maxDiff = MaxOutputDifference(graph, imported, test, 64);
        float importedAccuracy = Trainer.Evaluate(imported, test);
        console.MarkupLine($"4. exported to ONNX ({new FileInfo(onnxPath).Length:N0} bytes, {Markup.Escape(onnxPath)}) and imported back: " +
                           $"largest logit difference {maxDiff:G3}, accuracy {importedAccuracy:P1}");

        CompileResult compiled = PlanCompiler.Compile(graph, CalibrationSet.FromData(train, graph.InputShape, 512), new CompileOptions());
        string planPath = Path.Combine(outDir, "cnn-s.ttplan");
        File.WriteAllBytes(planPath, compiled.Image);
        var plan = TinyTrain.Runtime.Plans.Plan.Load(File.ReadAllBytes(planPath), planPath);
        EvalResult int8 = PlanEvaluator.Evaluate(plan, test);
        BoardProfile board = BoardCatalog.Get("stm32f746-disco");
        FitReport fit = MemoryFit.Check(PlanReport.Requirement(compiled), board);
        console.MarkupLine($"5. compiled to an int8 plan ({Markup.Escape(planPath)}): BatchNorm folded, ReLU fused, calibrated on 512 images; " +
                           $"Flash {compiled.Image.Length:N0} bytes, SRAM arena {compiled.Plan.ArenaBytes:N0} bytes (naive layout {compiled.Plan.NaiveMemory.PeakBytes:N0})");
        console.MarkupLine($"6. the int8 runtime (one arena, no allocation per inference) on the {int8.Samples:N0} test images: accuracy {int8.Accuracy:P1}; " +
                           $"{Markup.Escape(fit.Summary)}");

        // 7. On-device learning: the clothes model learns digits, a task it has never seen, at batch 1 in int8.
        Dataset digits = DataCatalog.Load("mnist-mini", Split.Train), digitsTest = DataCatalog.Load("mnist-mini", Split.Test);
        CompileResult trainable = PlanCompiler.Compile(graph, CalibrationSet.FromData(digits, graph.InputShape, 256), new CompileOptions { Update = "bias:2" });
        var trainPlan = TinyTrain.Runtime.Plans.Plan.Load(trainable.Image, "cnn-s.bias2.ttplan");
        console.MarkupLine($"7. on-device learning of a new task (digits, mnist-mini) with the int8 runtime: update bias:2 (biases of the last 2 convs + classifier), " +
                           $"SRAM {trainable.Plan.ArenaBytes:N0} B arena + {trainable.Plan.ParamBytes:N0} B writable parameters");
        DeviceTrainingResult learned = Consoles.WithProgress(console, "training on the device", progress =>
            DeviceTraining.Run(trainPlan, digits, digitsTest, new DeviceTrainingOptions { Steps = 800, LearningRate = 0.01f, Seed = 0 }, progress));
        console.MarkupLine($"   digits accuracy {learned.AccuracyBefore:P1} -> [green]{learned.AccuracyAfter:P1}[/] after {learned.Steps} steps " +
                           $"({learned.StepsPerSecond:F0} steps/s here); measured arena high-water {learned.HighWaterBytes:N0} B = plan {learned.ArenaBytes:N0} B");

        // 8. The emulator: the clothes model on the default board while the camera fogs up; labels now and then.
        BoardProfile defaultBoard = BoardCatalog.Get("stm32f746-disco");
        CompileResult adaptive = PlanCompiler.Compile(graph, CalibrationSet.FromData(train, graph.InputShape, 256), new CompileOptions { Update = "bias:2" });
        var adaptivePlan = TinyTrain.Runtime.Plans.Plan.Load(adaptive.Image, "cnn-s.adaptive.ttplan");
        const string streamSpec = "fashion-mnist-mini:clean*300/none, fashion-mnist-mini-c:fog*900/every:3";
        var device = new TinyTrain.Emulator.Device.EmulatedDevice(adaptivePlan, defaultBoard, 0.01f, 0);
        var stream = new TinyTrain.Emulator.Streams.DataStream(TinyTrain.Emulator.Streams.StreamSpec.Parse(streamSpec), 0, device.InputShape);
        console.MarkupLine($"8. the emulator: the plan on {defaultBoard.Id} (its SRAM and Flash as limits), stream [bold]{Markup.Escape(streamSpec)}[/]: " +
                           "predict every image, learn from the labelled ones");
        TinyTrain.Emulator.Report.EmulationReport emulation = Consoles.WithProgress(console, "streaming through the device", progress => device.Run(stream, progress, 100));
        string plotPath = Path.Combine(outDir, "stream.png");
        emulation.WritePlot(plotPath);
        foreach (var segment in emulation.Segments)
            console.MarkupLine($"   {Markup.Escape(segment.Name),-28} {segment.Samples,5} images, accuracy {segment.Accuracy:P1}, learned from {segment.Trained}");
        console.MarkupLine($"   SRAM high-water {emulation.SramHighWaterBytes:N0} B (arena) of {defaultBoard.SramBytes:N0} B; plot: {Markup.Escape(plotPath)}");

        // 9. Test-time adaptation: the camera's exposure changes and no labels come at all. The same model, compiled
        // with --update tta:norm, re-estimates its per-channel statistics on the stream; the int8 plan of step 5 is the source.
        const string ttaSpec = "fashion-mnist-mini-c:brightness*300/none";
        CompileResult ttaCompiled = PlanCompiler.Compile(graph, CalibrationSet.FromData(train, graph.InputShape, 512), new CompileOptions { Update = "tta:norm" });
        var ttaPlan = TinyTrain.Runtime.Plans.Plan.Load(ttaCompiled.Image, "cnn-s.tta-norm.ttplan");
        long extraSram = ttaCompiled.Plan.SramBytes - compiled.Plan.SramBytes;
        console.MarkupLine($"9. test-time adaptation, no labels at all: the model compiled with [bold]--update tta:norm[/] (+{extraSram:N0} B SRAM over the plan of step 5) " +
                           $"re-estimates its per-channel statistics on the stream [bold]{Markup.Escape(ttaSpec)}[/]");
        double sourceAccuracy = StreamAccuracy(plan, defaultBoard, ttaSpec, console, "source plan on the over-exposed stream");
        var ttaDevice = new TinyTrain.Emulator.Device.EmulatedDevice(ttaPlan, defaultBoard, 0.05f, 0);
        var ttaStream = new TinyTrain.Emulator.Streams.DataStream(TinyTrain.Emulator.Streams.StreamSpec.Parse(ttaSpec), 0, ttaDevice.InputShape);
        TinyTrain.Emulator.Report.EmulationReport adapted = Consoles.WithProgress(console, "adapting without labels", progress => ttaDevice.Run(ttaStream, progress, 100));
        console.MarkupLine($"   same images, in the same order: source plan {sourceAccuracy:P1}, adapting plan [green]{adapted.Segments[0].Accuracy:P1}[/] " +
                           $"(each image predicted before it is adapted on; {adapted.Trained:N0} adapted on, labels used: 0)");

        // 10. New tasks without forgetting: the base stays frozen; each task learns a small adapter (its pack), and a
        // router picks the pack for each image without being told the task.
        AdapterSteps tasks = LearnTasksAsAdapters(graph, train, outDir, console);

        // 11. A fleet: devices on one MQTT broker share what they learn as signed adapter updates; one sends garbage.
        TinyTrain.Fleet.Simulation.SimulationReport fleet = RunFleet(console);

        var summary = new Table().Border(TableBorder.Rounded).AddColumn("step").AddColumn(new TableColumn("result").RightAligned());
        summary.AddRow("test accuracy before training", $"{before:P1}");
        summary.AddRow("test accuracy after float training", $"[green]{result.TestAccuracy:P1}[/]");
        summary.AddRow("training time", $"{result.Elapsed.TotalSeconds:F1} s ({result.Steps} steps)");
        summary.AddRow("ONNX round trip: same accuracy", importedAccuracy == result.TestAccuracy ? "[green]yes[/]" : "[red]no[/]");
        summary.AddRow("int8 plan accuracy (runtime)", $"[green]{int8.Accuracy:P1}[/]");
        summary.AddRow("int8 plan: Flash / SRAM arena", $"{compiled.Image.Length:N0} B / {compiled.Plan.ArenaBytes:N0} B");
        summary.AddRow($"fits {board.Id}", fit.Fits ? "[green]yes[/]" : "[red]no[/]");
        summary.AddRow("on-device learning, new task (digits)", $"{learned.AccuracyBefore:P1} -> [green]{learned.AccuracyAfter:P1}[/]");
        summary.AddRow("emulator: fogged camera, first vs last 100 images", $"{emulation.WindowedAccuracy[3]:P1} -> [green]{emulation.WindowedAccuracy[^1]:P1}[/]");
        summary.AddRow("test-time adaptation, over-exposed camera, no labels", $"{sourceAccuracy:P1} -> [green]{adapted.Segments[0].Accuracy:P1}[/]");
        summary.AddRow("two new tasks as adapters, task given", $"{tasks.TaskGiven:P1}");
        summary.AddRow("the same, routed without a task label", $"[green]{tasks.Routed:P1}[/]");
        var lastRound = fleet.Rounds[^1];
        summary.AddRow("fleet of 6 over MQTT vs each device alone", $"[green]{lastRound.FleetAccuracy:P1}[/] vs {lastRound.LocalOnlyAccuracy:P1}");
        summary.AddRow("demo wall time", $"{clock.Elapsed.TotalSeconds:F1} s");
        console.Write(summary);
        console.MarkupLine("Next: [bold]tinytrain data fetch fashion-mnist[/] and [bold]tinytrain pretrain --model cnn-s --data fashion-mnist -o models/base.onnx[/] for the full data set.");
        if (importedAccuracy != result.TestAccuracy)
            throw new TinyTrainException("the ONNX round trip changed the model's predictions; this is a bug, please report it");
        return 0;
    }

    // Six emulated devices running the fleet simulation's digits model (cnn-s pretrained on mnist-mini, bias:2), each with
    // its own corrupted stream, learn from a few labels per round and share updates through an embedded MQTT broker; an
    // aggregator combines them (trimmed mean + clipping) and signs the global; one device is hostile. Every device
    // verifies each global before it uses it.
    private static TinyTrain.Fleet.Simulation.SimulationReport RunFleet(IAnsiConsole console)
    {
        TinyTrain.Runtime.Plans.Plan plan = Consoles.WithProgress(console, "the fleet's digits model", _ =>
            TinyTrain.Fleet.Simulation.FleetBaseModel.Build(log: line => console.MarkupLine($"   {Markup.Escape(line)}")));
        var options = new TinyTrain.Fleet.Simulation.SimulationOptions
        {
            Devices = 6,
            Rounds = 3,
            Seed = 0,
            MaliciousFraction = 1.0 / 6,
            Aggregation = TinyTrain.Fleet.Aggregation.AggregatorOptions.Parse("trimmed:0.2+clip",
                new TinyTrain.Fleet.Aggregation.AggregatorOptions { BufferSize = int.MaxValue }),
        };
        console.MarkupLine("11. a fleet: 6 emulated devices with a digits model (each its own corrupted camera: fog, brightness or impulse noise, and its own class mix) learn [bold]bias:2[/] updates " +
                           "from 16 labels a round and share them as signed MessagePack envelopes over an embedded MQTT broker; the aggregator " +
                           "(trimmed mean + clipping) signs each global, every device verifies it before use; one device is hostile");
        TinyTrain.Fleet.Simulation.SimulationReport report = TinyTrain.Fleet.Simulation.FleetSimulation.RunAsync(plan, options, null, round =>
        {
            string rejected = string.Join(", ", round.Rejected.Where(p => p.Value > 0).Select(p => $"{p.Key} {p.Value}"));
            console.MarkupLine($"   round {round.Round}: fleet {round.FleetAccuracy:P1}, local-only {round.LocalOnlyAccuracy:P1}, no adaptation {round.NoAdaptationAccuracy:P1}; " +
                               $"{round.BytesPerDevice:N0} B sent per device; accepted {round.Accepted}" + (rejected.Length > 0 ? $", refused: {Markup.Escape(rejected)}" : ""));
        }).GetAwaiter().GetResult();
        console.MarkupLine($"   every accepted update aggregated exactly once: {(report.AggregatedExactlyOnce ? "yes" : "[red]no[/]")}; " +
                           $"SRAM high-water {report.SramHighWaterBytes:N0} B on {report.Board}");
        return report;
    }

    private sealed record AdapterSteps(double TaskGiven, double Routed);

    // Two digit tasks (0-4, 5-9) learned one after the other as adapter:bias packs on the clothes model, then every test
    // digit routed to a pack by the router (no task label) and answered over that task's classes.
    private static AdapterSteps LearnTasksAsAdapters(TinyTrain.Compiler.Graphs.Graph graph, Dataset train, string outDir, IAnsiConsole console)
    {
        Dataset digits = DataCatalog.Load("mnist-mini", Split.Train), digitsTest = DataCatalog.Load("mnist-mini", Split.Test);
        CompileResult compiled = AdapterCompiler.Compile(graph, CalibrationSet.FromData(train, graph.InputShape, 256), AdapterSpec.Parse("adapter:bias"));
        var plan = TinyTrain.Runtime.Plans.Plan.Load(compiled.Image, "cnn-s.adapter-bias.ttplan");
        AdapterLayout layout = AdapterLayout.Of(plan);
        uint baseCrc = TinyTrain.Runtime.Plans.Crc32.Compute(plan.Image, 0, plan.Image.Length);
        var store = new AdapterStore(Path.Combine(outDir, "device"));
        var router = new TaskRouter(plan);
        var executor = new TinyTrain.Runtime.Execution.Executor(plan) { LearningRate = 0.01f };
        var quantizer = InputQuantizer.For(plan);
        byte[] input = new byte[quantizer.Length];
        (string Name, int[] Classes)[] taskList = [("digits-0-4", [0, 1, 2, 3, 4]), ("digits-5-9", [5, 6, 7, 8, 9])];
        console.MarkupLine($"10. new tasks without forgetting: {taskList.Length} tasks (digits 0-4, then 5-9), each learned as an [bold]adapter:bias[/] pack " +
                           $"({layout.ParameterCount:N0} parameters) beside the frozen clothes model; a router (class prototypes of the base features) picks the pack per image");
        var packs = new List<AdapterPack>();
        double taskGivenSum = 0;
        foreach ((string name, int[] classes) in taskList)
        {
            int[] own = Enumerable.Range(0, digits.Count).Where(i => classes.Contains(digits.Labels[i])).ToArray();
            executor.Reset();
            executor.Seed(1);
            const int steps = 600;
            for (int s = 0; s < steps; s++)
            {
                int i = own[s % own.Length];
                quantizer.Fill(digits, i, input, 0);
                executor.SetInput(input, 0);
                executor.TrainStep(digits.Labels[i]);
            }
            AdapterPack pack = layout.Capture(executor, name, steps);
            store.Save(pack);
            packs.Add(pack);
            router.AddTask(name, digits, own);
            double accuracy = TaskAccuracy(executor, quantizer, input, digitsTest, classes, plan);
            taskGivenSum += accuracy;
            console.MarkupLine($"   {name}: {steps} steps at batch 1, accuracy on its test digits {accuracy:P1}; pack {pack.Serialize().Length:N0} B in {Markup.Escape(store.PathOf(name))}");
        }

        int correct = 0, routedRight = 0, total = 0;
        for (int i = 0; i < digitsTest.Count; i++)
        {
            int task = router.Route(digitsTest, i);
            if (task == TaskRouter.NoTask) task = router.Best();
            int truth = Array.FindIndex(taskList, t => t.Classes.Contains(digitsTest.Labels[i]));
            if (task == truth) routedRight++;
            layout.Apply(executor, packs[task]);
            quantizer.Fill(digitsTest, i, input, 0);
            executor.SetInput(input, 0);
            executor.Invoke();
            if (ArgMaxAmong(executor, plan, taskList[task].Classes) == digitsTest.Labels[i]) correct++;
            total++;
        }
        double routed = (double)correct / total, routing = (double)routedRight / total;
        bool baseUnchanged = TinyTrain.Runtime.Plans.Crc32.Compute(plan.Image, 0, plan.Image.Length) == baseCrc;
        console.MarkupLine($"   all {total:N0} test digits, no task label: routed to the right pack {routing:P1}, accuracy [green]{routed:P1}[/] " +
                           $"(task given: {taskGivenSum / taskList.Length:P1}); base model unchanged (plan CRC-32 the same): {(baseUnchanged ? "yes" : "[red]no[/]")}");
        if (!baseUnchanged) throw new TinyTrainException("learning an adapter changed the base plan's bytes; this is a bug, please report it");
        return new AdapterSteps(taskGivenSum / taskList.Length, routed);
    }

    private static double TaskAccuracy(TinyTrain.Runtime.Execution.Executor executor, InputQuantizer quantizer, byte[] input, Dataset test, int[] classes,
        TinyTrain.Runtime.Plans.Plan plan)
    {
        int correct = 0, total = 0;
        for (int i = 0; i < test.Count; i++)
        {
            if (!classes.Contains(test.Labels[i])) continue;
            quantizer.Fill(test, i, input, 0);
            executor.SetInput(input, 0);
            executor.Invoke();
            if (ArgMaxAmong(executor, plan, classes) == test.Labels[i]) correct++;
            total++;
        }
        return total == 0 ? 0 : (double)correct / total;
    }

    // The class among <classes> with the largest int8 logit (a task's pack answers over its own classes).
    private static int ArgMaxAmong(TinyTrain.Runtime.Execution.Executor executor, TinyTrain.Runtime.Plans.Plan plan, int[] classes)
    {
        int offset = plan.Tensor(plan.OutputTensor).ArenaOffset, best = classes[0];
        foreach (int c in classes)
            if ((sbyte)executor.Arena[offset + c] > (sbyte)executor.Arena[offset + best]) best = c;
        return best;
    }

    // Accuracy of an inference-only plan on a stream (no learning), on the same board the other steps use.
    private static double StreamAccuracy(TinyTrain.Runtime.Plans.Plan plan, BoardProfile board, string spec, IAnsiConsole console, string what)
    {
        var device = new TinyTrain.Emulator.Device.EmulatedDevice(plan, board, 0.01f, 0);
        var stream = new TinyTrain.Emulator.Streams.DataStream(TinyTrain.Emulator.Streams.StreamSpec.Parse(spec), 0, device.InputShape);
        TinyTrain.Emulator.Report.EmulationReport report = Consoles.WithProgress(console, what, progress => device.Run(stream, progress, 100));
        return report.Segments[0].Accuracy;
    }

    private static float MaxOutputDifference(TinyTrain.Compiler.Graphs.Graph a, TinyTrain.Compiler.Graphs.Graph b, Dataset data, int count)
    {
        count = Math.Min(count, data.Count);
        var na = new FloatNetwork(a, count);
        var nb = new FloatNetwork(b, count);
        for (int s = 0; s < count; s++)
        {
            InputLayout.Fill(data, s, a.InputShape, na.InputBuffer, s * a.InputShape.Size);
            InputLayout.Fill(data, s, b.InputShape, nb.InputBuffer, s * b.InputShape.Size);
        }
        float[] ya = na.Forward(count, training: false), yb = nb.Forward(count, training: false);
        float max = 0f;
        for (int i = 0; i < count * a.NumClasses; i++) max = Math.Max(max, Math.Abs(ya[i] - yb[i]));
        return max;
    }
}
