namespace Transport.Streaming.Sdp;

/// <summary>The <c>o=</c> line (RFC 8866 section 5.2).</summary>
public sealed record SdpOrigin(string UserName, ulong SessionId, ulong SessionVersion, string NetworkType, string AddressType, string Address)
{
    /// <summary>The origin JSEP uses (RFC 8829 section 5.2.1): "-", a random 62-bit id, version 2, IN IP4 127.0.0.1.</summary>
    public static SdpOrigin Create(ulong sessionId) => new("-", sessionId, 2, "IN", "IP4", "127.0.0.1");

    public override string ToString() => $"{UserName} {SessionId} {SessionVersion} {NetworkType} {AddressType} {Address}";

    internal static SdpOrigin Parse(string value, int lineNumber, string line)
    {
        var f = value.Split(' ');
        if (f.Length != 6) throw new SdpParseException(lineNumber, line, "o= needs 6 fields");
        if (!ulong.TryParse(f[1], out var id)) throw new SdpParseException(lineNumber, line, "o= session id is not a number");
        if (!ulong.TryParse(f[2], out var version)) throw new SdpParseException(lineNumber, line, "o= session version is not a number");
        return new SdpOrigin(f[0], id, version, f[3], f[4], f[5]);
    }
}

/// <summary>A <c>c=</c> line (RFC 8866 section 5.7).</summary>
public sealed record SdpConnection(string NetworkType, string AddressType, string Address)
{
    public override string ToString() => $"{NetworkType} {AddressType} {Address}";

    internal static SdpConnection Parse(string value, int lineNumber, string line)
    {
        var f = value.Split(' ');
        if (f.Length != 3) throw new SdpParseException(lineNumber, line, "c= needs 3 fields");
        return new SdpConnection(f[0], f[1], f[2]);
    }
}
