using Spectre.Console;
using TinyTrain.Fleet.Messages;
using TinyTrain.Fleet.Transport;

namespace TinyTrain.Cli.Commands;

/// <summary>`tinytrain fleet keygen --name N [--out DIR]`: an ECDSA P-256 key pair for an aggregator, a worker or a device.</summary>
internal static class FleetKeygenCommand
{
    public static int Run(string[] args, CommandContext context)
    {
        var a = new Arguments(args, new HashSet<string>());
        string name = a.Required("name", "the key's name: the device or worker id, or e.g. aggregator");
        string directory = a.Option("out") ?? ".";
        a.EnsureAllUsed(0);
        FleetTopics.CheckName("key name", name);
        (string privatePath, string publicPath) = FleetKeys.Generate(directory, name);
        context.Console.MarkupLine($"wrote [bold]{Markup.Escape(privatePath)}[/] (private: keep it on this machine) and [bold]{Markup.Escape(publicPath)}[/] " +
                                   "(public: give it to whoever verifies: a device's to the aggregators' --devices directory, a worker's to the merger's --workers directory, " +
                                   "the aggregator's to every device and worker)");
        return 0;
    }
}
