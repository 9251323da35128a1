namespace Transport.Streaming.Io;

/// <summary>What a datagram on a WebRTC 5-tuple carries, told by its first byte.</summary>
public enum DatagramKind
{
    /// <summary>Not one of the ranges below: dropped and counted.</summary>
    Unknown,
    /// <summary>STUN (first byte 0-3).</summary>
    Stun,
    /// <summary>ZRTP (16-19); not used by WebRTC, dropped.</summary>
    Zrtp,
    /// <summary>DTLS records (20-63).</summary>
    Dtls,
    /// <summary>TURN ChannelData (64-79).</summary>
    TurnChannel,
    /// <summary>RTP or RTCP (128-191).</summary>
    Rtp,
}

/// <summary>
/// RFC 7983 section 7 (as updated by RFC 9443): demultiplexing STUN, DTLS, TURN channels and RTP/RTCP
/// on one port by the value of the first byte.
/// </summary>
public static class DatagramClassifier
{
    /// <summary>Classifies a datagram; an empty one is <see cref="DatagramKind.Unknown"/>.</summary>
    public static DatagramKind Classify(ReadOnlySpan<byte> datagram) =>
        datagram.IsEmpty ? DatagramKind.Unknown : Classify(datagram[0]);

    /// <summary>Classifies by the first byte.</summary>
    public static DatagramKind Classify(byte first) => first switch
    {
        <= 3 => DatagramKind.Stun,
        >= 16 and <= 19 => DatagramKind.Zrtp,
        >= 20 and <= 63 => DatagramKind.Dtls,
        >= 64 and <= 79 => DatagramKind.TurnChannel,
        >= 128 and <= 191 => DatagramKind.Rtp,
        _ => DatagramKind.Unknown,
    };
}
