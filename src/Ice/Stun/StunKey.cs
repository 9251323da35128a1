using System.Security.Cryptography;
using System.Text;

using Transport.Crypto;

namespace Transport.Ice.Stun;

/// <summary>
/// The key of MESSAGE-INTEGRITY and MESSAGE-INTEGRITY-SHA256 (RFC 8489 section 9): short-term (the password)
/// or long-term (a hash of username:realm:password). It keeps one HMAC state per algorithm (for SHA-1 the
/// pre-hashed pads, see <see cref="HmacSha1"/>) so that computing and checking integrity on the hot path
/// allocates nothing. Not thread-safe: one agent (one logical thread)
/// uses a key at a time, as the sans-IO cores are driven.
/// </summary>
public sealed class StunKey : IDisposable
{
    private readonly byte[] _key;
    private HmacSha1? _sha1;
    private IncrementalHash? _sha256;

    private StunKey(byte[] key) => _key = key;

    /// <summary>The raw key bytes.</summary>
    public ReadOnlySpan<byte> Bytes => _key;

    /// <summary>Uses <paramref name="key"/> as it is (copied).</summary>
    public static StunKey FromBytes(ReadOnlySpan<byte> key) => new(key.ToArray());

    /// <summary>
    /// Short-term credential key (RFC 8489 section 9.1.1): the SASLprep'ed password in UTF-8. ICE uses this with the remote or local ice-pwd.
    /// </summary>
    public static StunKey ShortTerm(string password) => new(Encoding.UTF8.GetBytes(SaslPrep.Prepare(password)));

    /// <summary>
    /// Long-term credential key (RFC 8489 section 9.2.2): MD5 or SHA-256 of
    /// <c>username ":" realm ":" SASLprep(password)</c> in UTF-8.
    /// </summary>
    public static StunKey LongTerm(string username, string realm, string password, StunPasswordAlgorithm algorithm = StunPasswordAlgorithm.Md5)
    {
        ArgumentNullException.ThrowIfNull(username);
        ArgumentNullException.ThrowIfNull(realm);
        var input = Encoding.UTF8.GetBytes(username + ":" + realm + ":" + SaslPrep.Prepare(password));
        return algorithm switch
        {
            StunPasswordAlgorithm.Md5 => new(MD5.HashData(input)),
            StunPasswordAlgorithm.Sha256 => new(SHA256.HashData(input)),
            _ => throw new ArgumentOutOfRangeException(nameof(algorithm)),
        };
    }

    /// <summary>USERHASH value (RFC 8489 section 14.4): SHA-256 of <c>username ":" realm</c>.</summary>
    public static byte[] ComputeUserHash(string username, string realm)
    {
        ArgumentNullException.ThrowIfNull(username);
        ArgumentNullException.ThrowIfNull(realm);
        return SHA256.HashData(Encoding.UTF8.GetBytes(username + ":" + realm));
    }

    /// <summary>HMAC-SHA1 over <paramref name="first"/> then <paramref name="second"/> into 20 bytes of <paramref name="destination"/>.</summary>
    internal void ComputeHmacSha1(ReadOnlySpan<byte> first, ReadOnlySpan<byte> second, Span<byte> destination)
    {
        var h = _sha1 ??= new HmacSha1(_key);
        h.Compute(first, second, destination);
    }

    /// <summary>HMAC-SHA256 over <paramref name="first"/> then <paramref name="second"/> into 32 bytes of <paramref name="destination"/>.</summary>
    internal void ComputeHmacSha256(ReadOnlySpan<byte> first, ReadOnlySpan<byte> second, Span<byte> destination)
    {
        var h = _sha256 ??= IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, _key);
        h.AppendData(first);
        if (!second.IsEmpty) h.AppendData(second);
        h.GetHashAndReset(destination);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _sha256?.Dispose();
        _sha1 = null;
        _sha256 = null;
    }
}
