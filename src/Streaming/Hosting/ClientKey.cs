using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Http;

namespace Transport.Streaming.Hosting;

/// <summary>
/// The key a client's sessions and offers are counted under. An IPv4 address is one client; an IPv6 address counts
/// by its /64 prefix, since one host (one subnet, RFC 4291 section 2.5.4 and RFC 7421) gets a whole /64 and can pick
/// any address in it; an IPv4-mapped IPv6 address (<c>::ffff:192.0.2.1</c>, a dual-stack socket) is its IPv4 address.
/// </summary>
public static class ClientKey
{
    /// <summary><c>192.0.2.1</c>, <c>2001:db8:1:2::/64</c>; null for no address (a test server, a Unix socket): not counted.</summary>
    public static string? For(IPAddress? address)
    {
        if (address is null) return null;
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        if (address.AddressFamily != AddressFamily.InterNetworkV6) return address.ToString();
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out _);
        bytes[8..].Clear();
        return new IPAddress(bytes).ToString() + "/64";
    }

    /// <summary>The key of the request's remote address.</summary>
    public static string? For(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return For(context.Connection.RemoteIpAddress);
    }
}
