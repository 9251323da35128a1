using Transport.Ice.Stun;

namespace Transport.Ice.Turn;

/// <summary>Settings of a <see cref="TurnClient"/>. Times are the RFC 8656 defaults unless said otherwise.</summary>
public sealed record TurnClientOptions
{
    /// <summary>The server address (an address, not a name: the driver resolves names).</summary>
    public required StunAddress Server { get; init; }

    /// <summary>UDP or TCP to the server.</summary>
    public TurnTransport Transport { get; init; } = TurnTransport.Udp;

    /// <summary>Long-term credential user name.</summary>
    public required string Username { get; init; }

    /// <summary>Long-term credential password.</summary>
    public required string Password { get; init; }

    /// <summary>
    /// LIFETIME asked for in Allocate and Refresh (RFC 8656 section 7.1: the server may shorten it; default 600 s,
    /// the server's default). Null sends no LIFETIME.
    /// </summary>
    public TimeSpan? RequestedLifetime { get; init; } = TimeSpan.FromSeconds(600);

    /// <summary>
    /// How long before the allocation expires the client refreshes it (RFC 8656 section 8: "some time before").
    /// When the granted lifetime is shorter than twice the margin, the refresh is sent at half the lifetime.
    /// Default 60 s.
    /// </summary>
    public TimeSpan RefreshMargin { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>False to never refresh the allocation (it then expires after the granted lifetime). Default true.</summary>
    public bool RefreshAllocation { get; init; } = true;

    /// <summary>
    /// How often an installed permission is refreshed with a new CreatePermission (RFC 8656 section 9: permissions
    /// last 300 s and can be refreshed at any time; default 240 s, at most 300 s).
    /// </summary>
    public TimeSpan PermissionRefreshInterval { get; init; } = TimeSpan.FromSeconds(240);

    /// <summary>
    /// How often a bound channel is refreshed with a new ChannelBind (RFC 8656 section 12: bindings last 600 s;
    /// default 540 s, must be below 600 s).
    /// </summary>
    public TimeSpan ChannelRefreshInterval { get; init; } = TimeSpan.FromSeconds(540);

    /// <summary>Family of the relayed address (REQUESTED-ADDRESS-FAMILY, RFC 8656 section 7.1): IPv4 (default) or IPv6.</summary>
    public TurnAddressFamily RequestedAddressFamily { get; init; } = TurnAddressFamily.IPv4;

    /// <summary>
    /// True to ask for an IPv6 relayed address besides the IPv4 one (ADDITIONAL-ADDRESS-FAMILY, RFC 8656 section
    /// 7.1). Only with <see cref="RequestedAddressFamily"/> IPv4. Default false.
    /// </summary>
    public bool AdditionalIPv6 { get; init; }

    /// <summary>
    /// With <see cref="AdditionalIPv6"/>, also send the attribute under 0x8032, the number coturn (4.6) still uses
    /// from the draft that became RFC 8656 (which assigned 0x8000). Both are comprehension-optional, so a server
    /// ignores the one it does not know. Default true.
    /// </summary>
    public bool LegacyAdditionalAddressFamily { get; init; } = true;

    /// <summary>Whether to use SHA-256 long-term keys when the server offers PASSWORD-ALGORITHMS with it (RFC 8489 section 9.2.4). Default true.</summary>
    public bool PreferSha256 { get; init; } = true;

    /// <summary>How many 300 (Try Alternate) redirects to follow before giving up. Default 2.</summary>
    public int MaxRedirects { get; init; } = 2;

    /// <summary>How many 438 (Stale Nonce) answers in a row to a request are retried with the new nonce. Default 3.</summary>
    public int MaxStaleNonceRetries { get; init; } = 3;

    /// <summary>Retransmission over UDP (RFC 8489 section 6.2.1). Over TCP one send and a 39.5 s timeout are used.</summary>
    public StunRetransmissionOptions Retransmission { get; init; } = StunRetransmissionOptions.Default;

    /// <summary>Adds FINGERPRINT to requests and indications (RFC 8489 section 14.7). Default true.</summary>
    public bool UseFingerprint { get; init; } = true;

    /// <summary>SOFTWARE sent in Allocate; null for none.</summary>
    public string? Software { get; init; } = "Transport.Ice";

    /// <summary>
    /// Builds options from a parsed URI whose host is an address literal. <c>turns:</c> gives the TCP client: TLS is
    /// the I/O driver's, below the stream framing.
    /// </summary>
    public static TurnClientOptions FromConfig(TurnServerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.Secure && config.Transport != TurnTransport.Tcp)
            throw new NotSupportedException("turns: over UDP (DTLS to the TURN server) is not supported; TLS over TCP is.");
        var endPoint = config.TryGetEndPoint() ?? throw new ArgumentException($"'{config.Host}' is a name: resolve it and set Server.", nameof(config));
        return new TurnClientOptions
        {
            Server = StunAddress.FromEndPoint(endPoint),
            Transport = config.Transport,
            Username = config.Username,
            Password = config.Password
        };
    }

    internal void Validate()
    {
        if (Server.Family == 0) throw new ArgumentException("The server address is not set.", nameof(Server));
        if (RefreshMargin < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(RefreshMargin));
        if (PermissionRefreshInterval <= TimeSpan.Zero || PermissionRefreshInterval > TimeSpan.FromSeconds(300))
            throw new ArgumentOutOfRangeException(nameof(PermissionRefreshInterval), "Permissions last 300 s (RFC 8656 section 9).");
        if (ChannelRefreshInterval <= TimeSpan.Zero || ChannelRefreshInterval >= TimeSpan.FromSeconds(600))
            throw new ArgumentOutOfRangeException(nameof(ChannelRefreshInterval), "Channel bindings last 600 s (RFC 8656 section 12).");
        if (RequestedLifetime is { } l && (l < TimeSpan.FromSeconds(1) || l.TotalSeconds > uint.MaxValue))
            throw new ArgumentOutOfRangeException(nameof(RequestedLifetime));
        if (AdditionalIPv6 && RequestedAddressFamily != TurnAddressFamily.IPv4)
            throw new ArgumentException("ADDITIONAL-ADDRESS-FAMILY goes with an IPv4 request.", nameof(AdditionalIPv6));
        if (MaxRedirects < 0 || MaxStaleNonceRetries < 0) throw new ArgumentOutOfRangeException(nameof(MaxRedirects));
    }
}

/// <summary>Family of a relayed address.</summary>
public enum TurnAddressFamily : byte
{
    /// <summary>IPv4 (wire value 1).</summary>
    IPv4 = StunAddress.FamilyIPv4,
    /// <summary>IPv6 (wire value 2).</summary>
    IPv6 = StunAddress.FamilyIPv6,
}
