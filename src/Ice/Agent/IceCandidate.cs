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

/// <summary>
/// One ICE candidate (RFC 8445 section 5.1): transport address, type, priority, foundation, and the base it is
/// sent from. Component 1 only (RTP and RTCP are multiplexed, RFC 8843/5761), UDP only.
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

    /// <summary>The SDP form without the "a=" (RFC 8839 section 5.1), e.g. "candidate:1 1 udp 2130706431 10.0.0.1 5000 typ host".</summary>
    public string ToSdp()
    {
        var type = Type switch
        {
            IceCandidateType.Host => "host",
            IceCandidateType.ServerReflexive => "srflx",
            IceCandidateType.PeerReflexive => "prflx",
            _ => "relay",
        };
        var text = string.Create(CultureInfo.InvariantCulture, $"candidate:{Foundation} {Component} udp {Priority} {Address.Address} {Address.Port} typ {type}");
        return Type == IceCandidateType.Host ? text : string.Create(CultureInfo.InvariantCulture, $"{text} raddr {(RelatedAddress ?? Base).Address} rport {(RelatedAddress ?? Base).Port}");
    }

    /// <summary>Parses the SDP form (with or without "a="); false for anything but UDP component candidates it understands.</summary>
    public static bool TryParse(string text, out IceCandidate candidate)
    {
        candidate = null!;
        if (text is null) return false;
        if (text.StartsWith("a=", StringComparison.Ordinal)) text = text.Substring(2);
        if (!text.StartsWith("candidate:", StringComparison.Ordinal)) return false;
        var parts = text.Substring(10).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length < 8 || !parts[2].Equals("udp", StringComparison.OrdinalIgnoreCase) || parts[6] != "typ") return false;
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
        for (var i = 8; i + 1 < parts.Length; i += 2)
        {
            if (parts[i] == "raddr" && IPAddress.TryParse(parts[i + 1], out var raddr)) related = new IPEndPoint(raddr, related?.Port ?? 0);
            else if (parts[i] == "rport" && ushort.TryParse(parts[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out var rport) && related is not null) related = new IPEndPoint(related.Address, rport);
        }
        candidate = new IceCandidate(type, new IPEndPoint(ip, port), priority, parts[0], related, component) { RelatedAddress = related };
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
