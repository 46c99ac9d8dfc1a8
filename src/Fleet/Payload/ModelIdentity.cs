namespace TinyTrain.Fleet.Payload;

using System.Security.Cryptography;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

/// <summary>Which model an update belongs to: the first 8 bytes of the plan file's SHA-256, as 16 hex digits.</summary>
public static class ModelIdentity
{
    public static string Of(PlanImage plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        return Convert.ToHexStringLower(SHA256.HashData(plan.Image).AsSpan(0, 8));
    }
}
