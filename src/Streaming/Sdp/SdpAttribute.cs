namespace Transport.Streaming.Sdp;

/// <summary>An <c>a=</c> line (RFC 8866 section 5.13): a property (<c>a=rtcp-mux</c>) or a name and a value.</summary>
public sealed record SdpAttribute(string Name, string? Value)
{
    /// <summary>The line as written, without <c>a=</c>.</summary>
    public override string ToString() => Value is null ? Name : Name + ":" + Value;

    internal static SdpAttribute Parse(string text, int lineNumber, string line)
    {
        var colon = text.IndexOf(':', StringComparison.Ordinal);
        var name = colon < 0 ? text : text[..colon];
        if (name.Length == 0 || !IsToken(name))
            throw new SdpParseException(lineNumber, line, "attribute name is not a token");
        return new SdpAttribute(name, colon < 0 ? null : text[(colon + 1)..]);
    }

    /// <summary>RFC 8866 section 9 token characters.</summary>
    internal static bool IsToken(ReadOnlySpan<char> s)
    {
        foreach (var c in s)
            if (c <= 0x20 || c >= 0x7F || "\"(),/:;<=>?@[\\]{}".Contains(c, StringComparison.Ordinal)) return false;
        return !s.IsEmpty;
    }
}
