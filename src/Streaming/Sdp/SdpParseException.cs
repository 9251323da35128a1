namespace Transport.Streaming.Sdp;

/// <summary>A session description that does not follow RFC 8866 (or the attribute grammar it uses).</summary>
public sealed class SdpParseException : FormatException
{
    public SdpParseException(int lineNumber, string line, string reason)
        : base($"SDP line {lineNumber}: {reason} (\"{Truncate(line)}\")")
    {
        LineNumber = lineNumber;
        Line = line;
        Reason = reason;
    }

    /// <summary>The 1-based number of the offending line, or 0 when the description as a whole is wrong.</summary>
    public int LineNumber { get; }

    /// <summary>The offending line.</summary>
    public string Line { get; }

    /// <summary>What is wrong with it.</summary>
    public string Reason { get; }

    private static string Truncate(string s) => s.Length <= 120 ? s : s[..120] + "...";
}
