using System.Diagnostics;

namespace TinyTrain.Cli.Tests;

/// <summary>Runs the real `tinytrain` program in a child process, as a user would, and captures everything.</summary>
public static class CliRunner
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    public static Result Run(IDictionary<string, string>? environment, params string[] args)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "tinytrain.dll");
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(dll);
        foreach (string a in args) info.ArgumentList.Add(a);
        info.Environment["NO_COLOR"] = "1";
        if (environment is not null)
            foreach ((string key, string value) in environment) info.Environment[key] = value;
        using Process process = Process.Start(info)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"tinytrain {string.Join(' ', args)} did not finish in 5 minutes");
        }
        return new Result(process.ExitCode, stdout.Result, stderr.Result);
    }

    public static Result Run(params string[] args) => Run(null, args);

    /// <summary>A refusal is one line on stderr, no stack trace, and a non-zero exit code.</summary>
    public static string AssertOneLineError(Result r)
    {
        Assert.NotEqual(0, r.ExitCode);
        string line = r.Stderr.Trim();
        Assert.False(line.Contains('\n'), $"expected one line on stderr, got:\n{r.Stderr}");
        Assert.StartsWith("error: ", line);
        Assert.DoesNotContain("   at ", line);
        return line;
    }
}
