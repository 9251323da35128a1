using System.Globalization;

namespace Transport.Streaming.Sdp;

/// <summary><c>a=fingerprint:alg value</c> (RFC 8122 section 5).</summary>
public sealed record SdpFingerprint(string Algorithm, string Value)
{
    public override string ToString() => Algorithm + " " + Value;

    public static SdpFingerprint Parse(string value)
    {
        var sp = value.IndexOf(' ', StringComparison.Ordinal);
        if (sp <= 0 || sp == value.Length - 1) throw new SdpParseException(0, value, "fingerprint needs an algorithm and a value");
        return new SdpFingerprint(value[..sp].ToLowerInvariant(), value[(sp + 1)..].Trim().ToUpperInvariant());
    }
}

/// <summary><c>a=setup</c> (RFC 4145 section 4, RFC 8842): which side is the DTLS client.</summary>
public enum SdpSetup { ActPass, Active, Passive, HoldConn }

/// <summary><c>a=rtpmap:pt encoding/clock[/channels]</c> (RFC 8866 section 6.6).</summary>
public sealed record SdpRtpMap(int PayloadType, string Encoding, int ClockRate, int? Channels = null)
{
    public override string ToString() =>
        $"{PayloadType} {Encoding}/{ClockRate}" + (Channels is { } c ? "/" + c.ToString(CultureInfo.InvariantCulture) : "");

    public static SdpRtpMap Parse(string value)
    {
        var sp = value.IndexOf(' ', StringComparison.Ordinal);
        var parts = sp < 0 ? [] : value[(sp + 1)..].Split('/');
        if (sp < 0 || !int.TryParse(value.AsSpan(0, sp), NumberStyles.None, CultureInfo.InvariantCulture, out var pt) || pt > 127 ||
            parts.Length is < 2 or > 3 || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var clock))
            throw new SdpParseException(0, value, "rtpmap needs 'pt encoding/clock[/channels]'");
        int? channels = null;
        if (parts.Length == 3)
        {
            if (!int.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var ch))
                throw new SdpParseException(0, value, "rtpmap channels is not a number");
            channels = ch;
        }
        return new SdpRtpMap(pt, parts[0], clock, channels);
    }
}

/// <summary><c>a=fmtp:pt params</c> (RFC 8866 section 6.15) with the parameters split at ';' and '='.</summary>
public sealed record SdpFmtp(int PayloadType, string Parameters)
{
    public override string ToString() => $"{PayloadType} {Parameters}";

    /// <summary>The parameters as name/value pairs (a parameter without '=' has an empty value).</summary>
    public IReadOnlyDictionary<string, string> ToDictionary()
    {
        var d = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var p in Parameters.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = p.IndexOf('=', StringComparison.Ordinal);
            d[eq < 0 ? p : p[..eq]] = eq < 0 ? "" : p[(eq + 1)..];
        }
        return d;
    }

    public static SdpFmtp Parse(string value)
    {
        var sp = value.IndexOf(' ', StringComparison.Ordinal);
        if (sp < 0 || !int.TryParse(value.AsSpan(0, sp), NumberStyles.None, CultureInfo.InvariantCulture, out var pt) || pt > 127)
            throw new SdpParseException(0, value, "fmtp needs 'pt parameters'");
        return new SdpFmtp(pt, value[(sp + 1)..]);
    }
}

/// <summary><c>a=rtcp-fb:pt type [param]</c> (RFC 4585 section 4.2); <c>pt</c> may be <c>*</c>.</summary>
public sealed record SdpRtcpFeedback(string PayloadType, string Type, string? Parameter = null)
{
    public override string ToString() => $"{PayloadType} {Type}" + (Parameter is null ? "" : " " + Parameter);

    public static SdpRtcpFeedback Parse(string value)
    {
        var f = value.Split(' ', 3, StringSplitOptions.RemoveEmptyEntries);
        if (f.Length < 2) throw new SdpParseException(0, value, "rtcp-fb needs 'pt type'");
        return new SdpRtcpFeedback(f[0], f[1], f.Length == 3 ? f[2] : null);
    }
}

/// <summary><c>a=extmap:id[/direction] uri [attributes]</c> (RFC 8285 section 8).</summary>
public sealed record SdpExtMap(int Id, string Uri, string? Direction = null, string? Attributes = null)
{
    public override string ToString() => $"{Id}" + (Direction is null ? "" : "/" + Direction) + " " + Uri + (Attributes is null ? "" : " " + Attributes);

    public static SdpExtMap Parse(string value)
    {
        var f = value.Split(' ', 3, StringSplitOptions.RemoveEmptyEntries);
        if (f.Length < 2) throw new SdpParseException(0, value, "extmap needs 'id uri'");
        var idText = f[0];
        string? direction = null;
        var slash = idText.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0) { direction = idText[(slash + 1)..]; idText = idText[..slash]; }
        if (!int.TryParse(idText, NumberStyles.None, CultureInfo.InvariantCulture, out var id) || id is < 1 or > 255)
            throw new SdpParseException(0, value, "extmap id is not a number from 1 to 255");
        return new SdpExtMap(id, f[1], direction, f.Length == 3 ? f[2] : null);
    }
}

/// <summary><c>a=ssrc:ssrc attribute[:value]</c> (RFC 5576 section 4.1).</summary>
public sealed record SdpSsrc(uint Ssrc, string Attribute, string? Value = null)
{
    public override string ToString() => $"{Ssrc} {Attribute}" + (Value is null ? "" : ":" + Value);

    public static SdpSsrc Parse(string value)
    {
        var sp = value.IndexOf(' ', StringComparison.Ordinal);
        if (sp < 0 || !uint.TryParse(value.AsSpan(0, sp), NumberStyles.None, CultureInfo.InvariantCulture, out var ssrc))
            throw new SdpParseException(0, value, "ssrc needs 'ssrc attribute'");
        var rest = value[(sp + 1)..];
        var colon = rest.IndexOf(':', StringComparison.Ordinal);
        return colon < 0 ? new SdpSsrc(ssrc, rest) : new SdpSsrc(ssrc, rest[..colon], rest[(colon + 1)..]);
    }
}

/// <summary>Typed readers for the WebRTC attributes of a section.</summary>
public static class SdpSectionExtensions
{
    public static SdpFingerprint? GetFingerprint(this SdpSection section) =>
        section.GetAttribute("fingerprint") is { } v ? SdpFingerprint.Parse(v) : null;

    public static SdpSetup? GetSetup(this SdpSection section) => section.GetAttribute("setup") switch
    {
        null => null,
        "actpass" => SdpSetup.ActPass,
        "active" => SdpSetup.Active,
        "passive" => SdpSetup.Passive,
        "holdconn" => SdpSetup.HoldConn,
        var other => throw new SdpParseException(0, "a=setup:" + other, "unknown setup role"),
    };

    public static string ToSdp(this SdpSetup setup) => setup switch
    {
        SdpSetup.ActPass => "actpass",
        SdpSetup.Active => "active",
        SdpSetup.Passive => "passive",
        _ => "holdconn",
    };

    public static IEnumerable<SdpCandidate> GetCandidates(this SdpSection section) =>
        section.GetAttributes("candidate").Select(v => SdpCandidate.Parse(v));

    public static IEnumerable<SdpRtpMap> GetRtpMaps(this MediaDescription m) => m.GetAttributes("rtpmap").Select(SdpRtpMap.Parse);
    public static IEnumerable<SdpFmtp> GetFmtps(this MediaDescription m) => m.GetAttributes("fmtp").Select(SdpFmtp.Parse);
    public static IEnumerable<SdpRtcpFeedback> GetRtcpFeedback(this MediaDescription m) => m.GetAttributes("rtcp-fb").Select(SdpRtcpFeedback.Parse);
    public static IEnumerable<SdpExtMap> GetExtMaps(this MediaDescription m) => m.GetAttributes("extmap").Select(SdpExtMap.Parse);
    public static IEnumerable<SdpSsrc> GetSsrcs(this MediaDescription m) => m.GetAttributes("ssrc").Select(SdpSsrc.Parse);

    /// <summary><c>a=sctp-port</c> (RFC 8841 section 5), or null.</summary>
    public static int? GetSctpPort(this MediaDescription m) =>
        m.GetAttribute("sctp-port") is { } v && int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var p) && p <= 65535 ? p : null;

    /// <summary><c>a=max-message-size</c> (RFC 8841 section 6); 0 means no limit; null when absent.</summary>
    public static long? GetMaxMessageSize(this MediaDescription m) =>
        m.GetAttribute("max-message-size") is { } v && long.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var s) ? s : null;
}
