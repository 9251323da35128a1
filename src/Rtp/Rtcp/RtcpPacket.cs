using System.Buffers.Binary;

namespace Transport.Rtp.Rtcp;

//  RFC 3550 section 6.4 common header:
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |V=2|P|  RC/FMT |       PT      |             length            |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  length = size in 32-bit words minus one, header included.

/// <summary>RTCP packet types (RFC 3550 section 12.1, RFC 4585 section 6.1).</summary>
public static class RtcpPacketType
{
    /// <summary>Sender report.</summary>
    public const byte SenderReport = 200;

    /// <summary>Receiver report.</summary>
    public const byte ReceiverReport = 201;

    /// <summary>Source description.</summary>
    public const byte SourceDescription = 202;

    /// <summary>Goodbye.</summary>
    public const byte Bye = 203;

    /// <summary>Application-defined.</summary>
    public const byte App = 204;

    /// <summary>Transport layer feedback (RFC 4585): FMT 1 generic NACK, FMT 15 transport-wide CC.</summary>
    public const byte TransportFeedback = 205;

    /// <summary>Payload-specific feedback (RFC 4585): FMT 1 PLI, FMT 4 FIR (RFC 5104), FMT 15 application layer (REMB).</summary>
    public const byte PayloadFeedback = 206;
}

/// <summary>One packet of a compound RTCP packet; a view valid while the span is.</summary>
public readonly ref struct RtcpPacket
{
    /// <summary>Common header length.</summary>
    public const int HeaderLength = 4;

    internal RtcpPacket(ReadOnlySpan<byte> packet, int paddingLength)
    {
        Packet = packet;
        PaddingLength = paddingLength;
    }

    /// <summary>The whole packet, header and padding included.</summary>
    public ReadOnlySpan<byte> Packet { get; }

    /// <summary>Padding octets at the end (P bit, RFC 3550 section 6.4.1).</summary>
    public int PaddingLength { get; }

    /// <summary>The 5-bit count field: reception report count, source count, FMT or APP subtype.</summary>
    public int Count => Packet[0] & 0x1F;

    /// <summary>Packet type.</summary>
    public byte PacketType => Packet[1];

    /// <summary>The packet after its 4-byte header, padding excluded.</summary>
    public ReadOnlySpan<byte> Body => Packet.Slice(HeaderLength, Packet.Length - HeaderLength - PaddingLength);

    /// <summary>The first SSRC after the header (sender SSRC of SR, RR, feedback, APP; first source of BYE/SDES), or 0.</summary>
    public uint Ssrc => Body.Length >= 4 ? BinaryPrimitives.ReadUInt32BigEndian(Body) : 0;

    /// <summary>Writes a common header; <paramref name="totalLength"/> must be a multiple of 4.</summary>
    internal static void WriteHeader(Span<byte> destination, int count, byte packetType, int totalLength, bool padding = false)
    {
        destination[0] = (byte)(0x80 | (padding ? 0x20 : 0) | (count & 0x1F));
        destination[1] = packetType;
        BinaryPrimitives.WriteUInt16BigEndian(destination.Slice(2), (ushort)(totalLength / 4 - 1));
    }
}

/// <summary>
/// Enumerates the packets of a compound RTCP packet. Reduced-size RTCP (RFC 5506) is accepted: any packet type may
/// come first and a single packet is a valid input. Stops at the first malformed packet and sets <see cref="Malformed"/>.
/// </summary>
public ref struct RtcpCompoundEnumerator
{
    private readonly ReadOnlySpan<byte> _data;
    private int _offset;
    private RtcpPacket _current;

    /// <summary>Starts an enumeration over <paramref name="compound"/>.</summary>
    public RtcpCompoundEnumerator(ReadOnlySpan<byte> compound)
    {
        _data = compound;
        _offset = 0;
        _current = default;
        Malformed = false;
    }

    /// <summary>True when enumeration stopped on a malformed packet.</summary>
    public bool Malformed { get; private set; }

    /// <summary>The current packet.</summary>
    public readonly RtcpPacket Current => _current;

    /// <summary>Enables foreach.</summary>
    public readonly RtcpCompoundEnumerator GetEnumerator() => this;

    /// <summary>Advances to the next packet.</summary>
    public bool MoveNext()
    {
        if (_offset >= _data.Length || Malformed)
        {
            return false;
        }

        ReadOnlySpan<byte> rest = _data.Slice(_offset);
        if (rest.Length < RtcpPacket.HeaderLength || (rest[0] >> 6) != 2)
        {
            Malformed = true;
            return false;
        }

        int length = 4 * (BinaryPrimitives.ReadUInt16BigEndian(rest.Slice(2)) + 1);
        if (length > rest.Length)
        {
            Malformed = true;
            return false;
        }

        int padding = 0;
        if ((rest[0] & 0x20) != 0)
        {
            padding = rest[length - 1];
            if (padding == 0 || padding > length - RtcpPacket.HeaderLength)
            {
                Malformed = true;
                return false;
            }
        }

        _current = new RtcpPacket(rest.Slice(0, length), padding);
        _offset += length;
        return true;
    }
}

/// <summary>Helpers over compound RTCP packets.</summary>
public static class RtcpCompound
{
    /// <summary>Enumerates the packets of <paramref name="compound"/>.</summary>
    public static RtcpCompoundEnumerator Enumerate(ReadOnlySpan<byte> compound) => new(compound);

    /// <summary>
    /// True when the lengths of the packets add up exactly to the datagram and every header is version 2
    /// (RFC 3550 appendix A.2, relaxed by RFC 5506 so the first packet need not be SR or RR).
    /// </summary>
    public static bool IsValid(ReadOnlySpan<byte> compound, out int packetCount)
    {
        packetCount = 0;
        var enumerator = new RtcpCompoundEnumerator(compound);
        while (enumerator.MoveNext())
        {
            packetCount++;
        }

        return !enumerator.Malformed && packetCount > 0;
    }
}
