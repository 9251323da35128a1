using System.Buffers.Binary;

namespace Transport.Rtp;

//  RFC 3550 section 5.1:
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |V=2|P|X|  CC   |M|     PT      |       sequence number         |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                           timestamp                           |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |           synchronization source (SSRC) identifier            |
//  +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
//  |            contributing source (CSRC) identifiers             |
//  |                             ....                              |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  | defined by profile            |           length              |  (X=1, section 5.3.1)
//  |                        header extension                       |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

/// <summary>A read-only view of an RTP packet (RFC 3550 section 5.1); valid while the span is.</summary>
public readonly ref struct RtpPacket
{
    /// <summary>Fixed header length.</summary>
    public const int FixedHeaderLength = 12;

    private readonly ReadOnlySpan<byte> _packet;

    private RtpPacket(ReadOnlySpan<byte> packet, int headerLength, int paddingLength)
    {
        _packet = packet;
        HeaderLength = headerLength;
        PaddingLength = paddingLength;
    }

    /// <summary>Parses the header; false when the packet is not a well-formed RTP version 2 packet.</summary>
    public static bool TryRead(ReadOnlySpan<byte> packet, out RtpPacket rtp)
    {
        rtp = default;
        if (packet.Length < FixedHeaderLength || (packet[0] >> 6) != 2)
        {
            return false;
        }

        int headerLength = FixedHeaderLength + 4 * (packet[0] & 0x0F);
        if ((packet[0] & 0x10) != 0)
        {
            if (packet.Length < headerLength + 4)
            {
                return false;
            }

            headerLength += 4 + 4 * BinaryPrimitives.ReadUInt16BigEndian(packet.Slice(headerLength + 2));
        }

        if (headerLength > packet.Length)
        {
            return false;
        }

        int padding = 0;
        if ((packet[0] & 0x20) != 0)
        {
            // RFC 3550 section 5.1: the last octet counts the padding octets, itself included.
            padding = packet[^1];
            if (padding == 0 || headerLength + padding > packet.Length)
            {
                return false;
            }
        }

        rtp = new RtpPacket(packet, headerLength, padding);
        return true;
    }

    /// <summary>Header length: fixed part, CSRCs and extension.</summary>
    public int HeaderLength { get; }

    /// <summary>Number of padding octets at the end (0 when P is clear).</summary>
    public int PaddingLength { get; }

    /// <summary>The P bit.</summary>
    public bool HasPadding => (_packet[0] & 0x20) != 0;

    /// <summary>The X bit.</summary>
    public bool HasExtension => (_packet[0] & 0x10) != 0;

    /// <summary>Number of CSRCs.</summary>
    public int CsrcCount => _packet[0] & 0x0F;

    /// <summary>The marker bit.</summary>
    public bool Marker => (_packet[1] & 0x80) != 0;

    /// <summary>Payload type (7 bits).</summary>
    public byte PayloadType => (byte)(_packet[1] & 0x7F);

    /// <summary>Sequence number.</summary>
    public ushort SequenceNumber => BinaryPrimitives.ReadUInt16BigEndian(_packet.Slice(2));

    /// <summary>RTP timestamp.</summary>
    public uint Timestamp => BinaryPrimitives.ReadUInt32BigEndian(_packet.Slice(4));

    /// <summary>Synchronization source.</summary>
    public uint Ssrc => BinaryPrimitives.ReadUInt32BigEndian(_packet.Slice(8));

    /// <summary>The CSRC at <paramref name="index"/>.</summary>
    public uint GetCsrc(int index) =>
        (uint)index < (uint)CsrcCount
            ? BinaryPrimitives.ReadUInt32BigEndian(_packet.Slice(FixedHeaderLength + 4 * index))
            : throw new ArgumentOutOfRangeException(nameof(index));

    /// <summary>The 16-bit "defined by profile" field of the extension (0xBEDE one-byte, 0x100x two-byte), or 0.</summary>
    public ushort ExtensionProfile => HasExtension ? BinaryPrimitives.ReadUInt16BigEndian(_packet.Slice(FixedHeaderLength + 4 * CsrcCount)) : (ushort)0;

    /// <summary>The extension body (after its 4-byte header), or empty.</summary>
    public ReadOnlySpan<byte> ExtensionData
    {
        get
        {
            if (!HasExtension)
            {
                return default;
            }

            int start = FixedHeaderLength + 4 * CsrcCount + 4;
            return _packet.Slice(start, HeaderLength - start);
        }
    }

    /// <summary>The payload, without header and padding.</summary>
    public ReadOnlySpan<byte> Payload => _packet.Slice(HeaderLength, _packet.Length - HeaderLength - PaddingLength);

    /// <summary>The whole packet.</summary>
    public ReadOnlySpan<byte> Span => _packet;

    /// <summary>Enumerates RFC 8285 header extension elements (one-byte or two-byte form).</summary>
    public RtpHeaderExtensionEnumerator GetExtensions() => new(ExtensionProfile, ExtensionData);

    /// <summary>Finds the RFC 8285 extension element with local identifier <paramref name="id"/>.</summary>
    public bool TryGetExtension(int id, out ReadOnlySpan<byte> value)
    {
        foreach (RtpHeaderExtension element in GetExtensions())
        {
            if (element.Id == id)
            {
                value = element.Value;
                return true;
            }
        }

        value = default;
        return false;
    }
}
