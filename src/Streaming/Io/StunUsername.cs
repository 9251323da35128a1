using System.Buffers.Binary;
using System.Text;

namespace Transport.Streaming.Io;

/// <summary>
/// Reads only what the driver needs to route the first request of a new remote address: the part of the
/// USERNAME attribute before the colon. Full STUN parsing and authentication is the agent's job.
/// </summary>
internal static class StunUsername
{
    private const uint MagicCookie = 0x2112A442;   // RFC 8489 section 5
    private const ushort UsernameType = 0x0006;    // RFC 8489 section 14.3
    private const ushort BindingRequest = 0x0001;

    /// <summary>Finds the local fragment in a Binding request; false for anything else or malformed input.</summary>
    public static bool TryGetLocalFragment(ReadOnlySpan<byte> datagram, out ReadOnlySpan<byte> fragment)
    {
        fragment = default;
        if (datagram.Length < 20) return false;
        if (BinaryPrimitives.ReadUInt16BigEndian(datagram) != BindingRequest) return false;
        if (BinaryPrimitives.ReadUInt32BigEndian(datagram[4..]) != MagicCookie) return false;
        int length = BinaryPrimitives.ReadUInt16BigEndian(datagram[2..]);
        if (length + 20 > datagram.Length || (length & 3) != 0) return false;
        var attributes = datagram.Slice(20, length);
        while (attributes.Length >= 4)
        {
            var type = BinaryPrimitives.ReadUInt16BigEndian(attributes);
            int valueLength = BinaryPrimitives.ReadUInt16BigEndian(attributes[2..]);
            if (4 + valueLength > attributes.Length) return false;
            if (type == UsernameType)
            {
                var value = attributes.Slice(4, valueLength);
                var colon = value.IndexOf((byte)':');
                fragment = colon < 0 ? value : value[..colon];
                return !fragment.IsEmpty;
            }
            var padded = (4 + valueLength + 3) & ~3;
            if (padded > attributes.Length) return false;
            attributes = attributes[padded..];
        }
        return false;
    }

    public static string Decode(ReadOnlySpan<byte> fragment) => Encoding.UTF8.GetString(fragment);
}
