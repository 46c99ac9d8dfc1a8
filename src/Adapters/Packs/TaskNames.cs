namespace TinyTrain.Adapters.Packs;

/// <summary>Task names double as file names in a device state directory, so they are kept plain.</summary>
public static class TaskNames
{
    public const string Rule = "1 to 64 letters, digits, '-', '_' or '.', not starting with '.'";

    public static bool IsValid(string? name)
    {
        if (string.IsNullOrEmpty(name) || name.Length > 64 || name[0] == '.') return false;
        foreach (char c in name)
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')) return false;
        return true;
    }
}
