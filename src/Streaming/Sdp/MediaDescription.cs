using System.Text;

namespace Transport.Streaming.Sdp;

/// <summary>An <c>m=</c> section (RFC 8866 section 5.14) with its lines.</summary>
public sealed class MediaDescription : SdpSection
{
    public MediaDescription(string media, int port, string protocol, IEnumerable<string> formats)
    {
        if (!SdpAttribute.IsToken(media)) throw new ArgumentException("Media type must be a token.", nameof(media));
        if (port is < 0 or > 65535) throw new ArgumentOutOfRangeException(nameof(port));
        Media = media;
        Port = port;
        Protocol = protocol ?? throw new ArgumentNullException(nameof(protocol));
        Formats = new List<string>(formats);
    }

    /// <summary><c>audio</c>, <c>video</c>, <c>application</c>, ...</summary>
    public string Media { get; set; }

    /// <summary>The port; 0 rejects the section (RFC 8829 section 5.3.1).</summary>
    public int Port { get; set; }

    /// <summary>The number of ports after a slash, if written (<c>m=audio 9/2 ...</c>).</summary>
    public int? PortCount { get; set; }

    /// <summary><c>UDP/TLS/RTP/SAVPF</c>, <c>UDP/DTLS/SCTP</c>, ...</summary>
    public string Protocol { get; set; }

    /// <summary>Payload types, or <c>webrtc-datachannel</c>.</summary>
    public List<string> Formats { get; }

    /// <summary>The <c>i=</c> line, if any.</summary>
    public string? Information { get; set; }

    /// <summary>The <c>a=mid</c> value (RFC 9143), or null.</summary>
    public string? Mid => GetAttribute("mid");

    /// <summary>Whether the section was rejected (port 0 without <c>a=bundle-only</c>).</summary>
    public bool IsRejected => Port == 0 && !HasAttribute("bundle-only");

    /// <summary>A deep copy: changing it (attributes, formats, port) leaves this section as it is.</summary>
    public MediaDescription Clone()
    {
        var copy = new MediaDescription(Media, Port, Protocol, Formats) { PortCount = PortCount, Information = Information };
        CopyTo(copy);
        return copy;
    }

    internal void Write(StringBuilder sb)
    {
        sb.Append("m=").Append(Media).Append(' ').Append(Port);
        if (PortCount is { } n) sb.Append('/').Append(n);
        sb.Append(' ').Append(Protocol);
        foreach (var f in Formats) sb.Append(' ').Append(f);
        sb.Append("\r\n");
        if (Information is not null) sb.Append("i=").Append(Information).Append("\r\n");
        WriteCommon(sb);
        WriteAttributes(sb);
    }

    internal static MediaDescription Parse(string value, int lineNumber, string line)
    {
        var f = value.Split(' ');
        if (f.Length < 3) throw new SdpParseException(lineNumber, line, "m= needs media, port and protocol");
        var portText = f[1];
        int? count = null;
        var slash = portText.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0)
        {
            if (!int.TryParse(portText.AsSpan(slash + 1), out var c) || c < 1)
                throw new SdpParseException(lineNumber, line, "m= port count is not a positive number");
            count = c;
            portText = portText[..slash];
        }
        if (!int.TryParse(portText, out var port) || port is < 0 or > 65535)
            throw new SdpParseException(lineNumber, line, "m= port is not a number from 0 to 65535");
        if (!SdpAttribute.IsToken(f[0])) throw new SdpParseException(lineNumber, line, "m= media is not a token");
        return new MediaDescription(f[0], port, f[2], f.Skip(3).Where(x => x.Length > 0)) { PortCount = count };
    }
}
