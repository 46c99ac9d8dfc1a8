namespace TinyTrain.Fleet.Messages;

using System.Security.Cryptography;

/// <summary>ECDSA P-256 keys: a device's or the aggregator's own, and the public halves others verify with.</summary>
public static class FleetKeys
{
    /// <summary>A public key file in a key directory is "{name}.pub.pem"; its private half "{name}.pem".</summary>
    public const string PublicSuffix = ".pub.pem";

    public static ECDsa Create() => ECDsa.Create(ECCurve.NamedCurves.nistP256);

    /// <summary>The public key as SubjectPublicKeyInfo bytes, for a device registry.</summary>
    public static byte[] PublicKey(ECDsa key) => key.ExportSubjectPublicKeyInfo();

    public static ECDsa FromPublicKey(byte[] subjectPublicKeyInfo)
    {
        var key = ECDsa.Create();
        key.ImportSubjectPublicKeyInfo(subjectPublicKeyInfo, out _);
        return key;
    }

    /// <summary>Makes a key pair and writes "{name}.pem" (private, PKCS#8, owner-only) and "{name}.pub.pem" into <paramref name="directory"/>; refuses to overwrite.</summary>
    public static (string PrivatePath, string PublicPath) Generate(string directory, string name)
    {
        string privatePath = Path.Combine(directory, name + ".pem"), publicPath = Path.Combine(directory, name + PublicSuffix);
        foreach (string path in new[] { privatePath, publicPath })
            if (File.Exists(path)) throw new TinyTrainException($"{path} exists already; a key is not overwritten: choose another --name or move it away");
        Directory.CreateDirectory(directory);
        using ECDsa key = Create();
        File.WriteAllText(publicPath, key.ExportSubjectPublicKeyInfoPem());
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var file = new FileStream(privatePath, options))
        using (var writer = new StreamWriter(file))
            writer.Write(key.ExportPkcs8PrivateKeyPem());
        return (privatePath, publicPath);
    }

    /// <summary>A private key (PEM) to sign with; <paramref name="what"/> names it in the error.</summary>
    public static ECDsa LoadPrivate(string path, string what)
    {
        string text = ReadKeyFile(path, what);
        var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(text);
        }
        catch (ArgumentException e)
        {
            throw new TinyTrainException($"{what} {path} is not an EC private key in PEM ({e.Message}); make one with `tinytrain fleet keygen`");
        }
        if (key.KeySize != 256) throw new TinyTrainException($"{what} {path} is a {key.KeySize}-bit key; the fleet signs with P-256 (`tinytrain fleet keygen`)");
        try
        {
            key.ExportECPrivateKey();
        }
        catch (CryptographicException)
        {
            throw new TinyTrainException($"{what} {path} holds only a public key; give the private one (-----BEGIN PRIVATE KEY-----)");
        }
        return key;
    }

    /// <summary>A public key (PEM) to verify with.</summary>
    public static ECDsa LoadPublic(string path, string what)
    {
        string text = ReadKeyFile(path, what);
        var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(text);
        }
        catch (ArgumentException e)
        {
            throw new TinyTrainException($"{what} {path} is not an EC public key in PEM ({e.Message}); copy the {what}'s .pub.pem file");
        }
        return FromPublicKey(PublicKey(key));
    }

    /// <summary>Every "{name}.pub.pem" in <paramref name="directory"/>, by name (a device or worker id); refuses an empty or missing directory.</summary>
    public static Dictionary<string, ECDsa> LoadPublicDirectory(string directory, string what)
    {
        if (!Directory.Exists(directory)) throw new TinyTrainException($"{what} directory {directory} does not exist; put one {{id}}{PublicSuffix} file per {what} there");
        var keys = new Dictionary<string, ECDsa>(StringComparer.Ordinal);
        foreach (string path in Directory.GetFiles(directory, "*" + PublicSuffix).Order(StringComparer.Ordinal))
        {
            string name = Path.GetFileName(path)[..^PublicSuffix.Length];
            keys[Transport.FleetTopics.CheckName($"{what} id (from {path})", name)] = LoadPublic(path, what);
        }
        if (keys.Count == 0) throw new TinyTrainException($"{what} directory {directory} holds no *{PublicSuffix} files; put one {{id}}{PublicSuffix} file per {what} there");
        return keys;
    }

    private static string ReadKeyFile(string path, string what)
    {
        if (!File.Exists(path)) throw new TinyTrainException($"{what} {path} does not exist; make one with `tinytrain fleet keygen`");
        return File.ReadAllText(path);
    }
}
