using System.Text;

namespace Transport.Streaming.Sdp;

/// <summary>
/// A session description (RFC 8866): parsed from text with <see cref="Parse"/>, written back with
/// <see cref="ToString"/> (CRLF line ends). Unknown attributes are kept in order, so a parsed description
/// writes back line for line.
/// </summary>
public sealed class SessionDescription : SdpSection
{
    public SessionDescription(SdpOrigin origin, string sessionName = "-")
    {
        Origin = origin ?? throw new ArgumentNullException(nameof(origin));
        SessionName = sessionName;
    }

    /// <summary>The <c>v=</c> line: always 0.</summary>
    public int Version => 0;
    /// <summary>The <c>o=</c> line.</summary>
    public SdpOrigin Origin { get; set; }
    /// <summary>The <c>s=</c> line (JSEP writes "-").</summary>
    public string SessionName { get; set; }
    /// <summary>The <c>i=</c>, <c>u=</c>, <c>e=</c>, <c>p=</c> lines and the other session lines kept as written.</summary>
    public List<string> OtherLines { get; } = new();
    /// <summary>The <c>t=</c> lines (JSEP writes "0 0").</summary>
    public List<string> Timings { get; } = new() { "0 0" };
    /// <summary>The media sections in order.</summary>
    public List<MediaDescription> Media { get; } = new();

    /// <summary>The mids of the first <c>a=group:BUNDLE</c> (RFC 9143), or empty.</summary>
    public IReadOnlyList<string> BundleGroup
    {
        get
        {
            foreach (var g in GetAttributes("group"))
                if (g.StartsWith("BUNDLE", StringComparison.Ordinal) && (g.Length == 6 || g[6] == ' '))
                    return g.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1..];
            return [];
        }
    }

    /// <summary>
    /// A deep copy (no text in between): changing the copy's lines, attributes or media sections leaves this
    /// description as it is. Attributes, origin and connection are immutable records and are shared.
    /// </summary>
    public SessionDescription Clone()
    {
        var copy = new SessionDescription(Origin, SessionName);
        copy.OtherLines.AddRange(OtherLines);
        copy.Timings.Clear();
        copy.Timings.AddRange(Timings);
        CopyTo(copy);
        foreach (var m in Media) copy.Media.Add(m.Clone());
        return copy;
    }

    /// <summary>Writes the description with CRLF line ends.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder(1024);
        sb.Append("v=0\r\n");
        sb.Append("o=").Append(Origin).Append("\r\n");
        sb.Append("s=").Append(SessionName).Append("\r\n");
        foreach (var l in OtherLines) sb.Append(l).Append("\r\n");
        WriteCommon(sb);
        foreach (var t in Timings) sb.Append("t=").Append(t).Append("\r\n");
        WriteAttributes(sb);
        foreach (var m in Media) m.Write(sb);
        return sb.ToString();
    }

    /// <summary>The largest description accepted, in characters (a guard against memory abuse by a signaling peer).</summary>
    public const int MaxLength = 256 * 1024;

    /// <summary>Parses a description. Throws <see cref="SdpParseException"/> with the line number when it is malformed.</summary>
    public static SessionDescription Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length > MaxLength) throw new SdpParseException(0, "", $"description longer than {MaxLength} characters");
        var lines = text.Split('\n');
        SessionDescription? session = null;
        MediaDescription? media = null;
        var timingSeen = false;
        var sessionNameSeen = false;
        var number = 0;
        foreach (var raw in lines)
        {
            number++;
            var line = raw.EndsWith('\r') ? raw[..^1] : raw;
            if (line.Length == 0)
            {
                // Only trailing empty lines are tolerated.
                continue;
            }
            // RFC 8866 section 9: a value is a byte-string, which excludes NUL, CR and LF; a bare CR inside a line
            // would also be refused when the answer is written (SdpSection.AddAttribute), so refuse it here.
            if (line.AsSpan().IndexOfAny('\r', '\0') >= 0)
                throw new SdpParseException(number, line, "a CR or NUL character inside a line");
            if (line.Length < 2 || line[1] != '=' || line[0] < 'a' || line[0] > 'z')
                throw new SdpParseException(number, line, "not a '<type>=<value>' line");
            var type = line[0];
            var value = line[2..];
            if (session is null)
            {
                if (number == 1 && type != 'v') throw new SdpParseException(number, line, "the first line must be v=0");
                if (type == 'v')
                {
                    if (value != "0") throw new SdpParseException(number, line, "only SDP version 0 is known");
                    continue;
                }
                if (type != 'o') throw new SdpParseException(number, line, "o= must follow v=");
                session = new SessionDescription(SdpOrigin.Parse(value, number, line));
                session.Timings.Clear();
                continue;
            }
            if (!sessionNameSeen)
            {
                if (type != 's') throw new SdpParseException(number, line, "s= must follow o=");
                session.SessionName = value;
                sessionNameSeen = true;
                continue;
            }
            if (media is null)
            {
                switch (type)
                {
                    case 'i' or 'u' or 'e' or 'p' or 'z' or 'k' or 'r': session.OtherLines.Add(line); break;
                    case 'c': session.Connection = SdpConnection.Parse(value, number, line); break;
                    case 'b': session.Bandwidths.Add(value); break;
                    case 't': session.Timings.Add(value); timingSeen = true; break;
                    case 'a': session.Attributes.Add(SdpAttribute.Parse(value, number, line)); break;
                    case 'm':
                        if (!timingSeen) throw new SdpParseException(number, line, "t= must come before the first m=");
                        media = MediaDescription.Parse(value, number, line);
                        session.Media.Add(media);
                        break;
                    default: throw new SdpParseException(number, line, $"unknown line type '{type}'");
                }
                continue;
            }
            switch (type)
            {
                case 'm': media = MediaDescription.Parse(value, number, line); session.Media.Add(media); break;
                case 'i': media.Information = value; break;
                case 'c': media.Connection = SdpConnection.Parse(value, number, line); break;
                case 'b': media.Bandwidths.Add(value); break;
                case 'k': break; // obsolete (RFC 8866 section 5.12): ignored
                case 'a': media.Attributes.Add(SdpAttribute.Parse(value, number, line)); break;
                default: throw new SdpParseException(number, line, $"line type '{type}' is not allowed in a media section");
            }
        }
        if (session is null) throw new SdpParseException(0, "", "no v= and o= lines");
        if (!sessionNameSeen) throw new SdpParseException(0, "", "no s= line");
        if (!timingSeen) throw new SdpParseException(0, "", "no t= line");
        return session;
    }
}
