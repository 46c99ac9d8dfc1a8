namespace TinyTrain;

/// <summary>
/// An error the user can act on: the message names what is wrong (the file, the node, the field)
/// and what to do. The command-line layer prints it as one line and exits non-zero.
/// </summary>
public class TinyTrainException : Exception
{
    public TinyTrainException(string message) : base(message) { }
    public TinyTrainException(string message, Exception inner) : base(message, inner) { }
}
