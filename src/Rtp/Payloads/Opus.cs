namespace Transport.Rtp.Payloads;

/// <summary>
/// Opus over RTP (RFC 7587): one Opus packet per RTP payload, no payload header, 48 kHz clock. Every RTP packet is
/// a whole frame, so packetizing is a copy and the marker bit only flags the first packet after DTX (section 4.2).
/// </summary>
public sealed class OpusDepacketizer : IRtpDepacketizer
{
    /// <summary>RTP clock rate of Opus regardless of the coded rate (RFC 7587 section 4.1).</summary>
    public const int ClockRate = 48_000;

    /// <inheritdoc />
    public bool IsFrameStart(ReadOnlySpan<byte> payload) => true;

    /// <inheritdoc />
    public bool IsFrameEnd(ReadOnlySpan<byte> payload, bool marker) => true;

    /// <inheritdoc />
    public bool IsKeyFrame(ReadOnlySpan<byte> firstPayload) => true;

    /// <inheritdoc />
    public int MaxOutputLength(int payloadLength) => payloadLength;

    /// <inheritdoc />
    public int Depacketize(ReadOnlySpan<byte> payload, Span<byte> destination)
    {
        if (payload.IsEmpty || payload.Length > destination.Length)
        {
            return -1;
        }

        payload.CopyTo(destination);
        return payload.Length;
    }
}

/// <summary>Opus packetizer: the Opus packet is the payload (RFC 7587 section 4.2).</summary>
public static class OpusPacketizer
{
    /// <summary>Copies <paramref name="opusPacket"/> into <paramref name="destination"/>; returns the length or -1.</summary>
    public static int Write(ReadOnlySpan<byte> opusPacket, Span<byte> destination)
    {
        if (opusPacket.Length > destination.Length)
        {
            return -1;
        }

        opusPacket.CopyTo(destination);
        return opusPacket.Length;
    }
}
