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
    public static string TcpTypeToken(IceTcpType t) => t switch { IceTcpType.Active => "active", IceTcpType.Passive => "passive", IceTcpType.SimultaneousOpen => "so", _ => "" };

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
    public string ToSdp()
    {
        var type = Type switch
        {
            IceCandidateType.Host => "host",
            IceCandidateType.ServerReflexive => "srflx",
            IceCandidateType.PeerReflexive => "prflx",
            _ => "relay",
        };
        var port = IsTcp && TcpType == IceTcpType.Active ? 9 : Address.Port;
        var text = string.Create(CultureInfo.InvariantCulture, $"candidate:{Foundation} {Component} {(IsTcp ? "tcp" : "udp")} {Priority} {Address.Address} {port} typ {type}");
        if (Type != IceCandidateType.Host) text = string.Create(CultureInfo.InvariantCulture, $"{text} raddr {(RelatedAddress ?? Base).Address} rport {(RelatedAddress ?? Base).Port}");
        return IsTcp ? text + " tcptype " + TcpTypeToken(TcpType) : text;
    }

    /// <summary>
    /// Parses the SDP form (with or without "a="): UDP candidates, and TCP candidates with a tcptype (RFC 6544 section
    /// 4.5; one without is refused). False for anything else.
    /// </summary>
    public static bool TryParse(string text, out IceCandidate candidate)
    {
        candidate = null!;
        if (text is null) return false;
        if (text.StartsWith("a=", StringComparison.Ordinal)) text = text.Substring(2);
        if (!text.StartsWith("candidate:", StringComparison.Ordinal)) return false;
        var parts = text.Substring(10).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length < 8 || parts[6] != "typ") return false;
        var tcp = parts[2].Equals("tcp", StringComparison.OrdinalIgnoreCase);
        if (!tcp && !parts[2].Equals("udp", StringComparison.OrdinalIgnoreCase)) return false;
        if (!int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var component)
            || !uint.TryParse(parts[3], NumberStyles.None, CultureInfo.InvariantCulture, out var priority)
            || !IPAddress.TryParse(parts[4], out var ip)
            || !ushort.TryParse(parts[5], NumberStyles.None, CultureInfo.InvariantCulture, out var port)) return false;
        IceCandidateType type;
        switch (parts[7])
        {
            case "host": type = IceCandidateType.Host; break;
            case "srflx": type = IceCandidateType.ServerReflexive; break;
            case "prflx": type = IceCandidateType.PeerReflexive; break;
            case "relay": type = IceCandidateType.Relayed; break;
            default: return false;
        }
        IPEndPoint? related = null;
        var tcpType = IceTcpType.None;
        for (var i = 8; i + 1 < parts.Length; i += 2)
        {
            if (parts[i] == "raddr" && IPAddress.TryParse(parts[i + 1], out var raddr)) related = new IPEndPoint(raddr, related?.Port ?? 0);
            else if (parts[i] == "rport" && ushort.TryParse(parts[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out var rport) && related is not null) related = new IPEndPoint(related.Address, rport);
            else if (parts[i] == "tcptype" && tcp)
                tcpType = parts[i + 1].ToLowerInvariant() switch { "active" => IceTcpType.Active, "passive" => IceTcpType.Passive, "so" => IceTcpType.SimultaneousOpen, _ => IceTcpType.None };
        }
        if (tcp && tcpType == IceTcpType.None) return false;
        candidate = new IceCandidate(type, new IPEndPoint(ip, port), priority, parts[0], related, component)
        {
            RelatedAddress = related,
            Protocol = tcp ? IceProtocol.Tcp : IceProtocol.Udp,
            TcpType = tcpType,
        };
        return true;
    }
}

/// <summary>ICE credentials: ice-ufrag (at least 4 ice-chars) and ice-pwd (at least 22) (RFC 8445 section 5.3, RFC 8839 section 5.4).</summary>
public sealed record IceCredentials(string Ufrag, string Password)
{
    private const string IceChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

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
