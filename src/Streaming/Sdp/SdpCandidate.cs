using System.Globalization;
using System.Text;

namespace Transport.Streaming.Sdp;

/// <summary>
/// An ICE candidate as SDP carries it (RFC 8839 section 5.1):
/// <c>candidate:foundation component transport priority address port typ type [raddr a rport p] *(name value)</c>.
/// </summary>
public sealed record SdpCandidate(
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
        var sb = new StringBuilder(96);
        sb.Append(Foundation).Append(' ').Append(Component).Append(' ').Append(Transport).Append(' ')
          .Append(Priority).Append(' ').Append(Address).Append(' ').Append(Port).Append(" typ ").Append(Type);
        if (RelatedAddress is not null) sb.Append(" raddr ").Append(RelatedAddress);
        if (RelatedPort is not null) sb.Append(" rport ").Append(RelatedPort.Value);
        if (Extensions is not null)
            foreach (var (k, v) in Extensions) sb.Append(' ').Append(k).Append(' ').Append(v);
        return sb.ToString();
    }

    /// <summary>The whole attribute text, <c>candidate:...</c>, as trickled in signaling.</summary>
    public override string ToString() => "candidate:" + ToAttributeValue();

    /// <summary>Parses a candidate, with or without the <c>a=</c> and <c>candidate:</c> prefixes.</summary>
    public static SdpCandidate Parse(string text, int lineNumber = 0)
    {
        ArgumentNullException.ThrowIfNull(text);
        var value = text;
        if (value.StartsWith("a=", StringComparison.Ordinal)) value = value[2..];
        if (value.StartsWith("candidate:", StringComparison.Ordinal)) value = value[10..];
        var f = value.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        SdpParseException Fail(string why) => new(lineNumber, text, "candidate: " + why);
        if (f.Length < 8) throw Fail("needs foundation, component, transport, priority, address, port, 'typ' and type");
        if (f[0].Length is 0 or > 32) throw Fail("foundation must be 1 to 32 characters");
        if (!int.TryParse(f[1], NumberStyles.None, CultureInfo.InvariantCulture, out var component) || component is < 1 or > 256)
            throw Fail("component is not a number from 1 to 256");
        if (!uint.TryParse(f[3], NumberStyles.None, CultureInfo.InvariantCulture, out var priority) || priority == 0)
            throw Fail("priority is not a number from 1 to 2^31-1");
        if (!int.TryParse(f[5], NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port > 65535)
            throw Fail("port is not a number from 0 to 65535");
        if (f[6] != "typ") throw Fail("'typ' expected after the port");
        string? raddr = null;
        int? rport = null;
        List<KeyValuePair<string, string>>? ext = null;
        for (var i = 8; i < f.Length; i += 2)
        {
            if (i + 1 >= f.Length) throw Fail($"extension '{f[i]}' has no value");
            switch (f[i])
            {
                case "raddr": raddr = f[i + 1]; break;
                case "rport":
                    if (!int.TryParse(f[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out var rp) || rp > 65535)
                        throw Fail("rport is not a port number");
                    rport = rp;
                    break;
                default: (ext ??= new()).Add(new(f[i], f[i + 1])); break;
            }
        }
        return new SdpCandidate(f[0], component, f[2].ToLowerInvariant(), priority, f[4], port, f[7], raddr, rport, ext);
    }
}
