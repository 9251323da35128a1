namespace Transport.Rtp.Payloads;

/// <summary>Codec-specific knowledge the <see cref="RtpFrameAssembler"/> needs to rebuild frames from payloads.</summary>
public interface IRtpDepacketizer
{
    /// <summary>True when this payload starts a frame (as far as the payload format can tell).</summary>
    bool IsFrameStart(ReadOnlySpan<byte> payload);

    /// <summary>True when this packet ends a frame (the marker bit for video; every packet for audio).</summary>
    bool IsFrameEnd(ReadOnlySpan<byte> payload, bool marker);

    /// <summary>True when the frame whose first payload is <paramref name="firstPayload"/> is a key frame.</summary>
    bool IsKeyFrame(ReadOnlySpan<byte> firstPayload);

    /// <summary>Upper bound of the bytes <see cref="Depacketize"/> writes for a payload of this length.</summary>
    int MaxOutputLength(int payloadLength);

    /// <summary>Writes the codec bitstream carried by <paramref name="payload"/>; returns the length or -1 when malformed.</summary>
    int Depacketize(ReadOnlySpan<byte> payload, Span<byte> destination);
}
