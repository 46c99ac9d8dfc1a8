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
    /// <summary>A partial from an ingest worker the merger does not know.</summary>
    UnknownWorker,
    /// <summary>A partial whose worker signature does not verify.</summary>
    BadWorkerSignature,
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
        RejectReason.UnknownWorker => "unknown_worker",
        RejectReason.BadWorkerSignature => "bad_worker_signature",
        _ => reason.ToString(),
    };

    /// <summary>The reason with that name, or null.</summary>
    public static RejectReason? Parse(string name)
    {
        foreach (RejectReason reason in Enum.GetValues<RejectReason>())
            if (Name(reason) == name) return reason;
        return null;
    }
}
