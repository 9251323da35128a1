using Transport.Rtp.Rtcp;

namespace Transport.Rtp.Streams;

/// <summary>Something the application or the composition must know; polled with <see cref="RtpSession.TryPollEvent"/>.</summary>
public abstract record RtpSessionEvent;

/// <summary>The peer asked for a key frame on <paramref name="MediaSsrc"/> (PLI, RFC 4585 6.3.1, or FIR, RFC 5104 4.3.1).</summary>
public sealed record KeyFrameRequested(uint MediaSsrc, bool FullIntraRequest) : RtpSessionEvent;

/// <summary>The peer sent RTCP BYE for <paramref name="Ssrc"/> (RFC 3550 section 6.6): the stream ended now.</summary>
public sealed record ByeReceived(uint Ssrc, string? Reason) : RtpSessionEvent;

/// <summary>A round-trip time computed from a report block's LSR and DLSR (RFC 3550 section 6.4.1).</summary>
public sealed record RoundTripTimeMeasured(uint ReporterSsrc, uint MediaSsrc, TimeSpan RoundTripTime) : RtpSessionEvent;

/// <summary>The peer reported on one of our streams.</summary>
public sealed record ReceptionReportReceived(uint ReporterSsrc, ReportBlock Block) : RtpSessionEvent;

/// <summary>A sender report arrived: the NTP/RTP timestamp mapping of <paramref name="Ssrc"/> (for synchronization).</summary>
public sealed record SenderReportReceived(uint Ssrc, SenderInfo Info) : RtpSessionEvent;

/// <summary>The peer NACKed packets of <paramref name="MediaSsrc"/>; <paramref name="Retransmitting"/> are still cached.</summary>
public sealed record NackReceived(uint MediaSsrc, int Requested, int Retransmitting) : RtpSessionEvent;

/// <summary>The peer's receiver estimated maximum bitrate (REMB).</summary>
public sealed record RembReceived(ulong BitsPerSecond) : RtpSessionEvent;

/// <summary>What <see cref="RtpSession.TryPollTransmit"/> produced.</summary>
public enum RtpTransmitKind
{
    /// <summary>A compound (or reduced-size) RTCP packet, to be SRTCP-protected.</summary>
    Rtcp,

    /// <summary>An RTP retransmission (plain or RTX), to be SRTP-protected.</summary>
    RtpRetransmission,
}
