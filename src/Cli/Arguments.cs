namespace TinyTrain.Cli;

/// <summary>A mistake in how the command was called; printed with a hint to --help, exit code 2.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>
/// A small, strict command-line parser: positional words, `--name value` options and `--flag`
/// switches. Anything the command did not ask for is an error, so a typo never goes unnoticed.
/// </summary>
internal sealed class Arguments
{
    private readonly List<string> _positional = new();
    private readonly Dictionary<string, string?> _options = new(StringComparer.Ordinal);
    private readonly HashSet<string> _consumed = new(StringComparer.Ordinal);

    public Arguments(IEnumerable<string> args, IReadOnlySet<string> flags)
    {
        var list = args.ToList();
        for (int i = 0; i < list.Count; i++)
        {
            string a = list[i];
            if (a.StartsWith("--", StringComparison.Ordinal) && a.Length > 2)
            {
                string name = a[2..];
                string? value = null;
                int eq = name.IndexOf('=');
                if (eq >= 0) { value = name[(eq + 1)..]; name = name[..eq]; }
                else if (!flags.Contains(name))
                {
                    if (i + 1 >= list.Count) throw new UsageException($"option --{name} needs a value");
                    value = list[++i];
                }
                if (_options.ContainsKey(name)) throw new UsageException($"option --{name} is given twice");
                _options[name] = value;
            }
            else if (a == "-o")
            {
                if (i + 1 >= list.Count) throw new UsageException("option -o needs a file name");
                _options["output"] = list[++i];
            }
            else _positional.Add(a);
        }
    }

    public IReadOnlyList<string> Positional => _positional;

    public bool Flag(string name)
    {
        _consumed.Add(name);
        if (!_options.TryGetValue(name, out string? v)) return false;
        if (v is null || v == "true") return true;
        if (v == "false") return false;
        throw new UsageException($"--{name} is a switch and takes no value");
    }

    public string? Option(string name)
    {
        _consumed.Add(name);
        return _options.TryGetValue(name, out string? v) ? v : null;
    }

    public string Required(string name, string what)
        => Option(name) ?? throw new UsageException($"missing --{name} ({what})");

    public int? Int(string name, int min = int.MinValue, int max = int.MaxValue)
    {
        string? v = Option(name);
        if (v is null) return null;
        if (!int.TryParse(v, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out int x))
            throw new UsageException($"--{name} must be a whole number, got '{v}'");
        if (x < min || x > max)
            throw new UsageException(max == int.MaxValue ? $"--{name} must be at least {min}, got {x}" : $"--{name} must be in {min}..{max}, got {x}");
        return x;
    }

    public float? Float(string name)
    {
        string? v = Option(name);
        if (v is null) return null;
        if (!float.TryParse(v, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out float x) || !float.IsFinite(x))
            throw new UsageException($"--{name} must be a number, got '{v}'");
        return x;
    }

    /// <summary>Call after reading every option: anything left over was not understood.</summary>
    public void EnsureAllUsed(int maxPositional)
    {
        foreach (string name in _options.Keys)
            if (!_consumed.Contains(name))
                throw new UsageException(name == "output" ? "this command takes no -o" : $"unknown option --{name}");
        if (_positional.Count > maxPositional)
            throw new UsageException($"unexpected argument '{_positional[maxPositional]}'");
    }
}
