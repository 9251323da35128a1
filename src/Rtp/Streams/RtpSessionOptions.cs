namespace Transport.Rtp.Streams;

/// <summary>Options of an <see cref="RtpSession"/>.</summary>
public sealed class RtpSessionOptions
{
    /// <summary>SSRC used for receiver reports when nothing is sent.</summary>
    public uint LocalSsrc { get; init; } = 1;

    /// <summary>CNAME sent in SDES with every report (RFC 3550 section 6.5.1).</summary>
    public string Cname { get; init; } = "transport";

    /// <summary>NTP time (64-bit) at monotonic time zero; the caller supplies it once so the core reads no clock.</summary>
    public ulong NtpOrigin { get; init; }

    /// <summary>Mean interval between reports. Default 1 s; each interval is randomized to [0.5, 1.5] of it (RFC 3550 6.3.1).</summary>
    public TimeSpan ReportInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Whether missing packets are NACKed (RFC 4585). Default true.</summary>
    public bool EnableNack { get; init; } = true;

    /// <summary>Sent packets kept per send stream to answer NACKs.</summary>
    public int RetransmissionCacheSize { get; init; } = 512;

    /// <summary>Largest RTCP packet built. Default 1200 bytes.</summary>
    public int MaxRtcpSize { get; init; } = 1200;

    /// <summary>Clock rate assumed for receive streams that were not declared. Default 90 kHz (video).</summary>
    public int DefaultClockRate { get; init; } = 90_000;

    /// <summary>Largest number of receive streams tracked (others are ignored). Default 64.</summary>
    public int MaxReceiveStreams { get; init; } = 64;

    /// <summary>Seed of the report interval randomization (deterministic tests).</summary>
    public int RandomSeed { get; init; } = 1;
}
