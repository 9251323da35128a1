using Transport.Ice;

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
    public string? GetExtension(string name) => ToFields().GetExtension(name);

    /// <summary>The attribute value, without the leading <c>candidate:</c>.</summary>
    public string ToAttributeValue() => ToFields().ToAttributeValue();

    /// <summary>The whole attribute text, <c>candidate:...</c>, as trickled in signaling.</summary>
    public override string ToString() => "candidate:" + ToAttributeValue();

    /// <summary>The fields as ICE reads and writes them.</summary>
    public IceCandidateFields ToFields() => new(Foundation, Component, Transport, Priority, Address, Port, Type, RelatedAddress, RelatedPort, Extensions);

    /// <summary>The candidate as signalled, from one of ICE's (no text in between).</summary>
    public static SdpCandidate From(IceCandidate candidate)
    {
        ArgumentNullException.ThrowIfNull(candidate);
        return From(candidate.ToFields());
    }

    /// <summary>The candidate of these fields.</summary>
    public static SdpCandidate From(in IceCandidateFields f) =>
        new(f.Foundation, f.Component, f.Transport, f.Priority, f.Address, f.Port, f.Type, f.RelatedAddress, f.RelatedPort, f.Extensions);

    /// <summary>
    /// The candidate ICE uses (no text in between), or false when ICE cannot use it: another transport than UDP or
    /// TCP, a name instead of an IP address (mDNS), an unknown type (see <see cref="IceCandidate.TryCreate"/>).
    /// </summary>
    public bool TryToIceCandidate(out IceCandidate candidate) => IceCandidate.TryCreate(ToFields(), out candidate);

    /// <summary>
    /// Parses a candidate, with or without the <c>a=</c> and <c>candidate:</c> prefixes (the grammar is ICE's one
    /// reader, <see cref="IceCandidateFields.TryRead"/>). Throws <see cref="SdpParseException"/> naming the reason.
    /// </summary>
    public static SdpCandidate Parse(string text, int lineNumber = 0)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (!IceCandidateFields.TryRead(text, out var fields, out var error)) throw new SdpParseException(lineNumber, text, "candidate: " + error);
        return From(fields);
    }
}
