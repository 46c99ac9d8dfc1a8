namespace TinyTrain.Fleet.Messages;

using MessagePack;

/// <summary>MessagePack for fleet messages: contractless off, untrusted-data limits on (messages come from the network).</summary>
public static class FleetSerializer
{
    public static readonly MessagePackSerializerOptions Options =
        MessagePackSerializerOptions.Standard.WithSecurity(MessagePackSecurity.UntrustedData);

    public static byte[] Serialize<T>(T value) => MessagePackSerializer.Serialize(value, Options);

    /// <summary>Deserializes, or returns false for bytes that are not a well-formed <typeparamref name="T"/>.</summary>
    public static bool TryDeserialize<T>(ReadOnlyMemory<byte> bytes, out T value) where T : class
    {
        try
        {
            value = MessagePackSerializer.Deserialize<T>(bytes, Options);
            return value is not null;
        }
        catch (MessagePackSerializationException)
        {
            value = null!;
            return false;
        }
    }
}
