using Transport.Dtls;
using Transport.Ice;

namespace Transport.Streaming.WebRtc;

/// <summary>
/// A peer connection's liveness at one moment, read on the connection's own logical thread (so every field is
/// consistent with the others). Times are the driver's monotonic time; ages are null where unknown.
/// </summary>
/// <param name="State">The aggregated state.</param>
/// <param name="Reason">Why the connection is in <paramref name="State"/>.</param>
/// <param name="IceState">The ICE agent's own state.</param>
/// <param name="SelectedCandidatePair">"local -> remote" of the pair data goes on: the selected pair (RFC 8445 section
/// 8.1.1), or before nomination the valid pair in use (section 12.1; <paramref name="PairNominated"/> false); null before either.</param>
/// <param name="SinceLastReceived">Time since anything arrived on that pair.</param>
/// <param name="ConsentAge">Time since consent on that pair was last refreshed by an authenticated STUN response (RFC 7675).</param>
/// <param name="SctpRetransmissionTimeout">The SCTP RTO (RFC 9260 section 6.3), once the association exists.</param>
/// <param name="SctpOutboundBuffered">Bytes queued or in flight that the peer has not acknowledged.</param>
/// <param name="SendIdle">True when SCTP has nothing queued, in flight or unacknowledged (everything sent was received).</param>
/// <param name="SctpPacketsSent">SCTP packets sent.</param>
/// <param name="SctpPacketsReceived">SCTP packets received and accepted.</param>
/// <param name="SctpRetransmissions">DATA chunks sent again: a loss signal.</param>
/// <param name="DroppedDatagrams">Datagrams that fit no layer.</param>
/// <param name="DroppedMedia">SRTP/SRTCP packets that failed authentication or replay checks.</param>
/// <param name="IceRoundTripTime">The selected pair's last round-trip time from ICE's checks and consent checks
/// (<see cref="IceAgent.RoundTripTime"/>; renewed by every consent check), or null before one was answered.</param>
/// <param name="SctpRoundTripTime">SCTP's smoothed round-trip time (SRTT, RFC 9260 section 6.3.1) from acknowledged
/// DATA, or null before any (it includes the peer's SACK delay when the peer held its acknowledgement back).</param>
/// <param name="MediaLossFraction">From the peer's transport-cc feedback on our media (<see cref="Transport.Rtp.Streams.TransportCcSender"/>):
/// the fraction of our packets reported in the last second that were lost, or null without transport-cc.</param>
/// <param name="MediaDeliveryRate">Bits per second of our media the peer received over the last second of its
/// feedback, or null without transport-cc feedback.</param>
/// <param name="SinceMediaFeedback">Time since the peer's last transport-cc feedback on our media: it stops when our
/// media stops arriving, long before consent expires.</param>
/// <param name="PairNominated">True when <paramref name="SelectedCandidatePair"/> is a nominated (selected) pair, false
/// when it is the valid pair data goes on before nomination.</param>
/// <param name="SctpDataChunksSent">DATA chunks sent, retransmissions included (<see cref="Transport.Sctp.SctpCounters.DataChunksSent"/>).</param>
/// <param name="DtlsVersion">The negotiated DTLS version (1.2 or 1.3), once the ServerHello was exchanged.</param>
/// <param name="DtlsCipherSuite">The negotiated DTLS cipher suite.</param>
/// <param name="DtlsGroup">The negotiated key exchange group (X25519MLKEM768, x25519, secp256r1, ...).</param>
/// <param name="TargetBitrate">The send-side bandwidth estimate: what our media should be sent at, in bits per second
/// (<see cref="PeerConnectionCore.TargetBitrate"/>), or null without transport-cc.</param>
/// <param name="NextTimer">The soonest deadline's layer and that layer's timer (for example "Sctp.T3Rtx"), or null when none runs.</param>
/// <param name="NextTimerIn">Time until <paramref name="NextTimer"/> (zero when due).</param>
/// <param name="LastTimerFired">The layer and timer behind the last timer run (<see cref="PeerConnectionCore.LastTimerFired"/>), or null before any.</param>
public sealed record PeerConnectionHealth(
    ConnectionState State,
    ConnectionReason? Reason,
    IceConnectionState IceState,
    string? SelectedCandidatePair,
    TimeSpan? SinceLastReceived,
    TimeSpan? ConsentAge,
    TimeSpan? SctpRetransmissionTimeout,
    long SctpOutboundBuffered,
    bool SendIdle,
    long SctpPacketsSent,
    long SctpPacketsReceived,
    long SctpRetransmissions,
    long DroppedDatagrams,
    long DroppedMedia,
    TimeSpan? IceRoundTripTime = null,
    TimeSpan? SctpRoundTripTime = null,
    double? MediaLossFraction = null,
    double? MediaDeliveryRate = null,
    TimeSpan? SinceMediaFeedback = null,
    bool PairNominated = false,
    long SctpDataChunksSent = 0,
    DtlsVersion? DtlsVersion = null,
    DtlsCipherSuite? DtlsCipherSuite = null,
    DtlsNamedGroup? DtlsGroup = null,
    long? TargetBitrate = null,
    PeerConnectionDeadline? NextTimer = null,
    TimeSpan? NextTimerIn = null,
    PeerConnectionDeadline? LastTimerFired = null)
{
    /// <summary>
    /// The fraction of SCTP DATA transmissions that were retransmissions, in [0, 1]; null before any DATA was sent.
    /// Chunks over chunks: several retransmitted chunks can share one packet, so chunks over packets can exceed 1.
    /// </summary>
    public double? SctpRetransmissionFraction =>
        SctpDataChunksSent > 0 ? Math.Clamp((double)SctpRetransmissions / SctpDataChunksSent, 0, 1) : null;
}

public sealed partial class PeerConnection
{
    /// <summary>
    /// The connection's health now (state, selected pair, consent age, last packet age, SCTP send state), read on
    /// the connection's own thread. After dispose it reports the final state without touching the layers.
    /// </summary>
    public Task<PeerConnectionHealth> GetHealthAsync(CancellationToken cancellationToken = default)
    {
        if (Volatile.Read(ref _disposed) != 0)
            return Task.FromResult(new PeerConnectionHealth(_state, Reason, IceConnectionState.Closed, null, null, null, null, 0, true, 0, 0, 0, 0, 0));
        return _handle.InvokeAsync(now => _core.GetHealth(now), cancellationToken);
    }

    /// <summary>Runs <paramref name="read"/> on the connection's thread with its core (diagnostics for tests and benches).</summary>
    internal Task<T> InspectAsync<T>(Func<PeerConnectionCore, TimeSpan, T> read, CancellationToken cancellationToken = default) =>
        _handle.InvokeAsync(now => read(_core, now), cancellationToken);
}

public sealed partial class PeerConnectionCore
{
    /// <summary>
    /// The connection's health at <paramref name="now"/> (see <see cref="PeerConnection.GetHealthAsync"/>); call it on the connection's thread.
    /// </summary>
    public PeerConnectionHealth GetHealth(TimeSpan now)
    {
        var ice = Ice;
        var sctp = Sctp;
        // The pair data goes on: the selected one, or before nomination the valid pair in use (RFC 8445 section 12.1).
        string? pair = ice.ActiveLocal is { } l && ice.ActiveRemote is { } r ? $"{l.Address} -> {r.Address}" : null;
        TimeSpan? consentAge = ice.LastConsentAt is { } consent ? Max(now - consent) : null;
        var next = PollTimeout(out var nextTimer);
        return new PeerConnectionHealth(
            State, Reason, ice.State, pair,
            ice.LastReceivedAt is { } last ? Max(now - last) : null,
            consentAge,
            sctp?.Rto,
            sctp?.OutboundBuffered ?? 0,
            sctp is null || sctp.IsIdle,
            sctp?.Counters.PacketsSent ?? 0,
            sctp?.Counters.PacketsReceived ?? 0,
            sctp?.Counters.Retransmissions ?? 0,
            DroppedDatagrams,
            DroppedMedia,
            ice.RoundTripTime,
            sctp?.SmoothedRoundTripTime,
            TransportCcSender is { FeedbackReceived: > 0 } cc ? cc.LossFraction : null,
            TransportCcSender?.DeliveryRate,
            TransportCcSender?.LastFeedbackAt is { } fb ? Max(now - fb) : null,
            ice.SelectedLocal is not null,
            sctp?.Counters.DataChunksSent ?? 0,
            Dtls?.Version,
            Dtls?.CipherSuite,
            Dtls?.Group,
            TargetBitrate,
            next is null ? null : nextTimer,
            next is { } due ? Max(due - now) : null,
            LastTimerFired.Layer == PeerConnectionLayer.None ? null : LastTimerFired);
    }

    private static TimeSpan Max(TimeSpan t) => t < TimeSpan.Zero ? TimeSpan.Zero : t;
}
