using System.Buffers.Binary;

namespace Transport.Sctp.Wire;

/// <summary>
/// FORWARD TSN, RFC 3758 section 3.2.
/// <code>
/// |   Type = 192  |  Flags = 0x00 |        Length = Variable      |
/// |                      New Cumulative TSN                       |
/// |         Stream-1              |       Stream Sequence-1       |
/// </code>
/// </summary>
internal readonly ref struct ForwardTsnChunk
{
    public uint NewCumulativeTsn { get; init; }
    public int StreamCount { get; init; }
    private ReadOnlySpan<byte> Pairs { get; init; }

    public static bool TryRead(ChunkHeader chunk, out ForwardTsnChunk fwd)
    {
        fwd = default;
        var c = chunk.Chunk;
        if (c.Length < 8 || (c.Length - 8) % 4 != 0) return false;
        fwd = new ForwardTsnChunk
        {
            NewCumulativeTsn = BinaryPrimitives.ReadUInt32BigEndian(c[4..]),
            StreamCount = (c.Length - 8) / 4,
            Pairs = c[8..],
        };
        return true;
    }

    public (ushort Stream, ushort Ssn) Stream(int i) =>
        (BinaryPrimitives.ReadUInt16BigEndian(Pairs[(4 * i)..]), BinaryPrimitives.ReadUInt16BigEndian(Pairs[(4 * i + 2)..]));
}

/// <summary>
/// RE-CONFIG, RFC 6525 section 3.1, with its parameters (section 4): Outgoing SSN Reset Request (13),
/// Incoming SSN Reset Request (14) and Re-configuration Response (16).
/// <code>
/// | Type = 130    |  Chunk Flags  |      Chunk Length             |
/// \                  Re-configuration Parameter                   \
/// \             Re-configuration Parameter (optional)             \
/// </code>
/// </summary>
internal static class ReConfigChunk
{
    public const ushort OutgoingResetRequest = 13;
    public const ushort IncomingResetRequest = 14;
    public const ushort Response = 16;

    /// <summary>RFC 6525 section 4.4 result codes.</summary>
    public const uint ResultNothingToDo = 0, ResultPerformed = 1, ResultDenied = 2, ResultWrongSsn = 3,
        ResultInProgressAlready = 4, ResultBadSequence = 5, ResultInProgress = 6;

    /// <summary>
    /// Outgoing SSN Reset Request Parameter (RFC 6525 section 4.1): request sequence number, response
    /// sequence number, sender's last assigned TSN, streams. Returns the parameter length (padded).
    /// </summary>
    public static int WriteOutgoingRequest(Span<byte> d, uint requestSeq, uint responseSeq, uint lastTsn, ReadOnlySpan<ushort> streams)
    {
        var len = 16 + 2 * streams.Length;
        BinaryPrimitives.WriteUInt16BigEndian(d, OutgoingResetRequest);
        BinaryPrimitives.WriteUInt16BigEndian(d[2..], (ushort)len);
        BinaryPrimitives.WriteUInt32BigEndian(d[4..], requestSeq);
        BinaryPrimitives.WriteUInt32BigEndian(d[8..], responseSeq);
        BinaryPrimitives.WriteUInt32BigEndian(d[12..], lastTsn);
        for (var i = 0; i < streams.Length; i++) BinaryPrimitives.WriteUInt16BigEndian(d[(16 + 2 * i)..], streams[i]);
        var padded = ChunkHeader.Padded(len);
        d[len..padded].Clear();
        return padded;
    }

    /// <summary>Incoming SSN Reset Request Parameter (RFC 6525 section 4.2).</summary>
    public static int WriteIncomingRequest(Span<byte> d, uint requestSeq, ReadOnlySpan<ushort> streams)
    {
        var len = 8 + 2 * streams.Length;
        BinaryPrimitives.WriteUInt16BigEndian(d, IncomingResetRequest);
        BinaryPrimitives.WriteUInt16BigEndian(d[2..], (ushort)len);
        BinaryPrimitives.WriteUInt32BigEndian(d[4..], requestSeq);
        for (var i = 0; i < streams.Length; i++) BinaryPrimitives.WriteUInt16BigEndian(d[(8 + 2 * i)..], streams[i]);
        var padded = ChunkHeader.Padded(len);
        d[len..padded].Clear();
        return padded;
    }

    /// <summary>Re-configuration Response Parameter (RFC 6525 section 4.4), without the optional TSNs.</summary>
    public static int WriteResponse(Span<byte> d, uint responseSeq, uint result)
    {
        BinaryPrimitives.WriteUInt16BigEndian(d, Response);
        BinaryPrimitives.WriteUInt16BigEndian(d[2..], 12);
        BinaryPrimitives.WriteUInt32BigEndian(d[4..], responseSeq);
        BinaryPrimitives.WriteUInt32BigEndian(d[8..], result);
        return 12;
    }
}

