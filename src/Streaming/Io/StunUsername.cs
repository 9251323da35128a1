using System.Text;
using Transport.Ice.Stun;

namespace Transport.Streaming.Io;

/// <summary>
/// What the driver needs to route the first request of a new remote address: the part of the USERNAME before the
/// colon (RFC 8445 section 7.2.2), read with the STUN reader. Authentication stays the agent's job.
/// </summary>
internal static class StunUsername
{
    /// <summary>Finds the local fragment in a Binding request; false for anything else or malformed input.</summary>
    public static bool TryGetLocalFragment(ReadOnlySpan<byte> datagram, out ReadOnlySpan<byte> fragment)
    {
        fragment = default;
        if (!StunMessage.TryRead(datagram, out var message) || message.Type != StunMessageType.BindingRequest) return false;
        if (!message.TryGetUsername(out var username)) return false;
        var colon = username.IndexOf((byte)':');
        fragment = colon < 0 ? username : username[..colon];
        return !fragment.IsEmpty;
    }

    public static string Decode(ReadOnlySpan<byte> fragment) => Encoding.UTF8.GetString(fragment);
}
