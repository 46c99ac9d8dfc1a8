namespace TinyTrain.Fleet.Messages;

using System.Security.Cryptography;

/// <summary>ECDSA P-256 keys: a device's or the aggregator's own, and the public halves others verify with.</summary>
public static class FleetKeys
{
    public static ECDsa Create() => ECDsa.Create(ECCurve.NamedCurves.nistP256);

    /// <summary>The public key as SubjectPublicKeyInfo bytes, for a device registry.</summary>
    public static byte[] PublicKey(ECDsa key) => key.ExportSubjectPublicKeyInfo();

    public static ECDsa FromPublicKey(byte[] subjectPublicKeyInfo)
    {
        var key = ECDsa.Create();
        key.ImportSubjectPublicKeyInfo(subjectPublicKeyInfo, out _);
        return key;
    }
}
