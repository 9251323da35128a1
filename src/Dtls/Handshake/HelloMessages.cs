namespace Transport.Dtls.Handshake;

/// <summary>Extension type code points (IANA TLS ExtensionType registry).</summary>
internal static class ExtensionType
{
    public const ushort SupportedGroups = 10;         // RFC 8422 section 5.1.1
    public const ushort EcPointFormats = 11;          // RFC 8422 section 5.1.2
    public const ushort SignatureAlgorithms = 13;     // RFC 5246 section 7.4.1.4.1
    public const ushort UseSrtp = 14;                 // RFC 5764 section 4.1.1
    public const ushort ExtendedMasterSecret = 23;    // RFC 7627 section 5.1
    public const ushort RenegotiationInfo = 0xFF01;   // RFC 5746 section 3.2
    /// <summary>TLS_EMPTY_RENEGOTIATION_INFO_SCSV (RFC 5746 section 3.3), a cipher suite value.</summary>
    public const ushort RenegotiationScsv = 0x00FF;
}

/// <summary>The hello extensions this implementation reads and writes.</summary>
internal sealed class HelloExtensions
{
    public bool ExtendedMasterSecret;
    public bool RenegotiationInfo;
    /// <summary>renegotiated_connection not empty: a renegotiation, which we refuse (RFC 5746 3.6 / 3.7).</summary>
    public bool RenegotiationNotEmpty;
    public bool PointFormats;
    public bool UncompressedPoints;
    public readonly List<DtlsNamedGroup> Groups = new();
    public readonly List<DtlsSignatureScheme> SignatureSchemes = new();
    public bool UseSrtp;
    public readonly List<SrtpProtectionProfile> SrtpProfiles = new();
    public byte[] SrtpMki = [];

    public static bool TryParse(ReadOnlySpan<byte> block, HelloExtensions into)
    {
        var r = new WireReader(block);
        while (!r.IsEmpty)
        {
            if (!r.TryU16(out var type) || !r.TryVector16(out var data)) return false;
            var d = new WireReader(data);
            switch (type)
            {
                case ExtensionType.ExtendedMasterSecret:
                    into.ExtendedMasterSecret = true;
                    break;
                case ExtensionType.RenegotiationInfo:
                    if (!d.TryVector8(out var reneg)) return false;
                    into.RenegotiationInfo = true;
                    into.RenegotiationNotEmpty = !reneg.IsEmpty;
                    break;
                case ExtensionType.EcPointFormats:
                    if (!d.TryVector8(out var formats)) return false;
                    into.PointFormats = true;
                    into.UncompressedPoints = formats.Contains((byte)0);
                    break;
                case ExtensionType.SupportedGroups:
                {
                    if (!d.TryVector16(out var groups) || (groups.Length & 1) != 0) return false;
                    var g = new WireReader(groups);
                    while (g.TryU16(out var v)) into.Groups.Add((DtlsNamedGroup)v);
                    break;
                }
                case ExtensionType.SignatureAlgorithms:
                {
                    if (!d.TryVector16(out var schemes) || (schemes.Length & 1) != 0) return false;
                    var g = new WireReader(schemes);
                    while (g.TryU16(out var v)) into.SignatureSchemes.Add((DtlsSignatureScheme)v);
                    break;
                }
                case ExtensionType.UseSrtp:
                {
                    // RFC 5764 4.1.1: SRTPProtectionProfiles<2..2^16-1>, opaque srtp_mki<0..255>
                    if (!d.TryVector16(out var profiles) || (profiles.Length & 1) != 0 || !d.TryVector8(out var mki)) return false;
                    into.UseSrtp = true;
                    var g = new WireReader(profiles);
                    while (g.TryU16(out var v)) into.SrtpProfiles.Add((SrtpProtectionProfile)v);
                    into.SrtpMki = mki.ToArray();
                    break;
                }
            }
        }
        return true;
    }
}

/// <summary>ClientHello (RFC 6347 section 4.2.1, RFC 5246 section 7.4.1.2).</summary>
internal sealed class ClientHello
{
    public ushort Version;
    public byte[] Random = [];
    public byte[] SessionId = [];
    public byte[] Cookie = [];
    public readonly List<ushort> CipherSuites = new();
    public readonly HelloExtensions Extensions = new();

    public static ClientHello? Parse(ReadOnlySpan<byte> body)
    {
        var r = new WireReader(body);
        var m = new ClientHello();
        if (!r.TryU16(out m.Version) || m.Version > 0xFEFF) return null; // DTLS versions count down: 1.2 = 0xFEFD
        if (!r.TryBytes(32, out var random) || !r.TryVector8(out var sid) || !r.TryVector8(out var cookie)) return null;
        if (!r.TryVector16(out var suites) || (suites.Length & 1) != 0 || !r.TryVector8(out var compression)) return null;
        if (!compression.Contains((byte)0)) return null;
        m.Random = random.ToArray();
        m.SessionId = sid.ToArray();
        m.Cookie = cookie.ToArray();
        var s = new WireReader(suites);
        while (s.TryU16(out var v)) m.CipherSuites.Add(v);
        if (!r.IsEmpty && (!r.TryVector16(out var ext) || !HelloExtensions.TryParse(ext, m.Extensions))) return null;
        return m;
    }
}

/// <summary>ServerHello (RFC 5246 section 7.4.1.3).</summary>
internal sealed class ServerHello
{
    public byte[] Random = [];
    public ushort CipherSuite;
    public readonly HelloExtensions Extensions = new();

    public static ServerHello? Parse(ReadOnlySpan<byte> body)
    {
        var r = new WireReader(body);
        var m = new ServerHello();
        if (!r.TryU16(out var version) || version != 0xFEFD) return null;
        if (!r.TryBytes(32, out var random) || !r.TryVector8(out _) || !r.TryU16(out m.CipherSuite) || !r.TryU8(out var compression) || compression != 0)
            return null;
        m.Random = random.ToArray();
        if (!r.IsEmpty && (!r.TryVector16(out var ext) || !HelloExtensions.TryParse(ext, m.Extensions))) return null;
        return m;
    }
}
