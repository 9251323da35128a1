using System.Text;
using Transport.Streaming.Sdp;

namespace Transport.Streaming.Jsep;

/// <summary>
/// An SDP fragment of trickle ICE (RFC 8840 section 4.4, media type <c>application/trickle-ice-sdpfrag</c>): ICE
/// credentials, candidates and end-of-candidates, as WHIP and WHEP carry them in <c>PATCH</c> requests (RFC 9725
/// section 4.3). With credentials that differ from the current ones it asks for an ICE restart, and the answer
/// carries the answerer's new credentials. Also the helpers to turn a full description into such a fragment and to
/// put new credentials into a description.
/// </summary>
/// <param name="Ufrag">a=ice-ufrag, or null.</param>
/// <param name="Password">a=ice-pwd, or null.</param>
/// <param name="Candidates">Each a=candidate line's value (<c>candidate:...</c>, without <c>a=</c>), in order.</param>
/// <param name="EndOfCandidates">a=end-of-candidates was present.</param>
public sealed record IceSdpFragment(string? Ufrag, string? Password, IReadOnlyList<string> Candidates, bool EndOfCandidates)
{
    /// <summary>
    /// The a=mid of the media section each of <see cref="Candidates"/> came in (same order), or null for a candidate
    /// outside any section with a mid (RFC 8840 section 4.4 puts candidates under their m= line and a=mid).
    /// </summary>
    public IReadOnlyList<string?> CandidateMids { get; init; } = [];

    /// <summary>Reads a fragment (or a whole description): the first credentials found, every candidate with its section's mid.</summary>
    public static IceSdpFragment Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string? ufrag = null, password = null;
        var candidates = new List<string>();
        var mids = new List<string?>();
        var sectionStart = 0;
        string? mid = null;
        var end = false;
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.StartsWith("m=", StringComparison.Ordinal)) { mid = null; sectionStart = candidates.Count; }
            else if (line.StartsWith("a=mid:", StringComparison.Ordinal))
            {
                // a=mid may follow the section's candidates: it names them too.
                mid = line["a=mid:".Length..].Trim();
                for (var i = sectionStart; i < mids.Count; i++) mids[i] = mid;
            }
            else if (line.StartsWith("a=ice-ufrag:", StringComparison.Ordinal)) ufrag ??= line["a=ice-ufrag:".Length..].Trim();
            else if (line.StartsWith("a=ice-pwd:", StringComparison.Ordinal)) password ??= line["a=ice-pwd:".Length..].Trim();
            else if (line.StartsWith("a=candidate:", StringComparison.Ordinal)) { candidates.Add(line[2..]); mids.Add(mid); }
            else if (line == "a=end-of-candidates") end = true;
        }
        return new IceSdpFragment(ufrag, password, candidates, end) { CandidateMids = mids };
    }

    /// <summary>
    /// The fragment of a description: its credentials, then its first media section's m= line and mid with that
    /// section's candidates (with BUNDLE the others share its transport), and end-of-candidates when it has it.
    /// </summary>
    public static string FromDescription(string sdp)
    {
        ArgumentNullException.ThrowIfNull(sdp);
        var f = Parse(sdp);
        string? media = null, mid = null;
        var sectionCandidates = new List<string>();
        var sectionEnd = false;
        var section = 0;
        foreach (var raw in sdp.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.StartsWith("m=", StringComparison.Ordinal)) { section++; if (section == 1) media = line; continue; }
            if (section != 1) continue;
            if (line.StartsWith("a=mid:", StringComparison.Ordinal)) mid ??= line["a=mid:".Length..];
            else if (line.StartsWith("a=candidate:", StringComparison.Ordinal)) sectionCandidates.Add(line[2..]);
            else if (line == "a=end-of-candidates") sectionEnd = true;
        }
        var b = new StringBuilder();
        if (f.Ufrag is not null) b.Append("a=ice-ufrag:").Append(f.Ufrag).Append("\r\n");
        if (f.Password is not null) b.Append("a=ice-pwd:").Append(f.Password).Append("\r\n");
        if (media is not null)
        {
            b.Append(media).Append("\r\n");
            if (mid is not null) b.Append("a=mid:").Append(mid).Append("\r\n");
            foreach (var c in sectionCandidates) b.Append("a=").Append(c).Append("\r\n");
            if (sectionEnd) b.Append("a=end-of-candidates\r\n");
        }
        return b.ToString();
    }

    /// <summary>
    /// <paramref name="sdp"/> with every a=ice-ufrag and a=ice-pwd set to the given credentials and no candidate or
    /// end-of-candidates line: the description an ICE restart signalled by fragment stands for (its candidates come
    /// separately, trickled).
    /// </summary>
    /// <exception cref="ArgumentException">The credentials break RFC 8839 section 5.4 (ufrag 4 to 256, password 22 to 256 ice-chars).</exception>
    public static string WithCredentials(string sdp, string ufrag, string password)
    {
        ArgumentNullException.ThrowIfNull(sdp);
        Validate(ufrag, password);
        var b = new StringBuilder(sdp.Length);
        foreach (var raw in sdp.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.Length == 0) continue;
            if (line.StartsWith("a=candidate:", StringComparison.Ordinal) || line == "a=end-of-candidates") continue;
            if (line.StartsWith("a=ice-ufrag:", StringComparison.Ordinal)) line = "a=ice-ufrag:" + ufrag;
            else if (line.StartsWith("a=ice-pwd:", StringComparison.Ordinal)) line = "a=ice-pwd:" + password;
            b.Append(line).Append("\r\n");
        }
        return b.ToString();
    }

    /// <summary>
    /// A copy of <paramref name="sdp"/> (no text in between) with every a=ice-ufrag and a=ice-pwd set to the given
    /// credentials and no candidate or end-of-candidates attribute: as <see cref="WithCredentials(string, string, string)"/>,
    /// on a description parsed once.
    /// </summary>
    /// <exception cref="ArgumentException">The credentials break RFC 8839 section 5.4.</exception>
    public static SessionDescription WithCredentials(SessionDescription sdp, string ufrag, string password)
    {
        ArgumentNullException.ThrowIfNull(sdp);
        Validate(ufrag, password);
        var copy = sdp.Clone();
        Rewrite(copy);
        foreach (var m in copy.Media) Rewrite(m);
        return copy;

        void Rewrite(SdpSection section)
        {
            section.Attributes.RemoveAll(a => a.Name is "candidate" or "end-of-candidates");
            for (var i = 0; i < section.Attributes.Count; i++)
            {
                if (section.Attributes[i].Name == "ice-ufrag") section.Attributes[i] = new SdpAttribute("ice-ufrag", ufrag);
                else if (section.Attributes[i].Name == "ice-pwd") section.Attributes[i] = new SdpAttribute("ice-pwd", password);
            }
        }
    }

    /// <summary>The first a=ice-ufrag of a description (session level, then the media sections in order), as <see cref="Parse"/> finds it; or null.</summary>
    public static string? UfragOf(SessionDescription sdp)
    {
        ArgumentNullException.ThrowIfNull(sdp);
        if (sdp.GetAttribute("ice-ufrag") is { } u) return u.Trim();
        foreach (var m in sdp.Media)
            if (m.GetAttribute("ice-ufrag") is { } mu) return mu.Trim();
        return null;
    }

    /// <summary>Checks ICE credentials against RFC 8839 section 5.4: ufrag 4 to 256 and password 22 to 256 characters, each ALPHA, DIGIT, '+' or '/'.</summary>
    /// <exception cref="ArgumentException">Naming which one is wrong and why.</exception>
    public static void Validate(string ufrag, string password)
    {
        ArgumentNullException.ThrowIfNull(ufrag);
        ArgumentNullException.ThrowIfNull(password);
        if (ufrag.Length is < 4 or > 256 || !ufrag.All(Transport.Ice.IceCredentials.IsIceChar))
            throw new ArgumentException($"ice-ufrag must be 4 to 256 characters of A-Z, a-z, 0-9, '+' and '/' (got {ufrag.Length})", nameof(ufrag));
        if (password.Length is < 22 or > 256 || !password.All(Transport.Ice.IceCredentials.IsIceChar))
            throw new ArgumentException($"ice-pwd must be 22 to 256 characters of A-Z, a-z, 0-9, '+' and '/' (got {password.Length})", nameof(password));
    }

}
