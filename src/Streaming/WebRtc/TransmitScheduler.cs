using System.Net;
using System.Runtime.CompilerServices;
using Transport.Streaming.Io;

namespace Transport.Streaming.WebRtc;

/// <summary>The layers' outputs that share the one 5-tuple, in the order <see cref="TransmitScheduler"/> takes them.</summary>
internal enum TransmitSource
{
    /// <summary>ICE's own packets: checks and their responses, consent, TURN requests; each with its own path.</summary>
    Ice,
    /// <summary>SPED: DTLS datagrams a check carried that go the normal path too once ICE can send.</summary>
    SpedDirect,
    /// <summary>Media packets the pacer let go (RTP, RTX, padding probes, the BYE of a close), protected as they leave.</summary>
    QueuedMedia,
    /// <summary>DTLS records: handshake flights, alerts, close_notify.</summary>
    Dtls,
    /// <summary>SCTP packets, sealed into DTLS records as they leave.</summary>
    Sctp,
    /// <summary>RTCP (reports, feedback, NACK, PLI) and answers to NACKs.</summary>
    Media,
}

/// <summary>The outputs a <see cref="TransmitScheduler"/> takes from: the peer connection's layers.</summary>
internal interface ITransmitSources
{
    /// <summary>ICE's next packet, with its path (ICE's packets go where ICE says, not on the selected pair).</summary>
    bool TryPollIce(Span<byte> destination, out int written, out IPEndPoint? local, out IPEndPoint remote, out TransmitKind kind);

    /// <summary>The next datagram of one of the other sources, for the pair ICE sends on; false when it has none now.</summary>
    bool TryPoll(TransmitSource source, Span<byte> destination, out int written);

    /// <summary>Puts a datagram on the pair ICE sends on (wrapped for a TURN server when relayed); false when it cannot go.</summary>
    bool Route(Span<byte> destination, ref int written, out IPEndPoint? local, out IPEndPoint remote, out TransmitKind kind);

    /// <summary>Every source is empty: the end of a drain.</summary>
    void OnDrained();
}

/// <summary>
/// Which layer's output goes next on the peer connection's 5-tuple (DESIGN.md: drain ICE, then DTLS, then SCTP and RTP).
/// A strict priority, in the order of <see cref="TransmitSource"/>: ICE's own packets first (a check's response is
/// timed by the peer: RFC 8445 section 14 counts its round trip, and consent expires without them, RFC 7675), then the
/// DTLS datagrams SPED carried, media the pacer let go (already paced: holding it would add jitter), DTLS records
/// (while ICE cannot send yet, DTLS keeps its datagrams: a server flight answering an early ClientHello waits for our
/// first valid pair instead of being lost), SCTP (sealed straight into the datagram; what ICE cannot send stays in
/// SCTP, whose timers run from when a packet leaves), and last RTCP and retransmissions. Each call starts from the top,
/// so an output that appears between two calls goes before the lower ones still waiting; a drain (calls until one
/// returns false) empties every source, so none is left behind: the budget is the layers' own (the pacer's share for
/// data channels and media, SCTP's congestion window), not the scheduler's. Its state: what each source sent, and the
/// datagrams that could not go (ICE failed or closed) or that a caller without the TURN stream path could not take.
/// </summary>
internal sealed class TransmitScheduler
{
    // After ICE, which has a path of its own.
    private static readonly TransmitSource[] Order =
        [TransmitSource.SpedDirect, TransmitSource.QueuedMedia, TransmitSource.Dtls, TransmitSource.Sctp, TransmitSource.Media];

    private SourceCounts _sent;

    /// <summary>Datagrams a source gave that could not go (ICE failed or closed: the connection is over anyway).</summary>
    public long Unroutable { get; private set; }

    /// <summary>Transmits for a TURN server's TCP or TLS connection that the UDP / ICE-TCP form could not take.</summary>
    public long SkippedTurnStream { get; private set; }

    /// <summary>Every datagram counted here as not sent.</summary>
    public long Dropped => Unroutable + SkippedTurnStream;

    /// <summary>The source of the last transmit; null before any.</summary>
    public TransmitSource? Last { get; private set; }

    /// <summary>Transmits taken from <paramref name="source"/>.</summary>
    public long SentFrom(TransmitSource source) => _sent[(int)source];

    /// <summary>The next transmit in priority order; false when every source is empty (then <see cref="ITransmitSources.OnDrained"/> was called).</summary>
    public bool TryPoll(ITransmitSources sources, Span<byte> destination, out int written, out IPEndPoint? local, out IPEndPoint remote, out TransmitKind kind)
    {
        if (sources.TryPollIce(destination, out written, out local, out remote, out kind)) return Sent(TransmitSource.Ice);
        foreach (var source in Order)
        {
            while (sources.TryPoll(source, destination, out written))
            {
                if (sources.Route(destination, ref written, out local, out remote, out kind)) return Sent(source);
                Unroutable++;
            }
        }
        sources.OnDrained();
        written = 0;
        local = null;
        remote = null!;
        kind = TransmitKind.Udp;
        return false;
    }

    /// <summary>
    /// Like <see cref="TryPoll(ITransmitSources, Span{byte}, out int, out IPEndPoint?, out IPEndPoint, out TransmitKind)"/> for a
    /// caller with UDP and ICE-TCP only (<paramref name="iceTcp"/>): transmits to a TURN server over TCP or TLS are skipped and counted.
    /// </summary>
    public bool TryPoll(ITransmitSources sources, Span<byte> destination, out int written, out IPEndPoint? local, out IPEndPoint remote, out bool iceTcp)
    {
        while (TryPoll(sources, destination, out written, out local, out remote, out TransmitKind kind))
        {
            if (kind == TransmitKind.TurnStream) { SkippedTurnStream++; continue; }
            iceTcp = kind == TransmitKind.IceTcp;
            return true;
        }
        iceTcp = false;
        return false;
    }

    private bool Sent(TransmitSource source)
    {
        _sent[(int)source]++;
        Last = source;
        return true;
    }

    // One counter per TransmitSource, inside the object.
    [InlineArray(6)]
    private struct SourceCounts
    {
        private long _element;
    }
}
