namespace TinyTrain.Runtime.Plans;

/// <summary>Why a plan file was refused; the first four say what happened to the file, the last that its writer erred.</summary>
public enum PlanError
{
    /// <summary>Shorter than its header says (or than any plan): cut short in transfer.</summary>
    Truncated,
    /// <summary>Not a TinyTrain plan at all (wrong magic).</summary>
    Foreign,
    /// <summary>A plan format major version newer than this runtime reads.</summary>
    NewerVersion,
    /// <summary>Checksum mismatch or bytes after the end: changed after it was written.</summary>
    Damaged,
    /// <summary>Intact, but its structure is inconsistent (a writer bug or a forged file).</summary>
    Invalid,
}

/// <summary>A plan file the runtime refuses; the message is one line that names the file, the problem and what to do.</summary>
public sealed class PlanException : TinyTrainException
{
    public PlanException(PlanError error, string sourceName, string message) : base(message)
    {
        Error = error;
        SourceName = sourceName;
    }

    public PlanError Error { get; }

    /// <summary>The name the plan was loaded under (usually its path).</summary>
    public string SourceName { get; }
}
