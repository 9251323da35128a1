using Transport.Ice;
using Transport.Sctp;
using Transport.Streaming.Sessions;
using Transport.Streaming.WebRtc;

namespace Transport.Streaming.Hosting;

/// <summary>
/// Everything a remote party can make a server of WebRTC and WebSocket sessions hold, in one place, in the spirit of
/// Kestrel's <c>KestrelServerLimits</c>: <see cref="WebRtcSessionsOptions.Limits"/> (configuration section
/// <c>WebRtc:Limits</c>, environment <c>WebRtc__Limits__MaxSessions</c>). The hosting layer applies them to the
/// session server (<see cref="StreamServerOptions"/>), the endpoints, and every peer connection it makes
/// (<see cref="PeerConnectionOptions"/>, <see cref="IceLimits"/>, <see cref="SctpLimits"/>), overriding what those
/// objects say. README "Limits and defaults" lists every default. Times bind from configuration as <c>00:00:10</c>
/// or as seconds (<c>10</c>, <c>0.5</c>).
/// </summary>
public sealed record WebRtcServerLimits
{
    // ---- Sessions ----

    /// <summary>Sessions at once (running or reserved); one more is refused: 429 <c>concurrency_limit_reached</c>. 0: no limit. Default 100.</summary>
    public int MaxSessions { get; set; } = 100;

    /// <summary>
    /// Sessions at once per client (<see cref="ClientKey"/>: an IPv4 address or an IPv6 /64); one more is refused: 429
    /// <c>client_limit_reached</c>. 0: no limit. Default 10.
    /// </summary>
    public int MaxSessionsPerClient { get; set; } = 10;

    /// <summary>
    /// Sessions accepted but not yet connected, in total; one more is refused: 429 <c>pending_limit_reached</c>, so
    /// offers that never connect cannot fill the server. 0: no limit. Default 20.
    /// </summary>
    public int MaxPendingSessions { get; set; } = 20;

    /// <summary>From offer accepted to connected; past it the session ends (ConnectTimeout) and its place is free. Default 10 s.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// A running session whose handler has taken no input and produced no output for this long ends (Idle), so idle
    /// clients (a WebSocket that only answers pings) cannot hold a place forever. null (configuration: <c>0</c> or
    /// <c>none</c>): never. Default 5 min.
    /// </summary>
    public TimeSpan? IdleLimit { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Longest a session may run (TimeLimit). null (configuration: <c>0</c> or <c>none</c>): no limit. Default none.</summary>
    public TimeSpan? SessionTimeLimit { get; set; }

    /// <summary>
    /// A session whose transport has been disconnected this long ends (Disconnected); it is also the grace a client has
    /// for an ICE restart after a network change. A restart the client starts while disconnected gives the grace again
    /// (at most 3 times per disconnection). null: never (ICE's own failed timeout still applies). Default 4 s.
    /// </summary>
    public TimeSpan? DisconnectedLimit { get; set; } = TimeSpan.FromSeconds(4);

    /// <summary>
    /// A session whose handler has inputs waiting but took none and produced nothing this long ends (HandlerStalled). null: never. Default 30 s.
    /// </summary>
    public TimeSpan? HandlerStallLimit { get; set; } = TimeSpan.FromSeconds(30);

    // ---- Offer rate (token bucket per client) ----

    /// <summary>
    /// Offers that create sessions (WHIP POST, a first <c>offer</c> on <c>/signal</c>, a <c>/ws</c> upgrade) one
    /// client (<see cref="ClientKey"/>) may make at once before it must wait: the token bucket's size. Default 5.
    /// </summary>
    public int OfferBurst { get; set; } = 5;

    /// <summary>
    /// Offers per second a client's bucket regains (the sustained rate). Past the bucket: 429 <c>rate_limit_reached</c>
    /// with <c>Retry-After</c> (the time until the next offer is allowed). 0: no rate limit. Default 1.
    /// </summary>
    public double OffersPerSecond { get; set; } = 1;

    /// <summary>
    /// Clients whose buckets are remembered at once; a client whose bucket is full again is forgotten first, so memory
    /// stays bounded whatever the number of addresses a flood uses. Default 10,000 (about 1 MiB).
    /// </summary>
    public int MaxRateLimitedClients { get; set; } = 10_000;

    // ---- HTTP and WebSocket ----

    /// <summary>
    /// The largest WHIP POST or PATCH body (an SDP offer, an ICE fragment). A larger Content-Length is answered 413 at
    /// once; a body that grows past it while read (chunked) is answered 413 as soon as it does. Default 64 KiB (a
    /// browser's offer with audio, video and data is about 6 KiB).
    /// </summary>
    public int MaxRequestBodySize { get; set; } = 64 * 1024;

    /// <summary>The time to read a whole WHIP body; past it 408. No session place is held while a body is read. Default 10 s.</summary>
    public TimeSpan RequestBodyTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The largest message on the signaling socket (<c>/signal</c>); a larger one closes it with 1009 (RFC 6455 section 7.4.1). Default 64 KiB.
    /// </summary>
    public int MaxSignalingMessageSize { get; set; } = 64 * 1024;

    /// <summary>The largest message on a WebSocket stream session (<c>/ws</c>); a larger one closes it with 1009 and ends the session. Default 1 MiB.</summary>
    public int MaxStreamMessageSize { get; set; } = 1 << 20;

    /// <summary>
    /// Signaling WebSockets (<c>/signal</c>) open at once per client (<see cref="ClientKey"/>), with or without a
    /// session; one more is answered 429 <c>signaling_limit_reached</c> with <c>Retry-After</c> before the upgrade.
    /// Default 20 (0: none).
    /// </summary>
    public int MaxSignalingSocketsPerClient { get; set; } = 20;

    /// <summary>
    /// How long a signaling WebSocket may stay open without a live session (before its first offer, or after its
    /// session ended): past it the socket is closed with 1008 "no session for N s", even if it answers every ping.
    /// Checked at each keepalive tick (<c>WebRtc:Signaling:KeepAliveInterval</c>, 10 s), so the socket goes within
    /// this plus one interval. Default 30 s (<c>none</c>: no limit).
    /// </summary>
    public TimeSpan? SignalingIdleLimit { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The <c>Retry-After</c> of a 429 for a full server (RFC 9110 section 10.2.3); a rate refusal says its own time. Default 5 s.</summary>
    public TimeSpan RetryAfter { get; set; } = TimeSpan.FromSeconds(5);

    // ---- Protocol limits of every peer connection ----

    /// <summary>
    /// Remote ICE candidates per check list, signalled and peer-reflexive together; more are dropped and counted (RFC 8445 section 6.1.2.5). Default 100.
    /// </summary>
    public int MaxRemoteCandidates { get; set; } = 100;

    /// <summary>ICE candidate pairs per check list; more are not formed, and counted. Default 500.</summary>
    public int MaxCandidatePairs { get; set; } = 500;

    /// <summary>
    /// Remote candidates in private ranges (RFC 1918, RFC 6598, link-local, RFC 4193) are checked. Default true (a LAN
    /// peer needs them); a public server may deny them so a client cannot make it probe its own network. Unspecified,
    /// multicast, broadcast, port 0 and our own candidates are always refused.
    /// </summary>
    public bool AllowPrivateAddresses { get; set; } = true;

    /// <summary>Bytes of DTLS handshake messages held in reassembly before the peer is authenticated. Default 64 KiB.</summary>
    public int DtlsMaxHandshakeBuffer { get; set; } = Transport.Dtls.DtlsOptions.DefaultMaxHandshakeBuffer;

    /// <summary>
    /// Bytes of received data channel messages not yet read by the session, plus SCTP reassembly, per connection: as
    /// they grow the SCTP window closes and the peer waits (backpressure); nothing is dropped. Default 4 MiB.
    /// </summary>
    public int MaxUnreadBytes { get; set; } = 4 << 20;

    /// <summary>Largest data channel message accepted (advertised as <c>a=max-message-size</c>). Default 256 KiB.</summary>
    public int MaxDataChannelMessageSize { get; set; } = 256 * 1024;

    /// <summary>Data channels open at once per association; a DATA_CHANNEL_OPEN over it is refused (stream reset). Default 1024.</summary>
    public int MaxDataChannels { get; set; } = 1024;

    /// <summary>Largest label of a data channel the peer opens, in UTF-8 bytes; longer is refused. Default 1024.</summary>
    public int MaxChannelLabelLength { get; set; } = 1024;

    /// <summary>Largest sub-protocol of a data channel the peer opens, in UTF-8 bytes; longer is refused. Default 1024.</summary>
    public int MaxChannelProtocolLength { get; set; } = 1024;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first limit out of range.</summary>
    public void Validate()
    {
        static void Check(bool ok, string name) { if (!ok) throw new ArgumentOutOfRangeException(name, $"WebRtc:Limits:{name} is out of range"); }
        Check(MaxSessions >= 0, nameof(MaxSessions));
        Check(MaxSessionsPerClient >= 0, nameof(MaxSessionsPerClient));
        Check(MaxPendingSessions >= 0, nameof(MaxPendingSessions));
        Check(ConnectTimeout > TimeSpan.Zero, nameof(ConnectTimeout));
        Check(IdleLimit is null || IdleLimit > TimeSpan.Zero, nameof(IdleLimit));
        Check(SessionTimeLimit is null || SessionTimeLimit > TimeSpan.Zero, nameof(SessionTimeLimit));
        Check(DisconnectedLimit is null || DisconnectedLimit > TimeSpan.Zero, nameof(DisconnectedLimit));
        Check(HandlerStallLimit is null || HandlerStallLimit > TimeSpan.Zero, nameof(HandlerStallLimit));
        Check(OfferBurst >= 1, nameof(OfferBurst));
        Check(OffersPerSecond >= 0 && double.IsFinite(OffersPerSecond), nameof(OffersPerSecond));
        Check(MaxRateLimitedClients >= 1, nameof(MaxRateLimitedClients));
        Check(MaxRequestBodySize > 0, nameof(MaxRequestBodySize));
        Check(RequestBodyTimeout > TimeSpan.Zero, nameof(RequestBodyTimeout));
        Check(MaxSignalingMessageSize > 0, nameof(MaxSignalingMessageSize));
        Check(MaxStreamMessageSize > 0, nameof(MaxStreamMessageSize));
        Check(MaxSignalingSocketsPerClient >= 0, nameof(MaxSignalingSocketsPerClient));
        Check(SignalingIdleLimit is null || SignalingIdleLimit > TimeSpan.Zero, nameof(SignalingIdleLimit));
        Check(RetryAfter >= TimeSpan.Zero, nameof(RetryAfter));
        Check(MaxRemoteCandidates >= 1, nameof(MaxRemoteCandidates));
        Check(MaxCandidatePairs >= 1, nameof(MaxCandidatePairs));
        Check(DtlsMaxHandshakeBuffer > 0, nameof(DtlsMaxHandshakeBuffer));
        Check(MaxUnreadBytes >= 0, nameof(MaxUnreadBytes));
        Check(MaxDataChannelMessageSize > 0, nameof(MaxDataChannelMessageSize));
        Check(MaxDataChannels >= 1, nameof(MaxDataChannels));
        Check(MaxChannelLabelLength is >= 0 and <= ushort.MaxValue, nameof(MaxChannelLabelLength));
        Check(MaxChannelProtocolLength is >= 0 and <= ushort.MaxValue, nameof(MaxChannelProtocolLength));
    }

    /// <summary>The session server's options: these limits over <paramref name="baseline"/> (its other settings kept).</summary>
    public StreamServerOptions ApplyTo(StreamServerOptions baseline)
    {
        ArgumentNullException.ThrowIfNull(baseline);
        return baseline with
        {
            MaxConcurrentSessions = MaxSessions,
            MaxSessionsPerClient = MaxSessionsPerClient,
            MaxPendingSessions = MaxPendingSessions,
            ConnectTimeout = ConnectTimeout,
            IdleLimit = IdleLimit,
            SessionTimeLimit = SessionTimeLimit,
            DisconnectedLimit = DisconnectedLimit,
            HandlerStallLimit = HandlerStallLimit,
        };
    }

    /// <summary>
    /// The peer connections' options: the protocol limits (ICE candidates, pairs and address policy, DTLS handshake
    /// buffer, unread bytes, message size, data channels, label and protocol length) over <paramref name="baseline"/>.
    /// </summary>
    public WebRtcTransportOptions ApplyTo(WebRtcTransportOptions baseline)
    {
        ArgumentNullException.ThrowIfNull(baseline);
        var pc = baseline.PeerConnection;
        return baseline with
        {
            PeerConnection = pc with
            {
                Ice = pc.Ice with
                {
                    Limits = pc.Ice.Limits with
                    {
                        MaxRemoteCandidates = MaxRemoteCandidates,
                        MaxPairs = MaxCandidatePairs,
                        AllowPrivateAddresses = AllowPrivateAddresses
                    }
                },
                DtlsMaxHandshakeBuffer = DtlsMaxHandshakeBuffer,
                MaxUnreadBytes = MaxUnreadBytes,
                MaxMessageSize = MaxDataChannelMessageSize,
                Sctp = pc.Sctp with
                {
                    Limits = pc.Sctp.Limits with
                    {
                        MaxChannels = MaxDataChannels,
                        MaxLabelLength = MaxChannelLabelLength,
                        MaxProtocolLength = MaxChannelProtocolLength
                    }
                },
            },
        };
    }

    /// <summary>The WebSocket stream transport's options: <see cref="MaxStreamMessageSize"/> over <paramref name="baseline"/>.</summary>
    public WebSocketTransportOptions ApplyTo(WebSocketTransportOptions baseline)
    {
        ArgumentNullException.ThrowIfNull(baseline);
        return baseline with { MaxMessageSize = MaxStreamMessageSize };
    }
}
