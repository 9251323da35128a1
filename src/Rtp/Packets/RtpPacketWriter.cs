using System.Buffers.Binary;

namespace Transport.Rtp;

/// <summary>The fixed RTP header fields a sender chooses (RFC 3550 section 5.1).</summary>
public record struct RtpHeader(byte PayloadType, ushort SequenceNumber, uint Timestamp, uint Ssrc, bool Marker = false);

/// <summary>Writes RTP packets into caller-provided spans.</summary>
public static class RtpPacketWriter
{
    /// <summary>
    /// Writes header, CSRCs, an optional extension block (as produced by <see cref="RtpHeaderExtensionWriter"/>),
    /// payload and optional padding (RFC 3550 section 5.1, P bit). Returns the packet length, or -1 when
    /// <paramref name="destination"/> is too small.
    /// </summary>
    public static int Write(in RtpHeader header, ReadOnlySpan<uint> csrcs, ReadOnlySpan<byte> extensionBlock, ReadOnlySpan<byte> payload,
        Span<byte> destination, int paddingLength = 0)
    {
        if (csrcs.Length > 15 || paddingLength is < 0 or > 255 || header.PayloadType > 127)
        {
            throw new ArgumentOutOfRangeException(nameof(csrcs), "At most 15 CSRCs, 0-255 padding octets, payload type 0-127.");
        }

        if ((extensionBlock.Length & 3) != 0)
        {
            throw new ArgumentException("An extension block is a multiple of 4 bytes.", nameof(extensionBlock));
        }

        int length = RtpPacket.FixedHeaderLength + 4 * csrcs.Length + extensionBlock.Length + payload.Length + paddingLength;
        if (length > destination.Length)
        {
            return -1;
        }

        destination[0] = (byte)(0x80 | (paddingLength > 0 ? 0x20 : 0) | (extensionBlock.IsEmpty ? 0 : 0x10) | csrcs.Length);
        destination[1] = (byte)((header.Marker ? 0x80 : 0) | header.PayloadType);
        BinaryPrimitives.WriteUInt16BigEndian(destination.Slice(2), header.SequenceNumber);
        BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(4), header.Timestamp);
        BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(8), header.Ssrc);
        int offset = RtpPacket.FixedHeaderLength;
        foreach (uint csrc in csrcs)
        {
            BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(offset), csrc);
            offset += 4;
        }

        extensionBlock.CopyTo(destination.Slice(offset));
        offset += extensionBlock.Length;
        payload.CopyTo(destination.Slice(offset));
        offset += payload.Length;
        if (paddingLength > 0)
        {
            destination.Slice(offset, paddingLength - 1).Clear();
            destination[offset + paddingLength - 1] = (byte)paddingLength;
        }

        return length;
    }

    /// <summary>Writes a packet without CSRCs, extension or padding.</summary>
    public static int Write(in RtpHeader header, ReadOnlySpan<byte> payload, Span<byte> destination) =>
        Write(header, ReadOnlySpan<uint>.Empty, ReadOnlySpan<byte>.Empty, payload, destination);
}
