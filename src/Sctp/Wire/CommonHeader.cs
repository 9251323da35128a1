using System.Buffers.Binary;

namespace Transport.Sctp.Wire;

/// <summary>
/// The SCTP common header, RFC 9260 section 3.1.
/// <code>
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |     Source Port Number        |     Destination Port Number   |
/// |                      Verification Tag                         |
/// |                           Checksum                            |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// </code>
/// </summary>
internal readonly ref struct CommonHeader
{
    public const int Length = 12;

    public ushort SourcePort { get; }
    public ushort DestinationPort { get; }
    public uint VerificationTag { get; }
    public uint Checksum { get; }
    /// <summary>The chunks that follow the header.</summary>
    public ReadOnlySpan<byte> Chunks { get; }

    private CommonHeader(ReadOnlySpan<byte> packet)
    {
        SourcePort = BinaryPrimitives.ReadUInt16BigEndian(packet);
        DestinationPort = BinaryPrimitives.ReadUInt16BigEndian(packet[2..]);
        VerificationTag = BinaryPrimitives.ReadUInt32BigEndian(packet[4..]);
        // The checksum is carried in network byte order of the CRC32c's little-endian value (RFC 9260 appendix A).
        Checksum = BinaryPrimitives.ReadUInt32LittleEndian(packet[8..]);
        Chunks = packet[Length..];
    }

    public static bool TryRead(ReadOnlySpan<byte> packet, out CommonHeader header)
    {
        if (packet.Length < Length + ChunkHeader.Length) { header = default; return false; }
        header = new CommonHeader(packet);
        return true;
    }

    /// <summary>Checks the CRC32c over the packet with its checksum field taken as zero.</summary>
    public static bool ChecksumValid(ReadOnlySpan<byte> packet, uint carried)
    {
        Span<byte> zero = stackalloc byte[4];
        zero.Clear();
        var crc = 0xFFFFFFFFu;
        crc = Continue(crc, packet[..8]);
        crc = Continue(crc, zero);
        crc = Continue(crc, packet[12..]);
        return ~crc == carried;
    }

    private static uint Continue(uint crc, ReadOnlySpan<byte> data)
    {
        while (data.Length >= 8)
        {
            crc = System.Numerics.BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }
        foreach (var b in data) crc = System.Numerics.BitOperations.Crc32C(crc, b);
        return crc;
    }

    /// <summary>Writes the header; the checksum is filled by <see cref="Seal"/>.</summary>
    public static void Write(Span<byte> destination, ushort sourcePort, ushort destinationPort, uint tag)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], destinationPort);
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], tag);
        BinaryPrimitives.WriteUInt32BigEndian(destination[8..], 0);
    }

    /// <summary>Fills the checksum of a complete packet, or leaves it zero (RFC 9653) when allowed.</summary>
    public static void Seal(Span<byte> packet, bool zeroChecksum)
    {
        if (zeroChecksum) { BinaryPrimitives.WriteUInt32LittleEndian(packet[8..], 0); return; }
        BinaryPrimitives.WriteUInt32LittleEndian(packet[8..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(packet[8..], Crc32c.Compute(packet));
    }
}

/// <summary>
/// The chunk header, RFC 9260 section 3.2: type, flags, length (without padding), then the value padded
/// to four bytes.
/// </summary>
internal readonly ref struct ChunkHeader
{
    public const int Length = 4;
    public byte Type { get; }
    public byte Flags { get; }
    /// <summary>The chunk including its header, without padding.</summary>
    public ReadOnlySpan<byte> Chunk { get; }
    /// <summary>The value after the 4-byte header.</summary>
    public ReadOnlySpan<byte> Value => Chunk[Length..];

    private ChunkHeader(byte type, byte flags, ReadOnlySpan<byte> chunk) { Type = type; Flags = flags; Chunk = chunk; }

    /// <summary>Reads the next chunk of <paramref name="chunks"/> and advances past it and its padding.</summary>
    public static bool TryReadNext(ref ReadOnlySpan<byte> chunks, out ChunkHeader chunk)
    {
        chunk = default;
        if (chunks.Length < Length) return false;
        var length = BinaryPrimitives.ReadUInt16BigEndian(chunks[2..]);
        if (length < Length || length > chunks.Length) return false;
        chunk = new ChunkHeader(chunks[0], chunks[1], chunks[..length]);
        var padded = (length + 3) & ~3;
        chunks = padded >= chunks.Length ? default : chunks[padded..];
        return true;
    }

    /// <summary>Writes a chunk header; returns 4.</summary>
    public static int Write(Span<byte> destination, byte type, byte flags, int length)
    {
        destination[0] = type;
        destination[1] = flags;
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], (ushort)length);
        return Length;
    }

    /// <summary>The length with padding to four bytes.</summary>
    public static int Padded(int length) => (length + 3) & ~3;
}

/// <summary>Chunk types, RFC 9260 section 3.2, RFC 3758 and RFC 6525.</summary>
internal static class ChunkType
{
    public const byte Data = 0;
    public const byte Init = 1;
    public const byte InitAck = 2;
    public const byte Sack = 3;
    public const byte Heartbeat = 4;
    public const byte HeartbeatAck = 5;
    public const byte Abort = 6;
    public const byte Shutdown = 7;
    public const byte ShutdownAck = 8;
    public const byte Error = 9;
    public const byte CookieEcho = 10;
    public const byte CookieAck = 11;
    public const byte ShutdownComplete = 14;
    /// <summary>RFC 6525 section 3.1.</summary>
    public const byte ReConfig = 130;
    /// <summary>RFC 3758 section 3.2.</summary>
    public const byte ForwardTsn = 192;
}

/// <summary>Serial number arithmetic on 32-bit TSNs and 16-bit SSNs (RFC 1982, RFC 9260 section 1.6).</summary>
internal static class Serial
{
    public static bool Lt(uint a, uint b) => (int)(a - b) < 0;
    public static bool Le(uint a, uint b) => (int)(a - b) <= 0;
    public static bool Gt(uint a, uint b) => (int)(a - b) > 0;
    public static bool Ge(uint a, uint b) => (int)(a - b) >= 0;
    public static bool Lt16(ushort a, ushort b) => (short)(a - b) < 0;
    public static bool Le16(ushort a, ushort b) => (short)(a - b) <= 0;
}
