using Transport.Rtp.Rtcp;

namespace Transport.Rtp.Streams;

/// <summary>
/// Something the application or the composition must know; polled with <see cref="RtpSession.TryPollEvent"/>. A closed
/// hierarchy (the sealed records below): <see cref="Kind"/> names which one, <see cref="At"/> is the time of the call that
/// caused it. The session has no state of its own to change; a source's end is <see cref="ByeReceived"/> (docs/cores.md).
/// Media packets are no events: the composition hands them on as they arrive, without an allocation.
/// </summary>
public abstract record RtpSessionEvent
{
    private protected RtpSessionEvent() { }

    /// <summary>When it happened: the <c>now</c> of the call that caused it.</summary>
    public TimeSpan At { get; internal set; }

    /// <summary>Which event this is.</summary>
    public abstract RtpEventKind Kind { get; }
}

/// <summary>The kinds of <see cref="RtpSessionEvent"/>, one per sealed record.</summary>
public enum RtpEventKind
{
    /// <summary><see cref="Streams.KeyFrameRequested"/>.</summary>
    KeyFrameRequested,
    /// <summary><see cref="Streams.ByeReceived"/>.</summary>
    ByeReceived,
    /// <summary><see cref="Streams.RoundTripTimeMeasured"/>.</summary>
    RoundTripTimeMeasured,
    /// <summary><see cref="Streams.ReceptionReportReceived"/>.</summary>
    ReceptionReportReceived,
    /// <summary><see cref="Streams.SenderReportReceived"/>.</summary>
    SenderReportReceived,
    /// <summary><see cref="Streams.NackReceived"/>.</summary>
    NackReceived,
    /// <summary><see cref="Streams.RembReceived"/>.</summary>
    RembReceived,
}

/// <summary>Which deadline <see cref="RtpSession.PollTimeout(out RtpTimer)"/> returned.</summary>
public enum RtpTimer
{
    /// <summary>No deadline.</summary>
    None,
    /// <summary>Something waits to be sent now (a BYE, or retransmissions a NACK asked for): poll transmits.</summary>
    Transmit,
    /// <summary>The next RTCP report (RFC 3550 section 6.2, randomized interval).</summary>
    Report,
    /// <summary>A NACK (RFC 4585) for missing packets is due, or due again.</summary>
    Nack,
}

/// <summary>The peer asked for a key frame on <paramref name="MediaSsrc"/> (PLI, RFC 4585 6.3.1, or FIR, RFC 5104 4.3.1).</summary>
public sealed record KeyFrameRequested(uint MediaSsrc, bool FullIntraRequest) : RtpSessionEvent
{
    /// <inheritdoc/>
    public override RtpEventKind Kind => RtpEventKind.KeyFrameRequested;
}

/// <summary>The peer sent RTCP BYE for <paramref name="Ssrc"/> (RFC 3550 section 6.6): the stream ended now.</summary>
public sealed record ByeReceived(uint Ssrc, string? Reason) : RtpSessionEvent
{
    /// <inheritdoc/>
    public override RtpEventKind Kind => RtpEventKind.ByeReceived;
}

/// <summary>A round-trip time computed from a report block's LSR and DLSR (RFC 3550 section 6.4.1).</summary>
public sealed record RoundTripTimeMeasured(uint ReporterSsrc, uint MediaSsrc, TimeSpan RoundTripTime) : RtpSessionEvent
{
    /// <inheritdoc/>
    public override RtpEventKind Kind => RtpEventKind.RoundTripTimeMeasured;
}

/// <summary>The peer reported on one of our streams.</summary>
public sealed record ReceptionReportReceived(uint ReporterSsrc, ReportBlock Block) : RtpSessionEvent
{
    /// <inheritdoc/>
    public override RtpEventKind Kind => RtpEventKind.ReceptionReportReceived;
}

/// <summary>A sender report arrived: the NTP/RTP timestamp mapping of <paramref name="Ssrc"/> (for synchronization).</summary>
public sealed record SenderReportReceived(uint Ssrc, SenderInfo Info) : RtpSessionEvent
{
    /// <inheritdoc/>
    public override RtpEventKind Kind => RtpEventKind.SenderReportReceived;
}

/// <summary>The peer NACKed packets of <paramref name="MediaSsrc"/>; <paramref name="Retransmitting"/> are still cached.</summary>
public sealed record NackReceived(uint MediaSsrc, int Requested, int Retransmitting) : RtpSessionEvent
{
    /// <inheritdoc/>
    public override RtpEventKind Kind => RtpEventKind.NackReceived;
}

/// <summary>The peer's receiver estimated maximum bitrate (REMB).</summary>
public sealed record RembReceived(ulong BitsPerSecond) : RtpSessionEvent
{
    /// <inheritdoc/>
    public override RtpEventKind Kind => RtpEventKind.RembReceived;
}

/// <summary>What <see cref="RtpSession.TryPollTransmit"/> produced.</summary>
public enum RtpTransmitKind
{
    /// <summary>A compound (or reduced-size) RTCP packet, to be SRTCP-protected.</summary>
    Rtcp,

    /// <summary>An RTP retransmission (plain or RTX), to be SRTP-protected.</summary>
    RtpRetransmission,
}
