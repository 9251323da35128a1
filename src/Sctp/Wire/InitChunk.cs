using System.Buffers.Binary;

namespace Transport.Sctp.Wire;

/// <summary>
/// INIT and INIT ACK, RFC 9260 sections 3.3.2 and 3.3.3 (same fixed part, then parameters).
/// <code>
/// |   Type = 1 (2)  |  Chunk Flags  |      Chunk Length             |
/// |                         Initiate Tag                            |
/// |           Advertised Receiver Window Credit (a_rwnd)            |
/// |  Number of Outbound Streams   |  Number of Inbound Streams      |
/// |                          Initial TSN                            |
/// \              Optional/Variable-Length Parameters                \
/// </code>
/// Parameters read here: State Cookie (7), Supported Extensions (0x8008, RFC 5061), Forward-TSN-Supported
/// (0xC000, RFC 3758 section 3.1), Zero Checksum Acceptable (0x8001, RFC 9653 section 4).
/// </summary>
internal readonly ref struct InitChunk
{
    public const int FixedLength = 16;
    public const ushort ParamStateCookie = 7;
    public const ushort ParamSupportedExtensions = 0x8008;
    public const ushort ParamForwardTsnSupported = 0xC000;
    public const ushort ParamZeroChecksumAcceptable = 0x8001;
    /// <summary>RFC 9653 section 9.2: the error detection method "SCTP over DTLS".</summary>
    public const uint EdmidDtls = 1;

    public uint InitiateTag { get; init; }
    public uint AdvertisedWindow { get; init; }
    public ushort OutboundStreams { get; init; }
    public ushort InboundStreams { get; init; }
    public uint InitialTsn { get; init; }
    public bool ForwardTsn { get; init; }
    public bool ReConfig { get; init; }
    public bool ZeroChecksum { get; init; }
    public ReadOnlySpan<byte> Cookie { get; init; }

    /// <summary>Reads the value of an INIT or INIT ACK chunk; false when malformed (RFC 9260 section 3.3.2: zero tag or streams is invalid).</summary>
    public static bool TryRead(ReadOnlySpan<byte> value, out InitChunk init)
    {
        init = default;
        if (value.Length < FixedLength) return false;
        var tag = BinaryPrimitives.ReadUInt32BigEndian(value);
        var os = BinaryPrimitives.ReadUInt16BigEndian(value[8..]);
        var mis = BinaryPrimitives.ReadUInt16BigEndian(value[10..]);
        if (tag == 0 || os == 0 || mis == 0) return false;
        bool fwd = false, reconfig = false, zero = false;
        ReadOnlySpan<byte> cookie = default;
        var rest = value[FixedLength..];
        while (rest.Length >= 4)
        {
            var type = BinaryPrimitives.ReadUInt16BigEndian(rest);
            var len = BinaryPrimitives.ReadUInt16BigEndian(rest[2..]);
            if (len < 4 || len > rest.Length) return false;
            var body = rest[4..len];
            switch (type)
            {
                case ParamStateCookie: cookie = body; break;
                case ParamForwardTsnSupported: fwd = true; break;
                case ParamZeroChecksumAcceptable:
                    if (body.Length >= 4 && BinaryPrimitives.ReadUInt32BigEndian(body) == EdmidDtls) zero = true;
                    break;
                case ParamSupportedExtensions:
                    foreach (var t in body)
                    {
                        if (t == ChunkType.ForwardTsn) fwd = true;
                        if (t == ChunkType.ReConfig) reconfig = true;
                    }
                    break;
            }
            var padded = ChunkHeader.Padded(len);
            rest = padded >= rest.Length ? default : rest[padded..];
        }
        init = new InitChunk
        {
            InitiateTag = tag,
            AdvertisedWindow = BinaryPrimitives.ReadUInt32BigEndian(value[4..]),
            OutboundStreams = os,
            InboundStreams = mis,
            InitialTsn = BinaryPrimitives.ReadUInt32BigEndian(value[12..]),
            ForwardTsn = fwd,
            ReConfig = reconfig,
            ZeroChecksum = zero,
            Cookie = cookie,
        };
        return true;
    }

    /// <summary>Writes a whole INIT or INIT ACK chunk with our parameters; returns its length (a multiple of 4).</summary>
    public static int Write(Span<byte> d, byte type, uint tag, uint arwnd, ushort os, ushort mis, uint initialTsn,
        bool offerZeroChecksum, ReadOnlySpan<byte> cookie)
    {
        var p = ChunkHeader.Length;
        BinaryPrimitives.WriteUInt32BigEndian(d[p..], tag);
        BinaryPrimitives.WriteUInt32BigEndian(d[(p + 4)..], arwnd);
        BinaryPrimitives.WriteUInt16BigEndian(d[(p + 8)..], os);
        BinaryPrimitives.WriteUInt16BigEndian(d[(p + 10)..], mis);
        BinaryPrimitives.WriteUInt32BigEndian(d[(p + 12)..], initialTsn);
        p += FixedLength;
        if (!cookie.IsEmpty)
        {
            p += WriteParam(d[p..], ParamStateCookie, cookie);
        }
        // RFC 3758 section 3.1 and RFC 6525 section 5: announce FORWARD-TSN and RE-CONFIG.
        ReadOnlySpan<byte> ext = [ChunkType.ForwardTsn, ChunkType.ReConfig];
        p += WriteParam(d[p..], ParamSupportedExtensions, ext);
        p += WriteParam(d[p..], ParamForwardTsnSupported, default);
        if (offerZeroChecksum)
        {
            Span<byte> edmid = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(edmid, EdmidDtls);
            p += WriteParam(d[p..], ParamZeroChecksumAcceptable, edmid);
        }
        ChunkHeader.Write(d, type, 0, p);
        return p;
    }

    private static int WriteParam(Span<byte> d, ushort type, ReadOnlySpan<byte> body)
    {
        BinaryPrimitives.WriteUInt16BigEndian(d, type);
        BinaryPrimitives.WriteUInt16BigEndian(d[2..], (ushort)(4 + body.Length));
        body.CopyTo(d[4..]);
        var padded = ChunkHeader.Padded(4 + body.Length);
        d[(4 + body.Length)..padded].Clear();
        return padded;
    }

    /// <summary>An upper bound of the INIT or INIT ACK size for a cookie of <paramref name="cookieLength"/>.</summary>
    public static int MaxLength(int cookieLength) => 4 + FixedLength + 4 + ChunkHeader.Padded(cookieLength) + 8 + 4 + 8;
}
