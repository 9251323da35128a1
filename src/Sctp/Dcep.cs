using System.Buffers.Binary;
using System.Text;

namespace Transport.Sctp;

/// <summary>The channel types of DCEP, RFC 8832 section 5.1.</summary>
public enum DataChannelType : byte
{
    /// <summary>Reliable, ordered.</summary>
    Reliable = 0x00,
    /// <summary>Reliable, unordered.</summary>
    ReliableUnordered = 0x80,
    /// <summary>Partially reliable by retransmissions, ordered.</summary>
    PartialReliableRexmit = 0x01,
    /// <summary>Partially reliable by retransmissions, unordered.</summary>
    PartialReliableRexmitUnordered = 0x81,
    /// <summary>Partially reliable by lifetime (milliseconds), ordered.</summary>
    PartialReliableTimed = 0x02,
    /// <summary>Partially reliable by lifetime (milliseconds), unordered.</summary>
    PartialReliableTimedUnordered = 0x82,
}

/// <summary>
/// DATA_CHANNEL_OPEN and DATA_CHANNEL_ACK, RFC 8832 sections 5.1 and 5.2 (PPID 50).
/// <code>
/// |  Message Type |  Channel Type |            Priority           |
/// |                    Reliability Parameter                      |
/// |         Label Length          |       Protocol Length         |
/// \                             Label                             \
/// \                            Protocol                           \
/// </code>
/// </summary>
internal readonly ref struct DcepOpen
{
    public const byte MessageOpen = 0x03;
    public const byte MessageAck = 0x02;
    public const int FixedLength = 12;

    public DataChannelType ChannelType { get; init; }
    public ushort Priority { get; init; }
    public uint Reliability { get; init; }
    public ReadOnlySpan<byte> Label { get; init; }
    public ReadOnlySpan<byte> Protocol { get; init; }

    public static bool TryRead(ReadOnlySpan<byte> m, out DcepOpen open)
    {
        open = default;
        if (m.Length < FixedLength || m[0] != MessageOpen) return false;
        var type = m[1];
        if ((type & 0x7F) > 2) return false;
        int labelLen = BinaryPrimitives.ReadUInt16BigEndian(m[8..]);
        int protoLen = BinaryPrimitives.ReadUInt16BigEndian(m[10..]);
        if (m.Length < FixedLength + labelLen + protoLen) return false;
        open = new DcepOpen
        {
            ChannelType = (DataChannelType)type,
            Priority = BinaryPrimitives.ReadUInt16BigEndian(m[2..]),
            Reliability = BinaryPrimitives.ReadUInt32BigEndian(m[4..]),
            Label = m.Slice(FixedLength, labelLen),
            Protocol = m.Slice(FixedLength + labelLen, protoLen),
        };
        return true;
    }

    public static byte[] Write(DataChannelType type, ushort priority, uint reliability, string label, string protocol)
    {
        var l = Encoding.UTF8.GetByteCount(label);
        var p = Encoding.UTF8.GetByteCount(protocol);
        if (l > ushort.MaxValue || p > ushort.MaxValue) throw new ArgumentException("Label and protocol must each fit in 65535 bytes of UTF-8.");
        var m = new byte[FixedLength + l + p];
        m[0] = MessageOpen;
        m[1] = (byte)type;
        BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(2), priority);
        BinaryPrimitives.WriteUInt32BigEndian(m.AsSpan(4), reliability);
        BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(8), (ushort)l);
        BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(10), (ushort)p);
        Encoding.UTF8.GetBytes(label, m.AsSpan(FixedLength));
        Encoding.UTF8.GetBytes(protocol, m.AsSpan(FixedLength + l));
        return m;
    }
}

/// <summary>Payload protocol identifiers of WebRTC, RFC 8831 section 8 and RFC 8832 section 8.1.</summary>
public static class Ppid
{
    /// <summary>DCEP messages.</summary>
    public const uint Dcep = 50;
    /// <summary>A UTF-8 string.</summary>
    public const uint String = 51;
    /// <summary>Binary data.</summary>
    public const uint Binary = 53;
    /// <summary>An empty string (a single zero byte is sent, RFC 8831 section 6.6).</summary>
    public const uint StringEmpty = 56;
    /// <summary>Empty binary data (a single zero byte is sent).</summary>
    public const uint BinaryEmpty = 57;
}
