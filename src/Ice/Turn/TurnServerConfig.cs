using System.Globalization;
using System.Net;

namespace Transport.Ice.Turn;

/// <summary>The transport between a TURN client and its server (the relayed transport is always UDP).</summary>
public enum TurnTransport
{
    /// <summary>UDP to the server: requests are retransmitted (RFC 8489 section 6.2.1).</summary>
    Udp,
    /// <summary>TCP to the server: one stream of STUN and padded ChannelData messages (RFC 8656 section 12.5).</summary>
    Tcp,
}

/// <summary>
/// One configured TURN server, as parsed from a <c>turn:</c> or <c>turns:</c> URI (RFC 7065) plus the long-term
/// credentials (RFC 8489 section 9.2) that WebRTC configurations carry beside the URI.
/// <para><c>turns:</c> is TLS over TCP to the server (RFC 8656 section 3.1): the TURN client is the same as over
/// TCP, and the I/O driver runs TLS on the connection (server name <see cref="ServerName"/>). DTLS to the server
/// (<c>turns:...?transport=udp</c>) is not supported.</para>
/// </summary>
public sealed record TurnServerConfig
{
    /// <summary>Default port of <c>turn:</c> (RFC 8656 section 4: 3478).</summary>
    public const int DefaultPort = 3478;

    /// <summary>Default port of <c>turns:</c> (RFC 8656 section 4: 5349).</summary>
    public const int DefaultSecurePort = 5349;

    /// <summary>Host name or address literal (without the brackets of an IPv6 literal).</summary>
    public required string Host { get; init; }

    /// <summary>Port.</summary>
    public int Port { get; init; } = DefaultPort;

    /// <summary>Transport to the server.</summary>
    public TurnTransport Transport { get; init; } = TurnTransport.Udp;

    /// <summary>True for <c>turns:</c>: TLS over the TCP connection to the server (DTLS over UDP is not supported).</summary>
    public bool Secure { get; init; }

    /// <summary>
    /// The name the server's TLS certificate is checked against (and sent as SNI) for <c>turns:</c>: the URI's host as
    /// written. It stays the name when <see cref="Host"/> is replaced by the address it resolves to. Null: <see cref="Host"/>.
    /// </summary>
    public string? ServerName { get; init; }

    /// <summary>The TLS server name in force: <see cref="ServerName"/>, or <see cref="Host"/>.</summary>
    public string TlsServerName => ServerName ?? Host;

    /// <summary>Long-term credential user name.</summary>
    public string Username { get; init; } = "";

    /// <summary>Long-term credential password.</summary>
    public string Password { get; init; } = "";

    /// <summary>The server address when <see cref="Host"/> is an address literal; null for a name (the driver resolves it).</summary>
    public IPEndPoint? TryGetEndPoint() => IPAddress.TryParse(Host, out var address) ? new IPEndPoint(address, Port) : null;

    /// <summary>Parses a <c>turn:</c> or <c>turns:</c> URI; throws <see cref="FormatException"/> with the reason when it is not one.</summary>
    public static TurnServerConfig Parse(string uri, string username = "", string password = "") =>
        TryParse(uri, username, password, out var config, out var error) ? config : throw new FormatException(error);

    /// <summary>
    /// Parses <c>scheme ":" host [ ":" port ] [ "?transport=" ( "udp" / "tcp" ) ]</c> (RFC 7065 section 3.1).
    /// The default transport is UDP for <c>turn:</c> and TCP for <c>turns:</c> (as browsers do); the default port
    /// 3478 or 5349. <c>turn://host</c> (with slashes) is refused: RFC 7065 URIs have no authority part.
    /// </summary>
    public static bool TryParse(string uri, string username, string password, out TurnServerConfig config, out string error)
    {
        config = null!;
        ArgumentNullException.ThrowIfNull(uri);
        string rest;
        bool secure;
        if (uri.StartsWith("turn:", StringComparison.OrdinalIgnoreCase)) { secure = false; rest = uri.Substring(5); }
        else if (uri.StartsWith("turns:", StringComparison.OrdinalIgnoreCase)) { secure = true; rest = uri.Substring(6); }
        else { error = "The scheme is neither turn: nor turns:."; return false; }
        if (rest.StartsWith("//", StringComparison.Ordinal)) { error = "A TURN URI has no '//' authority part (RFC 7065)."; return false; }

        var transport = secure ? TurnTransport.Tcp : TurnTransport.Udp;
        var query = rest.IndexOf('?', StringComparison.Ordinal);
        if (query >= 0)
        {
            var q = rest.Substring(query + 1);
            rest = rest.Substring(0, query);
            if (!q.StartsWith("transport=", StringComparison.OrdinalIgnoreCase)) { error = $"Unknown query '{q}': only transport= is defined."; return false; }
            var t = q.Substring(10);
            if (t.Equals("udp", StringComparison.OrdinalIgnoreCase)) transport = TurnTransport.Udp;
            else if (t.Equals("tcp", StringComparison.OrdinalIgnoreCase)) transport = TurnTransport.Tcp;
            else { error = $"Unsupported transport '{t}' (udp or tcp)."; return false; }
        }

        string host;
        string? portText = null;
        if (rest.StartsWith('['))
        {
            var close = rest.IndexOf(']', StringComparison.Ordinal);
            if (close < 0) { error = "Unclosed '[' of an IPv6 literal."; return false; }
            host = rest.Substring(1, close - 1);
            if (!IPAddress.TryParse(host, out var v6) || v6.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6)
            {
                error = $"'{host}' is not an IPv6 address.";
                return false;
            }
            var after = rest.Substring(close + 1);
            if (after.Length > 0)
            {
                if (after[0] != ':') { error = "Expected ':' after the IPv6 literal."; return false; }
                portText = after.Substring(1);
            }
        }
        else
        {
            var colon = rest.IndexOf(':', StringComparison.Ordinal);
            if (colon >= 0)
            {
                if (rest.IndexOf(':', colon + 1) >= 0) { error = "An IPv6 literal must be in brackets."; return false; }
                host = rest.Substring(0, colon);
                portText = rest.Substring(colon + 1);
            }
            else host = rest;
            if (!IsHostName(host)) { error = $"'{host}' is not a host name or IPv4 address."; return false; }
        }

        var port = secure ? DefaultSecurePort : DefaultPort;
        if (portText is not null && (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out port) || port is < 1 or > 65535))
        {
            error = $"'{portText}' is not a port (1..65535).";
            return false;
        }

        config = new TurnServerConfig
        {
            Host = host,
            Port = port,
            Transport = transport,
            Secure = secure,
            Username = username ?? "",
            Password = password ?? ""
        };
        error = "";
        return true;
    }

    // RFC 3986 reg-name restricted to what DNS names and IPv4 literals use; percent-encoding is not accepted.
    private static bool IsHostName(string host)
    {
        if (host.Length == 0 || host.Length > 253) return false;
        foreach (var c in host)
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_')) return false;
        return true;
    }

    /// <inheritdoc />
    public override string ToString() =>
        $"{(Secure ? "turns" : "turn")}:{(Host.Contains(':', StringComparison.Ordinal) ? "[" + Host + "]" : Host)}:" +
        $"{Port}?transport={(Transport == TurnTransport.Tcp ? "tcp" : "udp")}";
}
