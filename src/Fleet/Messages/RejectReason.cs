namespace TinyTrain.Fleet.Messages;

/// <summary>Why an update was refused. A refused update is logged and counted, and never applied.</summary>
public enum RejectReason
{
    Oversize,
    Malformed,
    UnknownDevice,
    BadSignature,
    OtherModel,
    WrongShape,
    NonFinite,
    Replayed,
    StaleVersion,
}

public static class RejectReasons
{
    /// <summary>The snake_case name used in JSON and logs.</summary>
    public static string Name(RejectReason reason) => reason switch
    {
        RejectReason.Oversize => "oversize",
        RejectReason.Malformed => "malformed",
        RejectReason.UnknownDevice => "unknown_device",
        RejectReason.BadSignature => "bad_signature",
        RejectReason.OtherModel => "other_model",
        RejectReason.WrongShape => "wrong_shape",
        RejectReason.NonFinite => "non_finite",
        RejectReason.Replayed => "replayed",
        RejectReason.StaleVersion => "stale_version",
        _ => reason.ToString(),
    };
}
