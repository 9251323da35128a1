using System.Net;

namespace Transport.Streaming.WebRtc;

/// <summary>The steps a connection goes through on its way up, each reported once (<see cref="ConnectionMilestoneReached"/>).</summary>
public enum ConnectionMilestone
{
    /// <summary>Our first ICE connectivity check (a STUN Binding request, RFC 8445 section 7.2.4) went out.</summary>
    FirstCheckSent,
    /// <summary>The peer's first connectivity check that ICE accepted (authenticated, RFC 8445 section 7.3) arrived.</summary>
    FirstCheckReceived,
    /// <summary>The first candidate pair became valid (RFC 8445 section 7.2.5.3.2): data may flow on it.</summary>
    PairValid,
    /// <summary>The first pair was selected (nominated, RFC 8445 section 8.1.1).</summary>
    PairSelected,
    /// <summary>The DTLS handshake began, in the role a=setup gave us (RFC 8842 section 5).</summary>
    DtlsStarted,
    /// <summary>The DTLS handshake finished (with the suite and, for media, the SRTP profile).</summary>
    DtlsConnected,
    /// <summary>The SCTP association is up (RFC 9260 section 5.1); data channels can open.</summary>
    SctpEstablished,
}

/// <summary>
/// A connection reached <paramref name="Milestone"/> at <paramref name="At"/>, <paramref name="SinceOffer"/> after the
/// offer was made or received (our first CreateOffer or CreateAnswer). <paramref name="Detail"/> names the pair, role,
/// suite. Published and logged at Information by <see cref="PeerConnection"/>: a connection that stalls shows where.
/// </summary>
public sealed record ConnectionMilestoneReached(TimeSpan At, ConnectionMilestone Milestone, TimeSpan SinceOffer, string Detail) : PeerConnectionEvent(At);

/// <summary>Which milestones a connection reached, and when its offer was exchanged: each milestone is reported once.</summary>
internal sealed class ConnectionProgress
{
    private int _reached;   // one bit per ConnectionMilestone

    /// <summary>When the first offer was made or received; null before.</summary>
    public TimeSpan? OfferAt { get; private set; }

    /// <summary>The first offer/answer exchange began (later ones, renegotiations and restarts, do not move it).</summary>
    public void OfferExchanged(TimeSpan now) => OfferAt ??= now;

    /// <summary>How long after the offer <paramref name="now"/> is (zero before it).</summary>
    public TimeSpan SinceOffer(TimeSpan now) => OfferAt is { } at && now > at ? now - at : TimeSpan.Zero;

    /// <summary>Whether <paramref name="milestone"/> was reached already.</summary>
    public bool Has(ConnectionMilestone milestone) => (_reached & (1 << (int)milestone)) != 0;

    /// <summary>The event for <paramref name="milestone"/> the first time it is reached; null after.</summary>
    public ConnectionMilestoneReached? Reach(ConnectionMilestone milestone, TimeSpan now, string detail)
    {
        if (Has(milestone)) return null;
        _reached |= 1 << (int)milestone;
        return new ConnectionMilestoneReached(now, milestone, SinceOffer(now), detail);
    }

    /// <summary>
    /// Whether a STUN datagram is a Binding request: message type 0x0001 in the first two bytes of the 20-byte header
    /// (RFC 8489 section 5), which is what an ICE connectivity check is.
    /// </summary>
    public static bool IsBindingRequest(ReadOnlySpan<byte> datagram) => datagram.Length >= 20 && datagram[0] == 0 && datagram[1] == 1;

    /// <summary>Two addresses for the log, in the direction of the datagram: <c>from -> to</c>.</summary>
    public static string Pair(EndPoint? from, EndPoint? to) => $"{from} -> {to}";
}
