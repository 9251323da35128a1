using System.Buffers.Binary;

namespace Transport.Rtp.Rtcp;

//  Feedback message (RFC 4585 section 6.1):
//  |V=2|P|   FMT   |       PT      |          length               |
//  |                  SSRC of packet sender                        |
//  |                  SSRC of media source                         |
//  :            Feedback Control Information (FCI)                 :

/// <summary>Feedback message formats (RFC 4585 section 6.2 and 6.3, RFC 5104 section 4.3.1).</summary>
public static class RtcpFeedbackFormat
{
    /// <summary>RTPFB generic NACK.</summary>
    public const int GenericNack = 1;

    /// <summary>RTPFB transport-wide congestion control (draft-holmer-rmcat-transport-wide-cc-extensions-01).</summary>
    public const int TransportCc = 15;

    /// <summary>PSFB picture loss indication.</summary>
    public const int PictureLossIndication = 1;

    /// <summary>PSFB full intra request (RFC 5104).</summary>
    public const int FullIntraRequest = 4;

    /// <summary>PSFB application layer feedback (REMB uses it).</summary>
    public const int ApplicationLayer = 15;
}

/// <summary>A transport-layer (205) or payload-specific (206) feedback message.</summary>
public readonly ref struct RtcpFeedback
{
    private RtcpFeedback(byte packetType, int format, uint senderSsrc, uint mediaSsrc, ReadOnlySpan<byte> fci)
    {
        PacketType = packetType;
        Format = format;
        SenderSsrc = senderSsrc;
        MediaSsrc = mediaSsrc;
        Fci = fci;
    }

    /// <summary>205 (RTPFB) or 206 (PSFB).</summary>
    public byte PacketType { get; }

    /// <summary>The FMT field.</summary>
    public int Format { get; }

    /// <summary>SSRC of the packet sender.</summary>
    public uint SenderSsrc { get; }

    /// <summary>SSRC of the media source.</summary>
    public uint MediaSsrc { get; }

    /// <summary>Feedback control information.</summary>
    public ReadOnlySpan<byte> Fci { get; }

    /// <summary>True for a generic NACK.</summary>
    public bool IsNack => PacketType == RtcpPacketType.TransportFeedback && Format == RtcpFeedbackFormat.GenericNack;

    /// <summary>True for a PLI.</summary>
    public bool IsPli => PacketType == RtcpPacketType.PayloadFeedback && Format == RtcpFeedbackFormat.PictureLossIndication;

    /// <summary>True for a FIR.</summary>
    public bool IsFir => PacketType == RtcpPacketType.PayloadFeedback && Format == RtcpFeedbackFormat.FullIntraRequest;

    /// <summary>True for transport-wide congestion control feedback.</summary>
    public bool IsTransportCc => PacketType == RtcpPacketType.TransportFeedback && Format == RtcpFeedbackFormat.TransportCc;

    /// <summary>True for REMB (application layer feedback starting with "REMB").</summary>
    public bool IsRemb => PacketType == RtcpPacketType.PayloadFeedback && Format == RtcpFeedbackFormat.ApplicationLayer &&
        Fci.Length >= 8 && Fci.StartsWith("REMB"u8);

    /// <summary>Reads a feedback message.</summary>
    public static bool TryRead(in RtcpPacket packet, out RtcpFeedback feedback)
    {
        feedback = default;
        ReadOnlySpan<byte> body = packet.Body;
        if ((packet.PacketType != RtcpPacketType.TransportFeedback && packet.PacketType != RtcpPacketType.PayloadFeedback) || body.Length < 8)
        {
            return false;
        }

        feedback = new RtcpFeedback(packet.PacketType, packet.Count, BinaryPrimitives.ReadUInt32BigEndian(body),
            BinaryPrimitives.ReadUInt32BigEndian(body.Slice(4)), body.Slice(8));
        return true;
    }

    /// <summary>
    /// Writes the lost sequence numbers of a NACK into <paramref name="destination"/> (RFC 4585 section 6.2.1:
    /// each FCI is a PID and a bitmask of the 16 following). Returns the number written; stops when full.
    /// </summary>
    public int GetNackedSequences(Span<ushort> destination)
    {
        int written = 0;
        for (int offset = 0; offset + 4 <= Fci.Length; offset += 4)
        {
            ushort pid = BinaryPrimitives.ReadUInt16BigEndian(Fci.Slice(offset));
            ushort blp = BinaryPrimitives.ReadUInt16BigEndian(Fci.Slice(offset + 2));
            if (written == destination.Length)
            {
                return written;
            }

            destination[written++] = pid;
            for (int bit = 0; bit < 16; bit++)
            {
                if ((blp & (1 << bit)) != 0)
                {
                    if (written == destination.Length)
                    {
                        return written;
                    }

                    destination[written++] = (ushort)(pid + bit + 1);
                }
            }
        }

        return written;
    }

    /// <summary>Reads FIR entry <paramref name="index"/> (RFC 5104 section 4.3.1.1: SSRC, sequence number, reserved).</summary>
    public bool TryGetFirEntry(int index, out uint ssrc, out byte sequenceNumber)
    {
        int offset = 8 * index;
        if (!IsFir || index < 0 || offset + 8 > Fci.Length)
        {
            ssrc = 0;
            sequenceNumber = 0;
            return false;
        }

        ssrc = BinaryPrimitives.ReadUInt32BigEndian(Fci.Slice(offset));
        sequenceNumber = Fci[offset + 4];
        return true;
    }

    /// <summary>
    /// Reads a REMB (draft-alvestrand-rmcat-remb-03): "REMB", SSRC count (8), BR exponent (6), mantissa (18),
    /// then the SSRCs. The bitrate is mantissa * 2^exponent bits per second.
    /// </summary>
    public bool TryGetRemb(out ulong bitrate, out int ssrcCount)
    {
        bitrate = 0;
        ssrcCount = 0;
        if (!IsRemb)
        {
            return false;
        }

        ssrcCount = Fci[4];
        if (8 + 4 * ssrcCount > Fci.Length)
        {
            return false;
        }

        int exponent = Fci[5] >> 2;
        ulong mantissa = ((ulong)(Fci[5] & 0x03) << 16) | ((ulong)Fci[6] << 8) | Fci[7];
        bitrate = mantissa << exponent;
        return true;
    }

    /// <summary>The REMB SSRC at <paramref name="index"/>.</summary>
    public uint GetRembSsrc(int index) => BinaryPrimitives.ReadUInt32BigEndian(Fci.Slice(8 + 4 * index));

    private static int WriteHeader(Span<byte> destination, byte packetType, int format, uint senderSsrc, uint mediaSsrc, int fciLength)
    {
        int length = 12 + fciLength;
        if (length > destination.Length)
        {
            return -1;
        }

        RtcpPacket.WriteHeader(destination, format, packetType, length);
        BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(4), senderSsrc);
        BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(8), mediaSsrc);
        return length;
    }

    /// <summary>Writes a PLI (RFC 4585 section 6.3.1, no FCI).</summary>
    public static int WritePli(Span<byte> destination, uint senderSsrc, uint mediaSsrc) =>
        WriteHeader(destination, RtcpPacketType.PayloadFeedback, RtcpFeedbackFormat.PictureLossIndication, senderSsrc, mediaSsrc, 0);

    /// <summary>Writes a FIR with one entry (RFC 5104 section 4.3.1; the media source field is 0).</summary>
    public static int WriteFir(Span<byte> destination, uint senderSsrc, uint targetSsrc, byte sequenceNumber)
    {
        int length = WriteHeader(destination, RtcpPacketType.PayloadFeedback, RtcpFeedbackFormat.FullIntraRequest, senderSsrc, 0, 8);
        if (length > 0)
        {
            BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(12), targetSsrc);
            BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(16), (uint)sequenceNumber << 24);
        }

        return length;
    }

    /// <summary>Writes a REMB for <paramref name="ssrcs"/> at <paramref name="bitrate"/> bits per second.</summary>
    public static int WriteRemb(Span<byte> destination, uint senderSsrc, ulong bitrate, ReadOnlySpan<uint> ssrcs)
    {
        if (ssrcs.Length > 255)
        {
            throw new ArgumentOutOfRangeException(nameof(ssrcs));
        }

        int length = WriteHeader(destination, RtcpPacketType.PayloadFeedback, RtcpFeedbackFormat.ApplicationLayer, senderSsrc, 0, 8 + 4 * ssrcs.Length);
        if (length < 0)
        {
            return -1;
        }

        int exponent = 0;
        while ((bitrate >> exponent) > 0x3FFFF)
        {
            exponent++;
        }

        ulong mantissa = bitrate >> exponent;
        "REMB"u8.CopyTo(destination.Slice(12));
        destination[16] = (byte)ssrcs.Length;
        destination[17] = (byte)((exponent << 2) | (int)(mantissa >> 16));
        destination[18] = (byte)(mantissa >> 8);
        destination[19] = (byte)mantissa;
        for (int i = 0; i < ssrcs.Length; i++)
        {
            BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(20 + 4 * i), ssrcs[i]);
        }

        return length;
    }

    /// <summary>
    /// Writes a generic NACK for <paramref name="lost"/> (sequence numbers in increasing order, modulo wrap),
    /// packing each run of up to 17 into one PID/BLP entry. Returns the length or -1 when it does not fit.
    /// </summary>
    public static int WriteNack(Span<byte> destination, uint senderSsrc, uint mediaSsrc, ReadOnlySpan<ushort> lost)
    {
        if (lost.IsEmpty)
        {
            throw new ArgumentException("At least one lost packet.", nameof(lost));
        }

        // Count entries first so the header length is known.
        int entries = 0;
        for (int i = 0; i < lost.Length;)
        {
            ushort pid = lost[i++];
            while (i < lost.Length && (ushort)(lost[i] - pid) is >= 1 and <= 16)
            {
                i++;
            }

            entries++;
        }

        int length = WriteHeader(destination, RtcpPacketType.TransportFeedback, RtcpFeedbackFormat.GenericNack, senderSsrc, mediaSsrc, 4 * entries);
        if (length < 0)
        {
            return -1;
        }

        int offset = 12;
        for (int i = 0; i < lost.Length;)
        {
            ushort pid = lost[i++];
            ushort blp = 0;
            while (i < lost.Length && (ushort)(lost[i] - pid) is >= 1 and <= 16)
            {
                blp |= (ushort)(1 << ((ushort)(lost[i] - pid) - 1));
                i++;
            }

            BinaryPrimitives.WriteUInt16BigEndian(destination.Slice(offset), pid);
            BinaryPrimitives.WriteUInt16BigEndian(destination.Slice(offset + 2), blp);
            offset += 4;
        }

        return length;
    }
}
