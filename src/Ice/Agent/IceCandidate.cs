using System.Globalization;
using System.Net;

namespace Transport.Ice;

/// <summary>Candidate types (RFC 8445 section 5.1.1) with their recommended type preferences (section 5.1.2.2).</summary>
public enum IceCandidateType
{
    /// <summary>An address of a local interface (type preference 126).</summary>
    Host,
    /// <summary>The address a STUN server saw (type preference 100).</summary>
    ServerReflexive,
    /// <summary>An address learnt from a connectivity check (type preference 110).</summary>
    PeerReflexive,
    /// <summary>A TURN relayed address (type preference 0).</summary>
    Relayed,
}

/// <summary>The transport of a candidate: UDP, or TCP (ICE-TCP, RFC 6544).</summary>
public enum IceProtocol
{
    /// <summary>UDP (RFC 8445).</summary>
    Udp,
    /// <summary>TCP with RFC 4571 framing (RFC 6544).</summary>
    Tcp,
}

/// <summary>The direction of a TCP candidate (RFC 6544 section 4.5, the tcptype attribute).</summary>
public enum IceTcpType
{
    /// <summary>Not a TCP candidate.</summary>
    None,
    /// <summary>Opens connections, accepts none (signalled with port 9).</summary>
    Active,
    /// <summary>Accepts connections, opens none.</summary>
    Passive,
    /// <summary>Simultaneous open.</summary>
    SimultaneousOpen,
}

/// <summary>
/// One ICE candidate (RFC 8445 section 5.1): transport address, type, priority, foundation, and the base it is
/// sent from. Component 1 only (RTP and RTCP are multiplexed, RFC 8843/5761); UDP, or TCP with a tcptype (RFC 6544).
/// </summary>
public sealed record IceCandidate
{
    /// <summary>Creates a candidate.</summary>
    public IceCandidate(IceCandidateType type, IPEndPoint address, uint priority, string foundation, IPEndPoint? baseAddress = null, int component = 1)
    {
        ArgumentNullException.ThrowIfNull(address);
        ArgumentException.ThrowIfNullOrEmpty(foundation);
        Type = type;
        Address = address;
        Priority = priority;
        Foundation = foundation;
        Base = baseAddress ?? address;
        Component = component;
    }

    /// <summary>The candidate type.</summary>
    public IceCandidateType Type { get; }

    /// <summary>The transport address.</summary>
    public IPEndPoint Address { get; }

    /// <summary>The priority (RFC 8445 section 5.1.2).</summary>
    public uint Priority { get; }

    /// <summary>The foundation: equal for candidates of the same type, base IP and server (section 5.1.1.3).</summary>
    public string Foundation { get; }

    /// <summary>The address checks and data are sent from (itself for host candidates).</summary>
    public IPEndPoint Base { get; }

    /// <summary>The component ID (1).</summary>
    public int Component { get; }

    /// <summary>
    /// The related address signalled as raddr/rport (RFC 8839 section 5.1): for a relayed candidate the mapped
    /// address the TURN server saw, for reflexive candidates the base. Null means <see cref="Base"/>.
    /// </summary>
    public IPEndPoint? RelatedAddress { get; init; }

    /// <summary>UDP or TCP (RFC 6544).</summary>
    public IceProtocol Protocol { get; init; }

    /// <summary>The TCP candidate's direction (RFC 6544 section 4.5); <see cref="IceTcpType.None"/> for UDP.</summary>
    public IceTcpType TcpType { get; init; }

    /// <summary>A TCP candidate.</summary>
    public bool IsTcp => Protocol == IceProtocol.Tcp;

    /// <summary>
    /// The type preference of a TCP host candidate: below every UDP host, server-reflexive and peer-reflexive one, so
    /// that a UDP pair is preferred whenever one works (RFC 6544 section 4.2 leaves the choice to the agent; libwebrtc
    /// uses the same value, 90).
    /// </summary>
    public const int TcpHostTypePreference = 90;

    /// <summary>
    /// The RFC 6544 section 4.2 local preference: 2^13 * direction-pref + other-pref, with direction-pref 6 for active,
    /// 4 for passive and 2 for simultaneous-open host candidates; other-pref (0..8191) orders the addresses.
    /// </summary>
    public static ushort TcpLocalPreference(IceTcpType tcpType, int otherPreference)
    {
        var direction = tcpType switch { IceTcpType.Active => 6, IceTcpType.Passive => 4, IceTcpType.SimultaneousOpen => 2, _ => 0 };
        return (ushort)((direction << 13) + Math.Clamp(otherPreference, 0, 8191));
    }

    /// <summary>The priority of a TCP host candidate: <see cref="TcpHostTypePreference"/> and <see cref="TcpLocalPreference"/>.</summary>
    public static uint ComputeTcpHostPriority(IceTcpType tcpType, int otherPreference, int component = 1) =>
        (uint)((TcpHostTypePreference << 24) + (TcpLocalPreference(tcpType, otherPreference) << 8) + (256 - component));

    /// <summary>The tcptype token of the SDP form.</summary>
    public static string TcpTypeToken(IceTcpType t) =>
        t switch { IceTcpType.Active => "active", IceTcpType.Passive => "passive", IceTcpType.SimultaneousOpen => "so", _ => "" };

    /// <summary>The recommended type preference of section 5.1.2.2.</summary>
    public static int TypePreference(IceCandidateType type) => type switch
    {
        IceCandidateType.Host => 126,
        IceCandidateType.PeerReflexive => 110,
        IceCandidateType.ServerReflexive => 100,
        _ => 0,
    };

    /// <summary>priority = 2^24 * type preference + 2^8 * local preference + (256 - component ID) (section 5.1.2.1).</summary>
    public static uint ComputePriority(IceCandidateType type, ushort localPreference, int component = 1) =>
        (uint)((TypePreference(type) << 24) + (localPreference << 8) + (256 - component));

    /// <summary>The local preference a priority carries.</summary>
    public static ushort LocalPreferenceOf(uint priority) => (ushort)((priority >> 8) & 0xFFFF);

    /// <summary>
    /// The SDP form without the "a=" (RFC 8839 section 5.1), e.g. "candidate:1 1 udp 2130706431 10.0.0.1 5000 typ host",
    /// or for TCP (RFC 6544 section 4.5) "candidate:2 1 tcp 1518283007 10.0.0.1 5000 typ host tcptype passive" (an
    /// active candidate says port 9).
    /// </summary>
    public string ToSdp() => "candidate:" + ToFields().ToAttributeValue();

    /// <summary>The fields of the candidate attribute this candidate is signalled as (what <see cref="ToSdp"/> writes).</summary>
    public IceCandidateFields ToFields()
    {
        var type = Type switch
        {
            IceCandidateType.Host => "host",
            IceCandidateType.ServerReflexive => "srflx",
            IceCandidateType.PeerReflexive => "prflx",
            _ => "relay",
        };
        var port = IsTcp && TcpType == IceTcpType.Active ? 9 : Address.Port;
        var related = Type == IceCandidateType.Host ? null : RelatedAddress ?? Base;
        return new IceCandidateFields(Foundation, Component, IsTcp ? "tcp" : "udp", Priority, Address.Address.ToString(), port, type,
            related?.Address.ToString(), related?.Port, IsTcp ? [new("tcptype", TcpTypeToken(TcpType))] : null);
    }

    /// <summary>
    /// Parses the SDP form (with or without "a=", with "candidate:"): UDP candidates, and TCP candidates with a tcptype
    /// (RFC 6544 section 4.5; one without is refused). False for anything else. The grammar is read by
    /// <see cref="IceCandidateFields.TryRead"/>, the meaning given by <see cref="TryCreate"/>.
    /// </summary>
    public static bool TryParse(string text, out IceCandidate candidate)
    {
        candidate = null!;
        if (text is null) return false;
        var value = text.StartsWith("a=", StringComparison.Ordinal) ? text.AsSpan(2) : text.AsSpan();
        if (!value.StartsWith("candidate:", StringComparison.Ordinal)) return false;
        return IceCandidateFields.TryRead(text, out var fields, out _) && TryCreate(fields, out candidate);
    }

    /// <summary>
    /// The candidate the fields of an attribute describe, without text in between: false when ICE cannot use it (a
    /// transport other than UDP or TCP, an address that is not an IP address such as an mDNS name, an unknown type, a
    /// TCP candidate without a known tcptype). A related address that is not an IP address is left out.
    /// </summary>
    public static bool TryCreate(in IceCandidateFields fields, out IceCandidate candidate)
    {
        candidate = null!;
        var tcp = fields.Transport.Equals("tcp", StringComparison.OrdinalIgnoreCase);
        if (!tcp && !fields.Transport.Equals("udp", StringComparison.OrdinalIgnoreCase)) return false;
        if (fields.Port is < 0 or > 65535 || !IPAddress.TryParse(fields.Address, out var ip)) return false;
        IceCandidateType type;
        switch (fields.Type)
        {
            case "host": type = IceCandidateType.Host; break;
            case "srflx": type = IceCandidateType.ServerReflexive; break;
            case "prflx": type = IceCandidateType.PeerReflexive; break;
            case "relay": type = IceCandidateType.Relayed; break;
            default: return false;
        }
        IPEndPoint? related = null;
        if (fields.RelatedAddress is { } raddr && IPAddress.TryParse(raddr, out var relatedIp))
            related = new IPEndPoint(relatedIp, fields.RelatedPort is { } rport and >= 0 and <= 65535 ? rport : 0);
        var tcpType = IceTcpType.None;
        if (tcp)
            tcpType = fields.GetExtension("tcptype")?.ToLowerInvariant() switch
            {
                "active" => IceTcpType.Active,
                "passive" => IceTcpType.Passive,
                "so" => IceTcpType.SimultaneousOpen,
                _ => IceTcpType.None
            };
        if (tcp && tcpType == IceTcpType.None) return false;
        candidate = new IceCandidate(type, new IPEndPoint(ip, fields.Port), fields.Priority, fields.Foundation, related, fields.Component)
        {
            RelatedAddress = related,
            Protocol = tcp ? IceProtocol.Tcp : IceProtocol.Udp,
            TcpType = tcpType,
        };
        return true;
    }
}

/// <summary>
/// The fields of a candidate attribute as written (RFC 8839 section 5.1):
/// <c>candidate:foundation component transport priority address port typ type [raddr a] [rport p] *(name value)</c>,
/// before ICE gives them a meaning. <see cref="TryRead"/> is the one reader of this grammar: both
/// <see cref="IceCandidate.TryParse"/> and the SDP layer's candidate use it, and <see cref="ToAttributeValue"/> the
/// one writer.
/// </summary>
/// <param name="Foundation">1 to 32 characters.</param>
/// <param name="Component">1 to 256.</param>
/// <param name="Transport">Lower case, e.g. <c>udp</c>, <c>tcp</c>.</param>
/// <param name="Priority">1 to 2^32-1.</param>
/// <param name="Address">An IP address or a name (mDNS), as written.</param>
/// <param name="Port">0 to 65535.</param>
/// <param name="Type"><c>host</c>, <c>srflx</c>, <c>prflx</c>, <c>relay</c> or another token, as written.</param>
/// <param name="RelatedAddress">The <c>raddr</c>, as written.</param>
/// <param name="RelatedPort">The <c>rport</c>.</param>
/// <param name="Extensions">Every other name and value in order (<c>tcptype</c>, <c>generation</c>, <c>ufrag</c>, ...).</param>
public readonly record struct IceCandidateFields(
    string Foundation,
    int Component,
    string Transport,
    uint Priority,
    string Address,
    int Port,
    string Type,
    string? RelatedAddress = null,
    int? RelatedPort = null,
    IReadOnlyList<KeyValuePair<string, string>>? Extensions = null)
{
    /// <summary>
    /// The longest candidate text read, in characters. A browser's or ours is under 300 (an mDNS name or an IPv6
    /// address, a related address and a few extensions; RFC 8839 section 5.1); a longer one is refused before it is cut
    /// into tokens, which for a 64 KiB line from a remote party (a WHIP PATCH body, a signaling message) cost some 30
    /// bytes of allocations per character: the tokens, the extension list, the text written back and read again.
    /// </summary>
    public const int MaxLength = 1024;

    /// <summary>The value of extension <paramref name="name"/> (e.g. <c>generation</c>, <c>ufrag</c>, <c>tcptype</c>), or null.</summary>
    public string? GetExtension(string name)
    {
        if (Extensions is null) return null;
        foreach (var (k, v) in Extensions) if (k == name) return v;
        return null;
    }

    /// <summary>The attribute value, without the leading <c>candidate:</c>.</summary>
    public string ToAttributeValue()
    {
        var sb = new System.Text.StringBuilder(96);
        sb.Append(Foundation).Append(' ').Append(Component.ToString(CultureInfo.InvariantCulture)).Append(' ').Append(Transport).Append(' ')
          .Append(Priority.ToString(CultureInfo.InvariantCulture)).Append(' ').Append(Address).Append(' ')
          .Append(Port.ToString(CultureInfo.InvariantCulture)).Append(" typ ").Append(Type);
        if (RelatedAddress is not null) sb.Append(" raddr ").Append(RelatedAddress);
        if (RelatedPort is not null) sb.Append(" rport ").Append(RelatedPort.Value.ToString(CultureInfo.InvariantCulture));
        if (Extensions is not null)
            foreach (var (k, v) in Extensions) sb.Append(' ').Append(k).Append(' ').Append(v);
        return sb.ToString();
    }


    /// <summary>
    /// Reads a candidate, with or without the <c>a=</c> and <c>candidate:</c> prefixes. False with the reason in
    /// <paramref name="error"/> when the text does not follow the grammar; never throws.
    /// </summary>
    public static bool TryRead(string text, out IceCandidateFields fields, out string? error)
    {
        fields = default;
        error = null;
        if (text is null) { error = "no text"; return false; }
        if (text.Length > MaxLength) { error = $"longer than {MaxLength} characters"; return false; }
        var value = text;
        if (value.StartsWith("a=", StringComparison.Ordinal)) value = value[2..];
        if (value.StartsWith("candidate:", StringComparison.Ordinal)) value = value[10..];
        var f = value.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        bool Fail(string why, out string? reason) { reason = why; return false; }
        if (f.Length < 8) return Fail("needs foundation, component, transport, priority, address, port, 'typ' and type", out error);
        // RFC 8839 section 5.1: foundation = 1*32ice-char. Anything else (a second "candidate:" prefix, found by the
        // candidate fuzz target) would be written back as text that no longer reads as the same candidate.
        if (f[0].Length is 0 or > 32 || !f[0].All(IceCredentials.IsIceChar))
            return Fail("foundation must be 1 to 32 ice-chars (letters, digits, '+', '/')", out error);
        if (!int.TryParse(f[1], NumberStyles.None, CultureInfo.InvariantCulture, out var component) || component is < 1 or > 256)
            return Fail("component is not a number from 1 to 256", out error);
        if (!uint.TryParse(f[3], NumberStyles.None, CultureInfo.InvariantCulture, out var priority) || priority == 0)
            return Fail("priority is not a number from 1 to 2^31-1", out error);
        if (!int.TryParse(f[5], NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port > 65535)
            return Fail("port is not a number from 0 to 65535", out error);
        if (f[6] != "typ") return Fail("'typ' expected after the port", out error);
        string? raddr = null;
        int? rport = null;
        List<KeyValuePair<string, string>>? ext = null;
        for (var i = 8; i < f.Length; i += 2)
        {
            if (i + 1 >= f.Length) return Fail($"extension '{f[i]}' has no value", out error);
            switch (f[i])
            {
                case "raddr": raddr = f[i + 1]; break;
                case "rport":
                    if (!int.TryParse(f[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out var rp) || rp > 65535)
                        return Fail("rport is not a port number", out error);
                    rport = rp;
                    break;
                default: (ext ??= new()).Add(new(f[i], f[i + 1])); break;
            }
        }
        fields = new IceCandidateFields(f[0], component, f[2].ToLowerInvariant(), priority, f[4], port, f[7], raddr, rport, ext);
        return true;
    }
}

/// <summary>ICE credentials: ice-ufrag (at least 4 ice-chars) and ice-pwd (at least 22) (RFC 8445 section 5.3, RFC 8839 section 5.4).</summary>
public sealed record IceCredentials(string Ufrag, string Password)
{
    private const string IceChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    /// <summary>An ice-char of RFC 8839 section 5.1 (ALPHA, DIGIT, '+' or '/'): what ufrags, passwords and foundations are made of.</summary>
    public static bool IsIceChar(char c) => char.IsAsciiLetterOrDigit(c) || c is '+' or '/';

    /// <summary>Random credentials: 8-character ufrag and 24-character password from a cryptographic source.</summary>
    public static IceCredentials Generate() => new(RandomString(8), RandomString(24));

    private static string RandomString(int length)
    {
        Span<byte> bytes = stackalloc byte[length];
        System.Security.Cryptography.RandomNumberGenerator.Fill(bytes);
        Span<char> chars = stackalloc char[length];
        for (var i = 0; i < length; i++) chars[i] = IceChars[bytes[i] & 63];
        return new string(chars);
    }
}
