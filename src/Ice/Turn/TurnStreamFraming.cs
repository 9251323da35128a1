using System.Buffers;
using System.Buffers.Binary;

namespace Transport.Ice.Turn;

/// <summary>What <see cref="TurnStreamFraming"/> found at the start of the buffered bytes.</summary>
public enum TurnFrameStatus
{
    /// <summary>A whole frame is buffered.</summary>
    Complete,
    /// <summary>More bytes are needed.</summary>
    NeedMoreData,
    /// <summary>The stream does not start with a STUN message or a ChannelData message: the connection is unusable.</summary>
    Invalid,
}

/// <summary>
/// Sans-IO framing of a TURN connection over TCP (RFC 8656 section 12.5, RFC 8489 section 6.2.2): the stream is a
/// sequence of STUN messages and ChannelData messages, told apart by the first two bits (00 STUN, 01
/// ChannelData). A STUN message is 20 bytes plus its length field (always a multiple of four); a ChannelData
/// message is 4 bytes plus its length field rounded up to four, because over a stream the padding is mandatory.
/// The I/O code (a socket read with System.IO.Pipelines) lives with the driver; this type only looks at bytes.
/// </summary>
public static class TurnStreamFraming
{
    /// <summary>The bytes needed to know the length of a frame.</summary>
    public const int PrefixSize = 4;

    /// <summary>
    /// Looks at the first four bytes of a frame. On <see cref="TurnFrameStatus.Complete"/>,
    /// <paramref name="frameLength"/> is the number of stream bytes the frame occupies, padding included; the
    /// whole frame can be handed to the TURN client, which accepts the padding of ChannelData.
    /// </summary>
    public static TurnFrameStatus GetFrameLength(ReadOnlySpan<byte> prefix, out int frameLength)
    {
        frameLength = 0;
        if (prefix.Length < PrefixSize) return TurnFrameStatus.NeedMoreData;
        int length = BinaryPrimitives.ReadUInt16BigEndian(prefix.Slice(2));
        switch (prefix[0] >> 6)
        {
            case 0:
                if ((length & 3) != 0) return TurnFrameStatus.Invalid;
                frameLength = 20 + length;
                return TurnFrameStatus.Complete;
            case 1:
                if (!ChannelData.IsValidChannel(BinaryPrimitives.ReadUInt16BigEndian(prefix))) return TurnFrameStatus.Invalid;
                frameLength = ChannelData.HeaderSize + ((length + 3) & ~3);
                return TurnFrameStatus.Complete;
            default:
                return TurnFrameStatus.Invalid;
        }
    }

    /// <summary>
    /// Takes one whole frame off the front of <paramref name="buffer"/> (as a pipe reader hands it over). On
    /// <see cref="TurnFrameStatus.Complete"/>, <paramref name="frame"/> holds the frame and
    /// <paramref name="buffer"/> starts after it; otherwise both are left as they were.
    /// </summary>
    public static TurnFrameStatus TryReadFrame(ref ReadOnlySequence<byte> buffer, out ReadOnlySequence<byte> frame)
    {
        frame = default;
        if (buffer.Length < PrefixSize) return TurnFrameStatus.NeedMoreData;
        Span<byte> prefix = stackalloc byte[PrefixSize];
        buffer.Slice(0, PrefixSize).CopyTo(prefix);
        var status = GetFrameLength(prefix, out var frameLength);
        if (status != TurnFrameStatus.Complete) return status;
        if (buffer.Length < frameLength) return TurnFrameStatus.NeedMoreData;
        frame = buffer.Slice(0, frameLength);
        buffer = buffer.Slice(frameLength);
        return TurnFrameStatus.Complete;
    }

    /// <summary>
    /// Takes one whole frame off the front of a contiguous buffer: returns its length in
    /// <paramref name="frameLength"/> when <see cref="TurnFrameStatus.Complete"/>.
    /// </summary>
    public static TurnFrameStatus TryReadFrame(ReadOnlySpan<byte> buffer, out int frameLength)
    {
        var status = GetFrameLength(buffer, out frameLength);
        if (status == TurnFrameStatus.Complete && buffer.Length < frameLength) { frameLength = 0; return TurnFrameStatus.NeedMoreData; }
        return status;
    }
}
