using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Transport.Ice.Turn;

namespace Transport.Streaming.Sessions;

/// <summary>
/// STUN and TURN server URIs (RFC 7064, RFC 7065) for the server's own candidates
/// (<c>PeerConnectionOptions.Ice.StunServers</c> and <c>TurnServers</c>): a host name is resolved once, here, since
/// the ICE agent takes address literals only.
/// </summary>
public static class IceServerUris
{
    /// <summary>
    /// <c>stun:HOST[:PORT]</c> (default port 3478) as the endpoint the agent sends its Binding requests to.
    /// <see cref="FormatException"/> names what is wrong; a name that does not resolve throws <see cref="SocketException"/>.
    /// </summary>
    public static IPEndPoint ParseStun(string uri)
    {
        ArgumentNullException.ThrowIfNull(uri);
        if (!uri.StartsWith("stun:", StringComparison.OrdinalIgnoreCase))
            throw new FormatException($"'{uri}' is not a stun: URI (stun:HOST[:PORT]; stuns: is not supported)");
        // The same host and port grammar as turn: (RFC 7064 section 3.1 and RFC 7065 section 3.1), without a query.
        var rest = uri[5..];
        if (rest.Contains('?', StringComparison.Ordinal)) throw new FormatException($"'{uri}': a stun: URI has no query");
        var config = TurnServerConfig.Parse("turn:" + rest);
        return new IPEndPoint(Resolve(config.Host), config.Port);
    }

    /// <summary>
    /// <c>URL</c> or <c>URL|username|password</c> (<c>turn:HOST[:PORT][?transport=udp|tcp]</c>, or <c>turns:HOST[:PORT]</c>
    /// for TLS over TCP) with the host resolved to an address literal; the name stays the TLS server name. <see cref="FormatException"/> names what is wrong.
    /// </summary>
    public static TurnServerConfig ParseTurn(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parts = text.Split('|');
        if (parts.Length is not (1 or 3)) throw new FormatException($"'{text}' is not URL or URL|username|password");
        var config = parts.Length == 3 ? TurnServerConfig.Parse(parts[0], parts[1], parts[2]) : TurnServerConfig.Parse(parts[0]);
        if (config.Secure && config.Transport != TurnTransport.Tcp)
            throw new FormatException($"'{parts[0]}': turns: over UDP (DTLS) is not supported; turns: is TLS over TCP");
        // turns: checks the certificate against the name as written, not the address it resolves to.
        return config with { Host = Resolve(config.Host).ToString(), ServerName = config.ServerName ?? config.Host };
    }

    private static IPAddress Resolve(string host)
    {
        if (IPAddress.TryParse(host, out var address)) return address;
        var addresses = Dns.GetHostAddresses(host);
        return addresses.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? addresses.FirstOrDefault()
            ?? throw new FormatException(string.Create(CultureInfo.InvariantCulture, $"'{host}' has no address"));
    }
}
