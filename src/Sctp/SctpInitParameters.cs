using System.Buffers.Binary;
using System.Security.Cryptography;
using Transport.Sctp.Wire;

namespace Transport.Sctp;

/// <summary>
/// The parameters of one side's SCTP INIT chunk as SNAP (draft-hancke-tsvwg-snap, "SCTP Negotiation Acceleration
/// Protocol") carries them in SDP: <c>a=sctp-init:&lt;base64&gt;</c> is the standard base64 of a whole INIT chunk
/// (RFC 9260 section 3.3.2: chunk header, Initiate Tag, a_rwnd, outbound and inbound streams, Initial TSN, then the
/// optional parameters), without the SCTP common header. Chromium writes the chunk length unpadded (30 bytes with
/// Forward-TSN-Supported and Supported Extensions), and so may the last parameter be.
/// <para>
/// When the offer and the answer both carry a valid INIT, each side starts its association with
/// <see cref="SctpAssociation.StartWithPeerInit"/>: ESTABLISHED as soon as DTLS is up, no INIT / INIT ACK /
/// COOKIE ECHO / COOKIE ACK. Each side sends with the peer's Initiate Tag as verification tag and numbers its DATA
/// from its own Initial TSN, exactly as after a four-way handshake with these two INITs.
/// </para>
/// </summary>
public sealed record SctpInitParameters
{
    /// <summary>RFC 9260 section 6.2.1: a_rwnd below 1500 bytes is not a usable window (our own floor for a peer's INIT).</summary>
    public const uint MinAdvertisedWindow = 1500;
    /// <summary>Bounds the base64 text read from a remote description (an INIT with every parameter is far smaller).</summary>
    public const int MaxEncodedLength = 1024;

    /// <summary>Initiate Tag: the verification tag the other side puts on every packet to us (never 0).</summary>
    public required uint InitiateTag { get; init; }
    /// <summary>Advertised receiver window credit (a_rwnd) in bytes.</summary>
    public required uint AdvertisedWindow { get; init; }
    /// <summary>Number of outbound streams.</summary>
    public required ushort OutboundStreams { get; init; }
    /// <summary>Number of inbound streams.</summary>
    public required ushort InboundStreams { get; init; }
    /// <summary>Initial TSN: the TSN of the sender's first DATA chunk.</summary>
    public required uint InitialTsn { get; init; }
    /// <summary>FORWARD TSN supported (RFC 3758): partial reliability.</summary>
    public bool ForwardTsn { get; init; }
    /// <summary>RE-CONFIG supported (RFC 6525): stream reset, which closes data channels.</summary>
    public bool ReConfig { get; init; }
    /// <summary>Zero checksum acceptable with the "SCTP over DTLS" method (RFC 9653).</summary>
    public bool ZeroChecksum { get; init; }

    /// <summary>
    /// Our INIT for an association with <paramref name="options"/>: a fresh random Initiate Tag and Initial TSN, a_rwnd
    /// = the receive buffer, the streams we ask for, FORWARD-TSN and RE-CONFIG, and zero checksum when offered. The
    /// association must later be created with the same options.
    /// </summary>
    public static SctpInitParameters CreateLocal(SctpOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Span<byte> r = stackalloc byte[8];
        uint tag;
        do
        {
            RandomNumberGenerator.Fill(r);
            tag = BinaryPrimitives.ReadUInt32BigEndian(r);
        } while (tag == 0);
        return new SctpInitParameters
        {
            InitiateTag = tag,
            InitialTsn = BinaryPrimitives.ReadUInt32BigEndian(r[4..]),
            AdvertisedWindow = (uint)options.ReceiveBufferSize,
            OutboundStreams = options.Streams,
            InboundStreams = options.Streams,
            ForwardTsn = true,
            ReConfig = true,
            ZeroChecksum = options.OfferZeroChecksum,
        };
    }

    /// <summary>The INIT chunk bytes (padded to 4 bytes, as on the wire).</summary>
    public byte[] ToChunk()
    {
        Span<byte> d = stackalloc byte[InitChunk.MaxLength(0)];
        var n = InitChunk.Write(d, ChunkType.Init, InitiateTag, AdvertisedWindow, OutboundStreams, InboundStreams, InitialTsn,
            ZeroChecksum, default);
        return d[..n].ToArray();
    }

    /// <summary>The value of <c>a=sctp-init</c>: the standard base64 of <see cref="ToChunk"/>.</summary>
    public string ToBase64() => Convert.ToBase64String(ToChunk());

    /// <summary>
    /// Reads an <c>a=sctp-init</c> value. False, with the reason in <paramref name="error"/>, when it is not base64 or
    /// not a valid INIT chunk (see <see cref="TryReadChunk"/>); never throws.
    /// </summary>
    public static bool TryParseBase64(string? value, out SctpInitParameters? init, out string error)
    {
        init = null;
        if (string.IsNullOrEmpty(value)) { error = "the sctp-init value is empty"; return false; }
        if (value.Length > MaxEncodedLength) { error = $"the sctp-init value is {value.Length} characters, more than {MaxEncodedLength}"; return false; }
        var bytes = new byte[(value.Length + 3) / 4 * 3];
        if (!Convert.TryFromBase64String(value, bytes, out var n)) { error = "the sctp-init value is not base64"; return false; }
        return TryReadChunk(bytes.AsSpan(0, n), out init, out error);
    }

    /// <summary>
    /// Reads an INIT chunk. Refused, with the reason: another chunk type, a length field that disagrees with the bytes
    /// (beyond padding), a zero Initiate Tag or stream count (RFC 9260 section 3.3.2), a_rwnd under
    /// <see cref="MinAdvertisedWindow"/>, a malformed parameter, or a State Cookie (an INIT ACK's parameter).
    /// </summary>
    public static bool TryReadChunk(ReadOnlySpan<byte> chunk, out SctpInitParameters? init, out string error)
    {
        init = null;
        const int header = ChunkHeader.Length;
        if (chunk.Length < header + InitChunk.FixedLength)
        {
            error = $"the INIT is {chunk.Length} bytes, shorter than the {header + InitChunk.FixedLength} of its fixed part";
            return false;
        }
        if (chunk[0] != ChunkType.Init) { error = $"the chunk type is {chunk[0]}, not INIT (1)"; return false; }
        var length = BinaryPrimitives.ReadUInt16BigEndian(chunk[2..]);
        if (length < header + InitChunk.FixedLength || length > chunk.Length || ChunkHeader.Padded(length) < chunk.Length)
        { error = $"the chunk length field says {length} bytes and the value holds {chunk.Length}"; return false; }
        var value = chunk[header..length];
        if (BinaryPrimitives.ReadUInt32BigEndian(value) == 0) { error = "the Initiate Tag is 0 (RFC 9260 section 3.3.2)"; return false; }
        if (BinaryPrimitives.ReadUInt16BigEndian(value[8..]) == 0 || BinaryPrimitives.ReadUInt16BigEndian(value[10..]) == 0)
        { error = "the number of outbound or inbound streams is 0 (RFC 9260 section 3.3.2)"; return false; }
        var window = BinaryPrimitives.ReadUInt32BigEndian(value[4..]);
        if (window < MinAdvertisedWindow) { error = $"a_rwnd is {window} bytes, under {MinAdvertisedWindow}"; return false; }
        if (!ParametersWellFormed(value[InitChunk.FixedLength..], out error)) return false;
        if (!InitChunk.TryRead(value, out var parsed)) { error = "the INIT's parameters are malformed"; return false; }
        if (!parsed.Cookie.IsEmpty) { error = "the INIT carries a State Cookie (an INIT ACK parameter)"; return false; }
        init = new SctpInitParameters
        {
            InitiateTag = parsed.InitiateTag,
            AdvertisedWindow = parsed.AdvertisedWindow,
            OutboundStreams = parsed.OutboundStreams,
            InboundStreams = parsed.InboundStreams,
            InitialTsn = parsed.InitialTsn,
            ForwardTsn = parsed.ForwardTsn,
            ReConfig = parsed.ReConfig,
            ZeroChecksum = parsed.ZeroChecksum,
        };
        error = "";
        return true;
    }

    // Every parameter has a length of at least 4 that fits (the last one may lack its padding).
    private static bool ParametersWellFormed(ReadOnlySpan<byte> rest, out string error)
    {
        for (var count = 0; !rest.IsEmpty; count++)
        {
            if (count >= 64) { error = "the INIT has more than 64 parameters"; return false; }
            if (rest.Length < 4) { error = $"a parameter header is cut short ({rest.Length} bytes left)"; return false; }
            var type = BinaryPrimitives.ReadUInt16BigEndian(rest);
            var len = BinaryPrimitives.ReadUInt16BigEndian(rest[2..]);
            if (len < 4 || len > rest.Length) { error = $"parameter 0x{type:X4} says {len} bytes and {rest.Length} are left"; return false; }
            var padded = ChunkHeader.Padded(len);
            rest = padded >= rest.Length ? default : rest[padded..];
        }
        error = "";
        return true;
    }
}
