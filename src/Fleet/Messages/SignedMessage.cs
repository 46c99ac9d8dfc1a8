namespace TinyTrain.Fleet.Messages;

using System.Security.Cryptography;
using MessagePack;

/// <summary>
/// What goes on the wire: a serialized envelope, who signed it, and an ECDSA P-256 signature (SHA-256, IEEE P1363) over
/// exactly those body bytes, so the receiver verifies before it parses the body.
/// </summary>
[MessagePackObject]
public sealed class SignedMessage
{
    [Key(0)] public byte[] Body { get; set; } = [];
    [Key(1)] public string Signer { get; set; } = "";
    [Key(2)] public byte[] Signature { get; set; } = [];

    public static byte[] Sign<T>(T envelope, string signer, ECDsa key)
    {
        ArgumentNullException.ThrowIfNull(key);
        byte[] body = FleetSerializer.Serialize(envelope);
        var message = new SignedMessage { Body = body, Signer = signer, Signature = key.SignData(body, HashAlgorithmName.SHA256) };
        return FleetSerializer.Serialize(message);
    }

    public bool Verify(ECDsa publicKey)
    {
        ArgumentNullException.ThrowIfNull(publicKey);
        return Body is not null && Signature is not null && Signature.Length == 64 && publicKey.VerifyData(Body, Signature, HashAlgorithmName.SHA256);
    }
}
