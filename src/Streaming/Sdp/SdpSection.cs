namespace Transport.Streaming.Sdp;

/// <summary>What the session level and the media sections have in common: connection, bandwidths and attributes.</summary>
public abstract class SdpSection
{
    /// <summary>The <c>c=</c> line, if any.</summary>
    public SdpConnection? Connection { get; set; }

    /// <summary>The <c>b=</c> lines, as written (e.g. <c>AS:64</c>).</summary>
    public List<string> Bandwidths { get; } = new();

    /// <summary>The <c>a=</c> lines in order.</summary>
    public List<SdpAttribute> Attributes { get; } = new();

    /// <summary>The value of the first attribute named <paramref name="name"/>, or null (also for a property attribute).</summary>
    public string? GetAttribute(string name)
    {
        foreach (var a in Attributes) if (a.Name == name) return a.Value;
        return null;
    }

    /// <summary>The values of every attribute named <paramref name="name"/>.</summary>
    public IEnumerable<string> GetAttributes(string name)
    {
        foreach (var a in Attributes) if (a.Name == name && a.Value is not null) yield return a.Value;
    }

    /// <summary>Whether an attribute named <paramref name="name"/> is present.</summary>
    public bool HasAttribute(string name)
    {
        foreach (var a in Attributes) if (a.Name == name) return true;
        return false;
    }

    /// <summary>Adds an attribute; a null value makes a property attribute.</summary>
    public void AddAttribute(string name, string? value = null)
    {
        if (!SdpAttribute.IsToken(name)) throw new ArgumentException($"'{name}' is not an SDP token.", nameof(name));
        if (value is not null && (value.Contains('\r') || value.Contains('\n')))
            throw new ArgumentException("An attribute value cannot hold a line break.", nameof(value));
        Attributes.Add(new SdpAttribute(name, value));
    }

    /// <summary>Removes every attribute named <paramref name="name"/>.</summary>
    public void RemoveAttributes(string name) => Attributes.RemoveAll(a => a.Name == name);

    /// <summary>Copies this section's connection, bandwidths and attributes into <paramref name="copy"/> (every one immutable).</summary>
    private protected void CopyTo(SdpSection copy)
    {
        copy.Connection = Connection;
        copy.Bandwidths.AddRange(Bandwidths);
        copy.Attributes.AddRange(Attributes);
    }

    internal void WriteCommon(System.Text.StringBuilder sb)
    {
        if (Connection is not null) sb.Append("c=").Append(Connection).Append("\r\n");
        foreach (var b in Bandwidths) sb.Append("b=").Append(b).Append("\r\n");
    }

    internal void WriteAttributes(System.Text.StringBuilder sb)
    {
        foreach (var a in Attributes) sb.Append("a=").Append(a).Append("\r\n");
    }
}
