using Transport.Dtls;
using Transport.Ice;
using Transport.Rtp.Srtp;
using Transport.Sctp;
using Transport.Streaming.Jsep;

namespace Transport.Streaming.WebRtc;

/// <summary>The aggregated state of a peer connection (W3C RTCPeerConnectionState).</summary>
public enum ConnectionState { New, Connecting, Connected, Disconnected, Failed, Closed }

/// <summary>Which layer decided a state change.</summary>
public enum ConnectionLayer { Ice, Dtls, Sctp, Srtp, Application }

/// <summary>Why the connection is in its state: the layer and that layer's own reason.</summary>
public sealed record ConnectionReason(ConnectionLayer Layer, string Detail)
{
    public override string ToString() => $"{Layer}: {Detail}";
}

/// <summary>The layer a deadline of the peer connection belongs to (<see cref="PeerConnectionDeadline.Layer"/>).</summary>
public enum PeerConnectionLayer
{
    /// <summary>No deadline.</summary>
    None,
    /// <summary>The ICE agent (<see cref="Transport.Ice.IceTimer"/>).</summary>
    Ice,
    /// <summary>The DTLS connection (<see cref="Transport.Dtls.DtlsTimer"/>).</summary>
    Dtls,
    /// <summary>The SCTP association (<see cref="Transport.Sctp.SctpTimer"/>).</summary>
    Sctp,
    /// <summary>Media: the composition's send queue, pacer and key frame requests, the RTP session and transport-cc (<see cref="MediaTimer"/>).</summary>
    Media,
}

/// <summary>The media layer's deadlines (<see cref="PeerConnectionDeadline.Media"/>).</summary>
public enum MediaTimer
{
    /// <summary>No deadline.</summary>
    None,
    /// <summary>Protected packets wait in the send queue: due now.</summary>
    SendQueue,
    /// <summary>A key frame request (PLI) for a remote track waits to go: due now.</summary>
    KeyFrameRequest,
    /// <summary>The pacer's next send time (media, or the data channels' share of the estimate).</summary>
    Pacer,
    /// <summary>The RTP session has a BYE or retransmissions to send (<see cref="Transport.Rtp.Streams.RtpTimer.Transmit"/>).</summary>
    RtpTransmit,
    /// <summary>The next RTCP report (<see cref="Transport.Rtp.Streams.RtpTimer.Report"/>).</summary>
    RtcpReport,
    /// <summary>A NACK is due (<see cref="Transport.Rtp.Streams.RtpTimer.Nack"/>).</summary>
    Nack,
    /// <summary>The next transport-cc feedback packet.</summary>
    TransportCcFeedback,
}

/// <summary>
/// Which timer a deadline of the peer connection is: the <see cref="Layer"/> and that layer's own reason, in the
/// member named after the layer (the others stay None). <see cref="PeerConnectionCore.PollTimeout(out PeerConnectionDeadline)"/>
/// reports the soonest one, <see cref="PeerConnectionCore.LastTimerFired"/> the last one that fired; the text is
/// "Layer.Timer" (for example "Sctp.T3Rtx") for logs and health.
/// </summary>
public readonly record struct PeerConnectionDeadline(
    PeerConnectionLayer Layer,
    Transport.Ice.IceTimer Ice = Transport.Ice.IceTimer.None,
    Transport.Dtls.DtlsTimer Dtls = Transport.Dtls.DtlsTimer.None,
    Transport.Sctp.SctpTimer Sctp = Transport.Sctp.SctpTimer.None,
    MediaTimer Media = MediaTimer.None)
{
    /// <summary>"Layer.Timer", or "None".</summary>
    public override string ToString() => Layer switch
    {
        PeerConnectionLayer.Ice => $"Ice.{Ice}",
        PeerConnectionLayer.Dtls => $"Dtls.{Dtls}",
        PeerConnectionLayer.Sctp => $"Sctp.{Sctp}",
        PeerConnectionLayer.Media => $"Media.{Media}",
        _ => "None",
    };
}

/// <summary>Options of a peer connection; every timer of every layer is here with its documented default.</summary>
public sealed record PeerConnectionOptions
{
    /// <summary>ICE: role is set by JSEP (the offerer controls); the liveness timers are these options.</summary>
    public IceAgentOptions Ice { get; init; } = new();
    /// <summary>Our certificate; null makes a new self-signed ECDSA P-256 one (reuse one across connections to save ~1 ms).</summary>
    public DtlsCertificate? Certificate { get; init; }
    /// <summary>
    /// DTLS retransmission: initial timeout while the path's round-trip time is unknown (RFC 6347: 1 s), and the cap
    /// of the RTT-based one (see <see cref="DtlsMinRetransmitTimeout"/>).
    /// </summary>
    public TimeSpan DtlsInitialRetransmitTimeout { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>
    /// DTLS retransmission: when ICE measured the round-trip time of the pair DTLS starts on, the first
    /// retransmission timeout is max(this, 2 x RTT), at most <see cref="DtlsInitialRetransmitTimeout"/>, doubling
    /// from there (<see cref="DtlsOptions.RoundTripTime"/>). Default 50 ms (Firefox's first timeout).
    /// </summary>
    public TimeSpan DtlsMinRetransmitTimeout { get; init; } = TimeSpan.FromMilliseconds(50);
    /// <summary>
    /// Our DTLS role when we answer an offer that says a=setup:actpass (every browser's): <see cref="DtlsRole.Server"/>
    /// (default; we answer a=setup:passive, and the offerer's ClientHello follows our answer, so nothing is sent
    /// before the peer can take it) or <see cref="DtlsRole.Client"/> (a=setup:active: our ClientHello may reach
    /// the offerer before our answer does and is then lost until a retransmission; see docs/dtls.md).
    /// </summary>
    public DtlsRole DtlsAnswerRole { get; init; } = DtlsRole.Server;
    /// <summary>DTLS handshake gives up after this (Failed, reason HandshakeTimeout).</summary>
    public TimeSpan DtlsHandshakeTimeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>
    /// DTLS: bytes of handshake messages held in reassembly before the peer is authenticated (default 64 KiB,
    /// <see cref="Transport.Dtls.DtlsOptions.MaxHandshakeBuffer"/>).
    /// </summary>
    public int DtlsMaxHandshakeBuffer { get; init; } = Transport.Dtls.DtlsOptions.DefaultMaxHandshakeBuffer;
    /// <summary>
    /// DTLS: the highest version offered or accepted (<see cref="Transport.Dtls.DtlsOptions.MaxVersion"/>). Default
    /// DTLS 1.3 (with X25519MLKEM768 first; Firefox ESR 153 and Chromium 156 negotiate it with us); 1.2 peers get 1.2.
    /// </summary>
    public DtlsVersion DtlsMaxVersion { get; init; } = DtlsVersion.Dtls13;
    /// <summary>DTLS: the lowest version accepted (<see cref="Transport.Dtls.DtlsOptions.MinVersion"/>; default 1.2).</summary>
    public DtlsVersion DtlsMinVersion { get; init; } = DtlsVersion.Dtls12;
    /// <summary>
    /// SPED (draft-hancke-webrtc-sped): offer the ice-option (<c>sped goog-sped-v1 googspedv1</c>) and, when the peer
    /// offers or answers it, carry the DTLS handshake in the ICE checks (one round trip less to DTLS connected);
    /// without it on the peer's side, or when the peer stops carrying it, DTLS goes the normal path. Default true.
    /// </summary>
    public bool Sped { get; init; } = true;
    /// <summary>
    /// DTLS: key exchange groups in preference order; null: <see cref="Transport.Dtls.DtlsOptions.Groups"/>'s default (X25519MLKEM768 first for 1.3).
    /// </summary>
    public IReadOnlyList<DtlsNamedGroup>? DtlsGroups { get; init; }
    /// <summary>
    /// SCTP options (RTO, Max.Retrans, delayed SACK, buffer sizes); IsDtlsClient and MaxMessageSize are set by the
    /// connection. The default raises RTO.Min to 400 ms: browsers delay their SACKs by up to 200 ms, and with a
    /// minimum at or under that, a spurious T3-rtx on a quiet path abandons messages of partial-reliable channels
    /// with max retransmits 0 although nothing was lost.
    /// </summary>
    public SctpOptions Sctp { get; init; } = new()
    {
        RtoMin = TimeSpan.FromMilliseconds(400),
        // As libwebrtc: the T3-rtx backoff stops at 3 s, so a path that works again after an outage or a run of losses
        // is used within 3 s (found by the chaos suite, seed 12: 10 s between retransmissions at 30 % loss each way).
        // With the shorter timers, 20 failed retransmissions (about 55 s of silence) declare the peer unreachable,
        // about the minute that 10 failures up to RTO.Max took before.
        MaxTimerBackoff = TimeSpan.FromSeconds(3),
        MaxRetransmissions = 20,
    };
    /// <summary>
    /// Most bytes a data channel holds queued and not yet sent before <see cref="PeerConnection.TrySend(DataChannel, ReadOnlySpan{byte}, bool)"/> answers
    /// BufferFull and SendAsync throws (the bound on what is kept while Disconnected, too). Default 16 MiB.
    /// </summary>
    public long MaxBufferedAmount { get; init; } = 16L << 20;
    /// <summary>
    /// Backpressure: most bytes of received data channel messages held for the application and not yet read, plus
    /// what SCTP holds in reassembly (<see cref="SctpOptions.MaxUnreadBytes"/>). As they grow the SCTP window closes
    /// and the peer waits; reading (<see cref="PeerConnection.Events"/>, or polling <see cref="PeerConnectionCore"/>)
    /// reopens it. Nothing of a reliable channel is dropped. Default 4 MiB; 0 turns backpressure off (unbounded).
    /// </summary>
    public int MaxUnreadBytes { get; init; } = 4 << 20;
    /// <summary>
    /// SNAP (draft-hancke-tsvwg-snap): our offers carry <c>a=sctp-init</c> (our SCTP INIT chunk), and we answer an offer
    /// that carries a valid one with our own; when both descriptions have one, the SCTP association is ESTABLISHED as soon
    /// as DTLS is, without the INIT / INIT ACK / COOKIE ECHO / COOKIE ACK round trips. When the peer sent none or an
    /// invalid one, the four-way handshake runs as before (<see cref="PeerConnectionCore.SnapRefusal"/> says why).
    /// Default true (Chromium offers it with the WebRTC-Sctp-Snap field trial).
    /// </summary>
    public bool Snap { get; init; } = true;
    /// <summary>Largest data channel message we accept (advertised as a=max-message-size). Default 256 KiB.</summary>
    public int MaxMessageSize { get; init; } = 256 * 1024;
    /// <summary>
    /// Received data channel messages come as <see cref="DataChannelMessageLease"/> (SCTP's reassembly buffer, lent, no
    /// copy; pooled, so a steady stream allocates nothing) instead of <see cref="DataChannelMessageReceived"/> (a new
    /// array per message). The application must <see cref="DataChannelMessageLease.Dispose"/> each lease: with
    /// <see cref="MaxUnreadBytes"/> its bytes count as unread until then, so leases never returned stop the flow at
    /// that bound instead of growing memory. Default false (the copying event). The sessions layer
    /// (<c>WebRtcSessions</c>) always turns it off: it queues the copying events itself.
    /// </summary>
    public bool LeasedMessages { get; init; }
    /// <summary>
    /// Ask for an ICE restart onto a relay when the direct path dies (issue 20): when the pair in use is not relayed,
    /// goes Disconnected (nothing received), and TURN servers are configured (<c>Ice.TurnServers</c>), the connection
    /// emits <see cref="IceRestartNeeded"/> once per disconnection and the next
    /// <see cref="PeerConnection.CreateOfferAsync(System.Threading.CancellationToken)"/> restarts ICE (as after <see cref="PeerConnection.RestartIce"/>): new
    /// credentials, a new check list that includes the relayed candidates. A restart needs signaling (RFC 8445 section 9), so the application sends that offer
    /// and applies the answer, as for any renegotiation; usually the side that made the first offer. Default false.
    /// </summary>
    public bool IceRestartOnDirectPathLoss { get; init; }
    /// <summary>SRTP options (replay window).</summary>
    public SrtpOptions? Srtp { get; init; }
    /// <summary>Media: packetization size, send queue and history bounds, track reader capacities, RTCP interval.</summary>
    public MediaOptions Media { get; init; } = new();
    /// <summary>
    /// Addresses a 1:1 NAT presents for our host addresses (a cloud VM's public address; pion's NAT1To1IPs): each
    /// becomes a server-reflexive candidate with the host candidate's port and raddr/rport = the host candidate, for
    /// every host candidate of its family (or only the one <see cref="PublicAddress.Local"/> names). The host
    /// candidates are signalled too (peers on the private network use them). Server-reflexive rather than a host
    /// candidate with the public address: that is what the address is (RFC 8445 section 5.1.1.2), the agent then sends
    /// from the base as for a gathered one, and nothing else needs to know about the NAT. Default: none.
    /// </summary>
    public IReadOnlyList<PublicAddress> PublicAddresses { get; init; } = [];
}

/// <summary>
/// A 1:1 NAT's public address for <see cref="Local"/> (every host address of the family when null). Parsed from
/// <c>PUBLIC</c> or <c>PUBLIC/LOCAL</c> (<c>203.0.113.7/10.0.0.5</c>).
/// </summary>
public sealed record PublicAddress(System.Net.IPAddress Public, System.Net.IPAddress? Local = null)
{
    /// <summary>Parses <c>PUBLIC</c> or <c>PUBLIC/LOCAL</c>; <see cref="FormatException"/> names what is wrong.</summary>
    public static PublicAddress Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        var publicText = slash < 0 ? text : text[..slash];
        if (!System.Net.IPAddress.TryParse(publicText, out var pub) || pub.Equals(System.Net.IPAddress.Any) || pub.Equals(System.Net.IPAddress.IPv6Any))
            throw new FormatException($"'{publicText}' is not an IP address (a public address is PUBLIC or PUBLIC/LOCAL, e.g. 203.0.113.7/10.0.0.5)");
        System.Net.IPAddress? local = null;
        if (slash >= 0 && (!System.Net.IPAddress.TryParse(text[(slash + 1)..], out local) || local.AddressFamily != pub.AddressFamily))
            throw new FormatException($"'{text[(slash + 1)..]}' is not an IP address of the public address's family");
        return new PublicAddress(pub, local);
    }

    public override string ToString() => Local is null ? Public.ToString() : $"{Public}/{Local}";
}

/// <summary>An output of a <see cref="PeerConnectionCore"/>.</summary>
public abstract record PeerConnectionEvent
{
    /// <summary>An event of time <paramref name="At"/>.</summary>
    protected PeerConnectionEvent(TimeSpan At) => this.At = At;

    /// <summary>When it happened (the core's time).</summary>
    // Settable inside the assembly for the pooled DataChannelMessageLease, which is reused for later messages.
    public TimeSpan At { get; private protected set; }
}

/// <summary>The aggregated state changed.</summary>
public sealed record ConnectionStateChanged(TimeSpan At, ConnectionState Previous, ConnectionState State, ConnectionReason Reason) : PeerConnectionEvent(At);

/// <summary>A local ICE candidate to signal (trickle).</summary>
public sealed record LocalCandidateGathered(TimeSpan At, IceCandidate Candidate) : PeerConnectionEvent(At);

/// <summary>
/// A TURN relay failed or was lost (W3C WebRTC's <c>icecandidateerror</c>): its allocation was refused, expired, or its
/// TCP or TLS connection closed (a refused certificate, a reset, a server restart); <see cref="Reason"/> says which.
/// The connection goes on with its other candidates; a relay that carried the selected pair takes ICE to Failed.
/// </summary>
/// <param name="At">When.</param>
/// <param name="Server">The configured server (<c>turn:</c> or <c>turns:</c> URI).</param>
/// <param name="ErrorCode">The STUN error code the server gave, or 0.</param>
/// <param name="Reason">What happened.</param>
public sealed record LocalCandidateError(TimeSpan At, string Server, int ErrorCode, string Reason) : PeerConnectionEvent(At);

/// <summary>
/// Gathering ended: every local candidate (host, server-reflexive, relayed) was reported by <see cref="LocalCandidateGathered"/>
/// (end-of-candidates to signal).
/// </summary>
public sealed record LocalCandidatesComplete(TimeSpan At) : PeerConnectionEvent(At);

/// <summary>A data channel is open (ours after the peer's ACK, or one the peer opened).</summary>
public sealed record DataChannelOpened(TimeSpan At, DataChannel Channel) : PeerConnectionEvent(At);

/// <summary>A data channel message; <paramref name="Data"/> is our own copy.</summary>
public sealed record DataChannelMessageReceived(TimeSpan At, DataChannel Channel, byte[] Data, bool IsBinary) : PeerConnectionEvent(At);

/// <summary>A data channel closed.</summary>
public sealed record DataChannelClosed(TimeSpan At, DataChannel Channel) : PeerConnectionEvent(At);

/// <summary>A data channel's buffered amount fell to its low threshold.</summary>
public sealed record DataChannelBufferedAmountLow(TimeSpan At, DataChannel Channel) : PeerConnectionEvent(At);

/// <summary>
/// An SRTP or SRTCP packet was decrypted that no negotiated track claims (an unknown SSRC, or RTCP before any media
/// section was negotiated): <paramref name="Packet"/> is the plain RTP/RTCP packet (our copy). Packets of negotiated
/// tracks go to <see cref="RemoteTrack.Packets"/> instead.
/// </summary>
public sealed record MediaPacketReceived(TimeSpan At, bool IsRtcp, byte[] Packet) : PeerConnectionEvent(At);

/// <summary>Where the offer/answer exchange stands (W3C RTCSignalingState, the states this API can be in).</summary>
public enum SignalingState
{
    /// <summary>No exchange is in progress: an offer may be created, or a remote offer answered.</summary>
    Stable,
    /// <summary>Our offer is our local description and waits for the remote answer.</summary>
    HaveLocalOffer,
}

/// <summary>Options of an offer.</summary>
public sealed record OfferOptions
{
    /// <summary>
    /// Restart ICE (RFC 8445 section 9; RFC 8829 section 5.2.1, <c>iceRestart</c>): the offer carries new ice-ufrag and
    /// ice-pwd and the agent starts a new check list. Data keeps flowing on the current pair until the new generation
    /// selects its own; DTLS, SCTP and SRTP are untouched. Ignored on the initial offer.
    /// </summary>
    public bool IceRestart { get; init; }
}

/// <summary>
/// The direct pair in use went Disconnected and relays are configured
/// (<see cref="PeerConnectionOptions.IceRestartOnDirectPathLoss"/>): negotiation is needed. The next
/// <see cref="PeerConnection.CreateOfferAsync(System.Threading.CancellationToken)"/> restarts ICE; signal that offer and apply the answer.
/// <paramref name="Reason"/> says what was lost.
/// </summary>
public sealed record IceRestartNeeded(TimeSpan At, string Reason) : PeerConnectionEvent(At);

/// <summary>
/// An ICE restart began: we offered it (<paramref name="ByUs"/>), or the peer's offer carried new credentials and we
/// answered with new ones. <paramref name="LocalUsernameFragment"/> is our new ufrag, <paramref name="PreviousLocalUsernameFragment"/>
/// the one it replaces. Data keeps flowing on the selected pair of the previous generation meanwhile.
/// </summary>
public sealed record IceRestartStarted(TimeSpan At, bool ByUs, string LocalUsernameFragment, string PreviousLocalUsernameFragment) : PeerConnectionEvent(At);

/// <summary>
/// The restart's new ICE generation selected its pair (<paramref name="Local"/>, <paramref name="Remote"/>): data goes on
/// it from now on. <paramref name="LocalUsernameFragment"/> and <paramref name="RemoteUsernameFragment"/> are that
/// generation's credentials; <paramref name="Elapsed"/> runs from the restart's start (our offer, or our answer to the
/// peer's restart offer) to the selection.
/// </summary>
public sealed record IceRestartCompleted(TimeSpan At, string LocalUsernameFragment, string RemoteUsernameFragment, IceCandidate Local,
    IceCandidate Remote, TimeSpan Elapsed)
    : PeerConnectionEvent(At);

/// <summary>
/// The selected ICE pair and the username fragments of the generation it belongs to (they change with an ICE restart,
/// once the new generation selects its pair); <paramref name="SelectedAt"/> is when it was selected.
/// </summary>
public sealed record SelectedIcePair(IceCandidate Local, IceCandidate Remote, string LocalUsernameFragment, string RemoteUsernameFragment, TimeSpan SelectedAt);
