using System.Buffers.Binary;

namespace Transport.Rtp.Rtcp;

//  Report block (RFC 3550 section 6.4.1), 24 bytes:
//  | SSRC_n | fraction lost (8) cumulative lost (24) | extended highest seq | jitter | LSR | DLSR |

/// <summary>A reception report block (RFC 3550 section 6.4.1).</summary>
public readonly record struct ReportBlock(
    uint Ssrc, byte FractionLost, int CumulativeLost, uint ExtendedHighestSequence, uint Jitter, uint LastSenderReport, uint DelaySinceLastSenderReport)
{
    /// <summary>Encoded length.</summary>
    public const int Length = 24;

    internal static ReportBlock Read(ReadOnlySpan<byte> s)
    {
        // Cumulative lost is a signed 24-bit value (duplicates can make it negative).
        int lost = (s[5] << 16) | (s[6] << 8) | s[7];
        if ((lost & 0x80_0000) != 0)
        {
            lost -= 0x100_0000;
        }

        return new ReportBlock(
            BinaryPrimitives.ReadUInt32BigEndian(s), s[4], lost,
            BinaryPrimitives.ReadUInt32BigEndian(s.Slice(8)), BinaryPrimitives.ReadUInt32BigEndian(s.Slice(12)),
            BinaryPrimitives.ReadUInt32BigEndian(s.Slice(16)), BinaryPrimitives.ReadUInt32BigEndian(s.Slice(20)));
    }

    internal void Write(Span<byte> d)
    {
        int lost = Math.Clamp(CumulativeLost, -0x80_0000, 0x7F_FFFF);
        BinaryPrimitives.WriteUInt32BigEndian(d, Ssrc);
        BinaryPrimitives.WriteUInt32BigEndian(d.Slice(4), ((uint)FractionLost << 24) | ((uint)lost & 0xFF_FFFF));
        BinaryPrimitives.WriteUInt32BigEndian(d.Slice(8), ExtendedHighestSequence);
        BinaryPrimitives.WriteUInt32BigEndian(d.Slice(12), Jitter);
        BinaryPrimitives.WriteUInt32BigEndian(d.Slice(16), LastSenderReport);
        BinaryPrimitives.WriteUInt32BigEndian(d.Slice(20), DelaySinceLastSenderReport);
    }
}

/// <summary>Sender information of an SR (RFC 3550 section 6.4.1).</summary>
public readonly record struct SenderInfo(ulong NtpTimestamp, uint RtpTimestamp, uint PacketCount, uint OctetCount)
{
    /// <summary>The middle 32 bits of the NTP timestamp, echoed as LSR in report blocks.</summary>
    public uint CompactNtp => (uint)(NtpTimestamp >> 16);
}

/// <summary>SR (PT 200) and RR (PT 201) reader.</summary>
public readonly ref struct RtcpReport
{
    private readonly ReadOnlySpan<byte> _blocks;

    private RtcpReport(uint ssrc, bool isSender, SenderInfo info, ReadOnlySpan<byte> blocks, int count)
    {
        Ssrc = ssrc;
        IsSenderReport = isSender;
        SenderInfo = info;
        _blocks = blocks;
        BlockCount = count;
    }

    /// <summary>SSRC of the reporter.</summary>
    public uint Ssrc { get; }

    /// <summary>True for SR.</summary>
    public bool IsSenderReport { get; }

    /// <summary>Sender information (SR only).</summary>
    public SenderInfo SenderInfo { get; }

    /// <summary>Number of report blocks.</summary>
    public int BlockCount { get; }

    /// <summary>The report block at <paramref name="index"/>.</summary>
    public ReportBlock GetBlock(int index) =>
        (uint)index < (uint)BlockCount ? ReportBlock.Read(_blocks.Slice(index * ReportBlock.Length)) : throw new ArgumentOutOfRangeException(nameof(index));

    /// <summary>Reads an SR or RR; false when the packet is another type or too short for its count.</summary>
    public static bool TryRead(in RtcpPacket packet, out RtcpReport report)
    {
        report = default;
        ReadOnlySpan<byte> body = packet.Body;
        bool sender = packet.PacketType == RtcpPacketType.SenderReport;
        if (!sender && packet.PacketType != RtcpPacketType.ReceiverReport)
        {
            return false;
        }

        int fixedLength = sender ? 24 : 4;
        int count = packet.Count;
        if (body.Length < fixedLength + count * ReportBlock.Length)
        {
            return false;
        }

        SenderInfo info = sender
            ? new SenderInfo(BinaryPrimitives.ReadUInt64BigEndian(body.Slice(4)), BinaryPrimitives.ReadUInt32BigEndian(body.Slice(12)),
                BinaryPrimitives.ReadUInt32BigEndian(body.Slice(16)), BinaryPrimitives.ReadUInt32BigEndian(body.Slice(20)))
            : default;
        report = new RtcpReport(BinaryPrimitives.ReadUInt32BigEndian(body), sender, info, body.Slice(fixedLength, count * ReportBlock.Length), count);
        return true;
    }

    /// <summary>Writes an SR; returns its length or -1 when it does not fit.</summary>
    public static int WriteSenderReport(Span<byte> destination, uint ssrc, in SenderInfo info, ReadOnlySpan<ReportBlock> blocks)
    {
        int length = 4 + 24 + blocks.Length * ReportBlock.Length;
        if (blocks.Length > 31 || length > destination.Length)
        {
            return -1;
        }

        RtcpPacket.WriteHeader(destination, blocks.Length, RtcpPacketType.SenderReport, length);
        BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(4), ssrc);
        BinaryPrimitives.WriteUInt64BigEndian(destination.Slice(8), info.NtpTimestamp);
        BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(16), info.RtpTimestamp);
        BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(20), info.PacketCount);
        BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(24), info.OctetCount);
        for (int i = 0; i < blocks.Length; i++)
        {
            blocks[i].Write(destination.Slice(28 + i * ReportBlock.Length));
        }

        return length;
    }

    /// <summary>Writes an RR; returns its length or -1 when it does not fit.</summary>
    public static int WriteReceiverReport(Span<byte> destination, uint ssrc, ReadOnlySpan<ReportBlock> blocks)
    {
        int length = 8 + blocks.Length * ReportBlock.Length;
        if (blocks.Length > 31 || length > destination.Length)
        {
            return -1;
        }

        RtcpPacket.WriteHeader(destination, blocks.Length, RtcpPacketType.ReceiverReport, length);
        BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(4), ssrc);
        for (int i = 0; i < blocks.Length; i++)
        {
            blocks[i].Write(destination.Slice(8 + i * ReportBlock.Length));
        }

        return length;
    }
}
