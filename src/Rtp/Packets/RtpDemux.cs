namespace Transport.Rtp;

/// <summary>Telling RTP from RTCP on a multiplexed port (RFC 5761 section 4) and RTP/RTCP from other traffic (RFC 7983).</summary>
public static class RtpDemux
{
    /// <summary>True when the first byte is in 128-191, the RTP/RTCP range of RFC 7983 section 7.</summary>
    public static bool IsRtpOrRtcp(ReadOnlySpan<byte> datagram) => datagram.Length >= 2 && datagram[0] is >= 128 and <= 191;

    /// <summary>
    /// True for RTCP: the second octet (RTCP packet type, or M bit and RTP payload type) is 192-223, which RTP
    /// payload types 64-95 would produce with the marker set; RFC 5761 section 4 keeps those free for this reason.
    /// </summary>
    public static bool IsRtcp(ReadOnlySpan<byte> datagram) => IsRtpOrRtcp(datagram) && datagram[1] is >= 192 and <= 223;
}
