using System.Text;

namespace Transport.Ice.Stun;

/// <summary>
/// The SASLprep profile of stringprep (RFC 4013) as RFC 5389 section 15.4 applies it to passwords, reduced to
/// what a password needs: B.1 characters mapped to nothing, non-ASCII spaces (C.1.2) mapped to SPACE, NFKC,
/// and the prohibited control and private-use characters refused. RFC 5769 section 2.4 uses it:
/// "The&lt;U+00AD&gt;M&lt;U+00AA&gt;tr&lt;U+2168&gt;" becomes "TheMatrIX". (RFC 8489 names OpaqueString of
/// RFC 8265 instead; for the passwords of its test vector both give the same result.)
/// </summary>
public static class SaslPrep
{
    /// <summary>Prepares <paramref name="value"/>; throws <see cref="ArgumentException"/> on prohibited characters.</summary>
    public static string Prepare(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var ascii = true;
        foreach (var c in value) if (c >= 0x7F || c < 0x20) { ascii = false; break; }
        if (ascii) return value;

        var mapped = new StringBuilder(value.Length);
        foreach (var c in value)
        {
            if (IsMappedToNothing(c)) continue;
            mapped.Append(IsNonAsciiSpace(c) ? ' ' : c);
        }
        var normalized = mapped.ToString().Normalize(NormalizationForm.FormKC);
        foreach (var c in normalized)
        {
            if (c < 0x20 || (c >= 0x7F && c <= 0x9F) || (c >= 0xE000 && c <= 0xF8FF) || c == 0xFFFE || c == 0xFFFF)
                throw new ArgumentException("The string holds a character that SASLprep prohibits (RFC 4013 section 2.3).", nameof(value));
        }
        return normalized;
    }

    // RFC 3454 table B.1.
    private static bool IsMappedToNothing(char c) =>
        c is '\u00AD' or '\u034F' or '\u1806' or (>= '\u180B' and <= '\u180D') or (>= '\u200B' and <= '\u200D')
            or '\u2060' or (>= '\uFE00' and <= '\uFE0F') or '\uFEFF';

    // RFC 3454 table C.1.2.
    private static bool IsNonAsciiSpace(char c) =>
        c is '\u00A0' or '\u1680' or (>= '\u2000' and <= '\u200B') or '\u202F' or '\u205F' or '\u3000';
}
