using System.Buffers.Binary;
using System.Text;

namespace Transport.Rtp.Rtcp;

//  SDES (RFC 3550 section 6.5): header (SC = chunk count), then chunks: SSRC, items (type, length, text),
//  a null item ends the chunk, which is padded to a 32-bit boundary.
//  BYE (section 6.6): header (SC), SSRCs, optional reason (length, text), padded.
//  APP (section 6.7): header (subtype), SSRC, 4 ASCII name octets, application data (multiple of 4).

/// <summary>SDES item types (RFC 3550 section 6.5).</summary>
public static class SdesItemType
{
    /// <summary>End of the item list.</summary>
    public const byte End = 0;

    /// <summary>Canonical end-point identifier.</summary>
    public const byte Cname = 1;
}

/// <summary>Reads and writes SDES packets.</summary>
public static class RtcpSdes
{
    /// <summary>Finds the CNAME of <paramref name="ssrc"/> in an SDES packet.</summary>
    public static bool TryGetCname(in RtcpPacket packet, uint ssrc, out ReadOnlySpan<byte> cname)
    {
        cname = default;
        if (packet.PacketType != RtcpPacketType.SourceDescription)
        {
            return false;
        }

        ReadOnlySpan<byte> body = packet.Body;
        int offset = 0;
        for (int chunk = 0; chunk < packet.Count; chunk++)
        {
            if (offset + 4 > body.Length)
            {
                return false;
            }

            uint chunkSsrc = BinaryPrimitives.ReadUInt32BigEndian(body.Slice(offset));
            offset += 4;
            while (true)
            {
                if (offset >= body.Length)
                {
                    return false;
                }

                byte type = body[offset];
                if (type == SdesItemType.End)
                {
                    // Skip the null octet and padding up to the next 32-bit boundary.
                    offset = (offset + 4) & ~3;
                    break;
                }

                if (offset + 2 > body.Length || offset + 2 + body[offset + 1] > body.Length)
                {
                    return false;
                }

                int length = body[offset + 1];
                if (type == SdesItemType.Cname && chunkSsrc == ssrc)
                {
                    cname = body.Slice(offset + 2, length);
                    return true;
                }

                offset += 2 + length;
            }
        }

        return false;
    }

    /// <summary>Writes an SDES packet with one chunk carrying a CNAME; returns its length or -1.</summary>
    public static int WriteCname(Span<byte> destination, uint ssrc, string cname)
    {
        int textLength = Encoding.UTF8.GetByteCount(cname);
        if (textLength > 255)
        {
            throw new ArgumentException("CNAME longer than 255 bytes.", nameof(cname));
        }

        int chunkLength = (4 + 2 + textLength + 1 + 3) & ~3;
        int length = 4 + chunkLength;
        if (length > destination.Length)
        {
            return -1;
        }

        RtcpPacket.WriteHeader(destination, 1, RtcpPacketType.SourceDescription, length);
        BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(4), ssrc);
        destination[8] = SdesItemType.Cname;
        destination[9] = (byte)textLength;
        Encoding.UTF8.GetBytes(cname, destination.Slice(10));
        destination.Slice(10 + textLength, length - 10 - textLength).Clear();
        return length;
    }
}

/// <summary>Reads and writes BYE packets.</summary>
public readonly ref struct RtcpBye
{
    private readonly ReadOnlySpan<byte> _ssrcs;

    private RtcpBye(ReadOnlySpan<byte> ssrcs, ReadOnlySpan<byte> reason)
    {
        _ssrcs = ssrcs;
        Reason = reason;
    }

    /// <summary>Number of sources leaving.</summary>
    public int Count => _ssrcs.Length / 4;

    /// <summary>The SSRC at <paramref name="index"/>.</summary>
    public uint GetSsrc(int index) => BinaryPrimitives.ReadUInt32BigEndian(_ssrcs.Slice(4 * index));

    /// <summary>The optional reason (UTF-8), or empty.</summary>
    public ReadOnlySpan<byte> Reason { get; }

    /// <summary>Reads a BYE packet.</summary>
    public static bool TryRead(in RtcpPacket packet, out RtcpBye bye)
    {
        bye = default;
        ReadOnlySpan<byte> body = packet.Body;
        int ssrcBytes = 4 * packet.Count;
        if (packet.PacketType != RtcpPacketType.Bye || body.Length < ssrcBytes)
        {
            return false;
        }

        ReadOnlySpan<byte> reason = default;
        if (body.Length > ssrcBytes)
        {
            int reasonLength = body[ssrcBytes];
            if (ssrcBytes + 1 + reasonLength > body.Length)
            {
                return false;
            }

            reason = body.Slice(ssrcBytes + 1, reasonLength);
        }

        bye = new RtcpBye(body.Slice(0, ssrcBytes), reason);
        return true;
    }

    /// <summary>Writes a BYE packet; returns its length or -1.</summary>
    public static int Write(Span<byte> destination, ReadOnlySpan<uint> ssrcs, string? reason = null)
    {
        int reasonLength = reason is null ? 0 : Encoding.UTF8.GetByteCount(reason);
        if (ssrcs.Length > 31 || reasonLength > 255)
        {
            throw new ArgumentOutOfRangeException(nameof(ssrcs), "At most 31 SSRCs and a 255-byte reason.");
        }

        int length = 4 + 4 * ssrcs.Length + (reason is null ? 0 : (1 + reasonLength + 3) & ~3);
        if (length > destination.Length)
        {
            return -1;
        }

        RtcpPacket.WriteHeader(destination, ssrcs.Length, RtcpPacketType.Bye, length);
        int offset = 4;
        foreach (uint ssrc in ssrcs)
        {
            BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(offset), ssrc);
            offset += 4;
        }

        if (reason is not null)
        {
            destination[offset] = (byte)reasonLength;
            Encoding.UTF8.GetBytes(reason, destination.Slice(offset + 1));
            destination.Slice(offset + 1 + reasonLength, length - offset - 1 - reasonLength).Clear();
        }

        return length;
    }
}

/// <summary>Reads and writes APP packets.</summary>
public readonly ref struct RtcpApp
{
    private RtcpApp(int subtype, uint ssrc, ReadOnlySpan<byte> name, ReadOnlySpan<byte> data)
    {
        Subtype = subtype;
        Ssrc = ssrc;
        Name = name;
        Data = data;
    }

    /// <summary>The 5-bit subtype.</summary>
    public int Subtype { get; }

    /// <summary>Sender SSRC.</summary>
    public uint Ssrc { get; }

    /// <summary>Four ASCII characters.</summary>
    public ReadOnlySpan<byte> Name { get; }

    /// <summary>Application data.</summary>
    public ReadOnlySpan<byte> Data { get; }

    /// <summary>Reads an APP packet.</summary>
    public static bool TryRead(in RtcpPacket packet, out RtcpApp app)
    {
        app = default;
        ReadOnlySpan<byte> body = packet.Body;
        if (packet.PacketType != RtcpPacketType.App || body.Length < 8)
        {
            return false;
        }

        app = new RtcpApp(packet.Count, BinaryPrimitives.ReadUInt32BigEndian(body), body.Slice(4, 4), body.Slice(8));
        return true;
    }

    /// <summary>Writes an APP packet; data must be a multiple of 4 bytes. Returns its length or -1.</summary>
    public static int Write(Span<byte> destination, int subtype, uint ssrc, ReadOnlySpan<byte> name, ReadOnlySpan<byte> data)
    {
        if (name.Length != 4 || (data.Length & 3) != 0 || subtype is < 0 or > 31)
        {
            throw new ArgumentException("APP needs a 4-byte name, data in 32-bit words and a 5-bit subtype.");
        }

        int length = 12 + data.Length;
        if (length > destination.Length)
        {
            return -1;
        }

        RtcpPacket.WriteHeader(destination, subtype, RtcpPacketType.App, length);
        BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(4), ssrc);
        name.CopyTo(destination.Slice(8));
        data.CopyTo(destination.Slice(12));
        return length;
    }
}
