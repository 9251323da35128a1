using System.Net;
using Transport.Ice.Stun;
using Transport.Ice.Turn;

namespace Transport.Ice;

/// <summary>
/// Options of an <see cref="IceAgent"/>. Every liveness timer is exact on the caller's time and 0 disables it.
/// </summary>
public sealed record IceAgentOptions
{
    /// <summary>The initial role (RFC 8445 section 6.1.1: the offerer is usually controlling). Lite agents are always controlled.</summary>
    public IceRole Role { get; init; } = IceRole.Controlling;

    /// <summary>ICE-lite (RFC 8445 section 2.5): answers checks, never sends them; the peer must be full.</summary>
    public bool Lite { get; init; }

    /// <summary>Local credentials; generated when null.</summary>
    public IceCredentials? LocalCredentials { get; init; }

    /// <summary>The tie-breaker of role conflicts; random when null.</summary>
    public ulong? TieBreaker { get; init; }

    /// <summary>
    /// As the controlled agent (the answerer): the ordinary checks of a generation wait until the peer's first check
    /// arrives (the peer has our description then) or until this long after the remote credentials were set;
    /// triggered checks never wait. Some stacks (libjuice in libdatachannel) call ICE connected on our checks
    /// alone, before they have our answer, and start DTLS without its fingerprint, which fails. Zero: no hold.
    /// Default 150 ms.
    /// </summary>
    public TimeSpan ControlledCheckHold { get; init; } = TimeSpan.FromMilliseconds(150);

    /// <summary>Ta, the pacing of new checks (RFC 8445 section 14.2; default 50 ms).</summary>
    public TimeSpan Ta { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>Retransmission of checks, consent checks and gathering requests.</summary>
    public StunRetransmissionOptions CheckRetransmission { get; init; } = new()
    {
        InitialRto = TimeSpan.FromMilliseconds(500),
        MaxRto = TimeSpan.FromMilliseconds(1600),
        MaxRequests = 7,
        LastRequestWaitMultiplier = 4,
    };

    /// <summary>
    /// Application data may be sent on the best valid pair before a pair is selected (RFC 8445 section 12.1; default
    /// true). A DTLS handshake then starts one round trip after the first check instead of after nomination, which
    /// regular nomination paces by Ta. <see cref="IceAgent.TrySend(TimeSpan)"/> reports <c>Send</c> in state Checking then.
    /// </summary>
    public bool SendBeforeNomination { get; init; } = true;

    /// <summary>How long the controlling agent waits for better pairs after the first valid one before nominating (default 1 s).</summary>
    public TimeSpan NominationTimeout { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// A Binding indication is sent on the pair in use (the selected pair, or before nomination the valid pair data
    /// goes on) when nothing was sent for this long (RFC 8445 section 11; default 3 s). Anything sent counts: consent
    /// checks and answers to the peer's checks (every 4-6 s each way while idle) too. Shorter than RFC 8445's Tr of
    /// 15 s on purpose: the peer's liveness timer needs it, not the NAT. A peer of this stack goes Disconnected after
    /// <see cref="DisconnectedTimeout"/> (5 s) without a datagram; consent traffic alone leaves such silences now and
    /// then, so an idle connection would flap to Disconnected and back. With 3 s it hears from us at least every 3.1 s
    /// (1.9 s to spare for delay variation), and a browser peer, which checks every 2.5 s and gets our answers, never
    /// sees a keepalive. Right after our application data stopped the first keepalive goes sooner, after 4/5 of
    /// <see cref="ReceiveSilenceTimeout"/> (2 s): a peer that saw the data flowing goes Disconnected after that timeout
    /// without a datagram. 2 s always before: an idle connection then sent 0.7 datagrams a second, 0.55 now.
    /// </summary>
    public TimeSpan KeepaliveInterval { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>
    /// A keepalive that is due goes out at the first multiple of this period of the agent's clock at or after the
    /// moment <see cref="KeepaliveInterval"/> of silence has passed (default 100 ms; 0 sends it at that exact moment).
    /// Never earlier than the interval, at most this much later: with <see cref="ConsentAlignment"/> every periodic
    /// send of an idle agent then falls on the common grid, so agents sharing a host (and a driver's clock) share
    /// wake-ups instead of waking once per keepalive each.
    /// </summary>
    public TimeSpan KeepaliveAlignment { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// Consent checks on the pair in use (selected, or before nomination the valid pair data goes on) every this long,
    /// randomized by +-20 % (RFC 7675 section 5.1; default 5 s).
    /// </summary>
    public TimeSpan ConsentInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// The randomized consent time is moved to a multiple of this period of the agent's clock when that stays within
    /// the +-20 % window (default 100 ms; 0 keeps the plain random time). Agents on one host then check on common
    /// instants, so thousands of idle connections cost a few wake-ups per period rather than one per check; the
    /// other liveness timers (keepalive, disconnected, failed, consent expiry) stay exact.
    /// </summary>
    public TimeSpan ConsentAlignment { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Consent expires this long after the last authenticated response (default 30 s): Failed with ConsentExpired.</summary>
    public TimeSpan ConsentTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Connected becomes Disconnected when nothing was received on the pair in use for this long (default 5 s).</summary>
    public TimeSpan DisconnectedTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// While application data flows, Connected becomes Disconnected (reason <see cref="IceStateReason.ReceiveSilence"/>)
    /// when nothing at all was received for this long (default 2.5 s; 0 disables it). Browsers do the same beside
    /// consent: a stream that arrived every few milliseconds and stops is evidence within a few packet intervals,
    /// long before <see cref="DisconnectedTimeout"/>. It applies only while data flows: application datagrams (DTLS,
    /// SRTP) have arrived for at least this long without a gap longer than this timeout / <see cref="ReceiveSilencePackets"/>
    /// (so a DTLS handshake's burst does not arm it), and the last of them arrived no more than that gap before the
    /// last datagram of any kind. An idle connection (only STUN) keeps <see cref="DisconnectedTimeout"/>. The next
    /// datagram brings the state back to Connected (TrafficResumed).
    /// </summary>
    public TimeSpan ReceiveSilenceTimeout { get; init; } = TimeSpan.FromMilliseconds(2500);

    /// <summary>
    /// Data counts as flowing while no gap between application datagrams exceeds <see cref="ReceiveSilenceTimeout"/> /
    /// this (default 4: at least one datagram per 625 ms with the default timeout).
    /// </summary>
    public int ReceiveSilencePackets { get; init; } = 4;

    /// <summary>
    /// NAT rebinding (the peer's public port changes mid-session; nothing changes on the peer's side, so no ICE restart
    /// comes): when the peer's application data arrives on another valid pair of the current generation (the peer's
    /// check from its new address made it a peer-reflexive pair, our triggered check on it succeeded) while nothing has
    /// arrived on the selected pair for this long, that pair is selected (reason <see cref="IceStateReason.PeerMoved"/>)
    /// and our data follows the peer. The silence keeps data still in flight on a pair the peer left, just after a
    /// nomination, from moving us back. Default 1 s; 0 disables it. While Disconnected, consent checks also go out at
    /// once and then every <see cref="ConsentInterval"/> x 0.4 (a peer behind a rebound NAT is reached by our next
    /// check from its new address, not 5 s later).
    /// </summary>
    public TimeSpan PeerMoveSilence { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Disconnected becomes Failed after this long (default 25 s).</summary>
    public TimeSpan FailedTimeout { get; init; } = TimeSpan.FromSeconds(25);

    /// <summary>STUN servers for server-reflexive candidates.</summary>
    public IReadOnlyList<IPEndPoint> StunServers { get; init; } = [];

    /// <summary>
    /// TURN servers for relayed candidates (RFC 8445 section 5.1.1.2), e.g.
    /// <c>TurnServerConfig.Parse("turn:192.0.2.1:3478?transport=udp", "user", "password")</c>. The agent allocates
    /// one relay per host candidate and server of the same address family, over UDP or TCP to the server as the
    /// URI says, or TLS over TCP for <c>turns:</c> (the driver runs TLS, checking the certificate against
    /// <see cref="TurnServerConfig.TlsServerName"/>). The host must be an address literal (the driver resolves names);
    /// <c>turns:</c> over UDP (DTLS) is not supported and makes the constructor throw <see cref="NotSupportedException"/>.
    /// </summary>
    public IReadOnlyList<TurnServerConfig> TurnServers { get; init; } = [];

    /// <summary>
    /// Adjusts the options of each TURN client the agent creates (lifetime, refresh margin, intervals), for
    /// example <c>o =&gt; o with { RefreshMargin = TimeSpan.FromSeconds(30) }</c>. Null keeps the defaults.
    /// </summary>
    public Func<TurnClientOptions, TurnClientOptions>? ConfigureTurnClient { get; init; }

    /// <summary>
    /// How many times the agent allocates again (on the same TURN server, or another after <see cref="RelayFailoverAfter"/>
    /// failures in a row) after a relay's allocation was lost (a Refresh
    /// refused with 437 or unanswered past the lifetime, the lifetime ran out, the TCP or TLS connection to the server
    /// closed: a server restart). The first attempt goes <see cref="RelayReallocationDelay"/> after the loss, each next
    /// one twice as late (at most <see cref="RelayReallocationMaxDelay"/>); a new allocation is a new relayed
    /// candidate (<see cref="IceCandidateGatheredEvent"/>, to signal) paired with the remote candidates. Default 5;
    /// 0 turns recovery off (the relay stays lost, and the agent fails when its pair in use was on it).
    /// </summary>
    public int RelayReallocationAttempts { get; init; } = 5;

    /// <summary>The wait before the first re-allocation of a lost relay (default 500 ms; doubled after each failed attempt).</summary>
    public TimeSpan RelayReallocationDelay { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>The longest wait between two re-allocation attempts (default 8 s).</summary>
    public TimeSpan RelayReallocationMaxDelay { get; init; } = TimeSpan.FromSeconds(8);

    /// <summary>
    /// Fail-over of a lost relay: after this many failed re-allocation attempts in a row on one TURN server, the next
    /// attempt goes to another configured server of the host's address family that no other relay of the host holds,
    /// of the same kind (UDP, TCP or TLS) as the relay's configured server when one is free, else of another kind, in
    /// the configured order (round the list on later fail-overs). The attempts count towards
    /// <see cref="RelayReallocationAttempts"/>. Default 2; 0 keeps every attempt on the same server.
    /// </summary>
    public int RelayFailoverAfter { get; init; } = 2;

    /// <summary>
    /// Which local candidates are gathered and used (the <c>iceTransportPolicy</c> of W3C WebRTC). With
    /// <see cref="IceTransportPolicy.Relay"/> only relayed candidates are signalled, paired and checked: host
    /// addresses serve only as the sockets that talk to the TURN servers. Default <see cref="IceTransportPolicy.All"/>.
    /// </summary>
    public IceTransportPolicy TransportPolicy { get; init; } = IceTransportPolicy.All;

    /// <summary>Bounds on what the remote party can make the agent hold: candidates, pairs, addresses (see <see cref="IceLimits"/>).</summary>
    public IceLimits Limits { get; init; } = new();
    /// <summary>Random source for consent jitter; seed it in tests. Default: a new <see cref="System.Random"/>.</summary>
    public Random? Random { get; init; }

    /// <summary>SOFTWARE attribute value in checks, or null for none.</summary>
    public string? Software { get; init; }

    internal void Validate()
    {
        if (Ta <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(Ta), "Ta must be positive.");
        if (ControlledCheckHold < TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(ControlledCheckHold), "ControlledCheckHold must not be negative.");
        foreach (var (name, value) in new[]
        {
            (nameof(KeepaliveInterval), KeepaliveInterval), (nameof(ConsentInterval), ConsentInterval), (nameof(ConsentTimeout), ConsentTimeout),
            (nameof(DisconnectedTimeout), DisconnectedTimeout), (nameof(FailedTimeout), FailedTimeout), (nameof(NominationTimeout), NominationTimeout),
            (nameof(ConsentAlignment), ConsentAlignment), (nameof(KeepaliveAlignment), KeepaliveAlignment),
            (nameof(ReceiveSilenceTimeout), ReceiveSilenceTimeout),
        })
            if (value < TimeSpan.Zero) throw new ArgumentOutOfRangeException(name, "A timer is positive, or 0 to disable it.");
        if (RelayReallocationAttempts < 0) throw new ArgumentOutOfRangeException(nameof(RelayReallocationAttempts), "0 turns re-allocation off.");
        if (RelayFailoverAfter < 0) throw new ArgumentOutOfRangeException(nameof(RelayFailoverAfter), "0 turns fail-over off.");
        if (RelayReallocationDelay < TimeSpan.Zero || RelayReallocationMaxDelay < RelayReallocationDelay)
            throw new ArgumentOutOfRangeException(nameof(RelayReallocationDelay), "The delays are positive and the maximum is at least the first.");
        if (ReceiveSilencePackets < 1) throw new ArgumentOutOfRangeException(nameof(ReceiveSilencePackets), "At least one datagram per window.");
        ArgumentNullException.ThrowIfNull(Limits);
        Limits.Validate();
        ArgumentNullException.ThrowIfNull(CheckRetransmission);
        CheckRetransmission.Validate();
        ArgumentNullException.ThrowIfNull(TurnServers);
        foreach (var server in TurnServers)
        {
            ArgumentNullException.ThrowIfNull(server, nameof(TurnServers));
            if (server.Secure && server.Transport != TurnTransport.Tcp)
                throw new NotSupportedException($"{server}: turns: over UDP (DTLS to the TURN server) is not supported; use turns: over TCP (TLS).");
            if (server.TryGetEndPoint() is null)
                throw new ArgumentException($"{server}: the TURN server host must be an IP address literal (resolve the name first).", nameof(TurnServers));
        }
    }
}

/// <summary>Which local candidates an agent uses (W3C WebRTC <c>RTCIceTransportPolicy</c>).</summary>
public enum IceTransportPolicy
{
    /// <summary>Host, server-reflexive, peer-reflexive and relayed candidates.</summary>
    All,
    /// <summary>Relayed candidates only: every check and every datagram goes through a TURN server.</summary>
    Relay,
}
