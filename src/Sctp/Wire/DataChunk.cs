using System.Buffers.Binary;

namespace Transport.Sctp.Wire;

/// <summary>
/// DATA, RFC 9260 section 3.3.1.
/// <code>
/// |   Type = 0    | Reserved|U|B|E|    Length                     |
/// |                              TSN                              |
/// |      Stream Identifier S      |   Stream Sequence Number n    |
/// |                  Payload Protocol Identifier                  |
/// \                 User Data (seq n of Stream S)                 \
/// </code>
/// </summary>
internal readonly ref struct DataChunk
{
    public const int HeaderLength = 16;
    public const byte FlagEnd = 0x01;
    public const byte FlagBegin = 0x02;
    public const byte FlagUnordered = 0x04;
    /// <summary>RFC 7053: the sender asks for an immediate SACK.</summary>
    public const byte FlagImmediate = 0x08;

    public byte Flags { get; init; }
    public uint Tsn { get; init; }
    public ushort StreamId { get; init; }
    public ushort Ssn { get; init; }
    public uint Ppid { get; init; }
    public ReadOnlySpan<byte> Payload { get; init; }

    public bool Begin => (Flags & FlagBegin) != 0;
    public bool End => (Flags & FlagEnd) != 0;
    public bool Unordered => (Flags & FlagUnordered) != 0;

    /// <summary>Reads a DATA chunk (header included); RFC 9260 section 6.2 says a DATA chunk without user data is a protocol violation.</summary>
    public static bool TryRead(ChunkHeader chunk, out DataChunk data)
    {
        data = default;
        var c = chunk.Chunk;
        if (c.Length <= HeaderLength) return false;
        data = new DataChunk
        {
            Flags = chunk.Flags,
            Tsn = BinaryPrimitives.ReadUInt32BigEndian(c[4..]),
            StreamId = BinaryPrimitives.ReadUInt16BigEndian(c[8..]),
            Ssn = BinaryPrimitives.ReadUInt16BigEndian(c[10..]),
            Ppid = BinaryPrimitives.ReadUInt32BigEndian(c[12..]),
            Payload = c[HeaderLength..],
        };
        return true;
    }

    /// <summary>Writes a DATA chunk with padding; returns the padded length.</summary>
    public static int Write(Span<byte> d, byte flags, uint tsn, ushort stream, ushort ssn, uint ppid, ReadOnlySpan<byte> payload)
    {
        var len = HeaderLength + payload.Length;
        ChunkHeader.Write(d, ChunkType.Data, flags, len);
        BinaryPrimitives.WriteUInt32BigEndian(d[4..], tsn);
        BinaryPrimitives.WriteUInt16BigEndian(d[8..], stream);
        BinaryPrimitives.WriteUInt16BigEndian(d[10..], ssn);
        BinaryPrimitives.WriteUInt32BigEndian(d[12..], ppid);
        payload.CopyTo(d[HeaderLength..]);
        var padded = ChunkHeader.Padded(len);
        d[len..padded].Clear();
        return padded;
    }
}

/// <summary>
/// SACK, RFC 9260 section 3.3.4.
/// <code>
/// |   Type = 3    |Chunk  Flags   |      Chunk Length             |
/// |                      Cumulative TSN Ack                       |
/// |          Advertised Receiver Window Credit (a_rwnd)           |
/// | Number of Gap Ack Blocks = N  |  Number of Duplicate TSNs = M |
/// |  Gap Ack Block #1 Start       |   Gap Ack Block #1 End        |
/// |                       Duplicate TSN 1                         |
/// </code>
/// </summary>
internal readonly ref struct SackChunk
{
    public const int FixedLength = 16;
    public uint CumulativeTsnAck { get; init; }
    public uint AdvertisedWindow { get; init; }
    public int GapBlockCount { get; init; }
    public int DuplicateCount { get; init; }
    private ReadOnlySpan<byte> Blocks { get; init; }

    public static bool TryRead(ChunkHeader chunk, out SackChunk sack)
    {
        sack = default;
        var c = chunk.Chunk;
        if (c.Length < FixedLength) return false;
        int gaps = BinaryPrimitives.ReadUInt16BigEndian(c[12..]);
        int dups = BinaryPrimitives.ReadUInt16BigEndian(c[14..]);
        if (c.Length < FixedLength + 4 * gaps + 4 * dups) return false;
        sack = new SackChunk
        {
            CumulativeTsnAck = BinaryPrimitives.ReadUInt32BigEndian(c[4..]),
            AdvertisedWindow = BinaryPrimitives.ReadUInt32BigEndian(c[8..]),
            GapBlockCount = gaps,
            DuplicateCount = dups,
            Blocks = c[FixedLength..],
        };
        return true;
    }

    /// <summary>The offsets (from the cumulative TSN ack) of gap block <paramref name="i"/>.</summary>
    public (ushort Start, ushort End) GapBlock(int i) =>
        (BinaryPrimitives.ReadUInt16BigEndian(Blocks[(4 * i)..]), BinaryPrimitives.ReadUInt16BigEndian(Blocks[(4 * i + 2)..]));

    public uint Duplicate(int i) => BinaryPrimitives.ReadUInt32BigEndian(Blocks[(4 * GapBlockCount + 4 * i)..]);
}
