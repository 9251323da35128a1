using System.Buffers;
using System.Security.Cryptography;
using System.Text;

namespace Transport.Dtls.Crypto;

/// <summary>
/// The TLS 1.2 pseudo-random function (RFC 5246 section 5): PRF(secret, label, seed) = P_hash(secret, label + seed),
/// with the suite's hash (SHA-256, or SHA-384 for the *_SHA384 suites).
/// </summary>
internal static class TlsPrf
{
    /// <summary>Fills <paramref name="output"/> with PRF(secret, label, seed1 + seed2).</summary>
    public static void Derive(HashAlgorithmName hash, ReadOnlySpan<byte> secret, string label,
        ReadOnlySpan<byte> seed1, ReadOnlySpan<byte> seed2, Span<byte> output)
    {
        var labelLength = Encoding.ASCII.GetByteCount(label);
        var seedLength = labelLength + seed1.Length + seed2.Length;
        var hashLength = HashLength(hash);
        // A(i) || label || seed, kept in one buffer so each HMAC is a single call.
        var rented = ArrayPool<byte>.Shared.Rent(hashLength + seedLength);
        try
        {
            var buffer = rented.AsSpan(0, hashLength + seedLength);
            var seed = buffer[hashLength..];
            Encoding.ASCII.GetBytes(label, seed);
            seed1.CopyTo(seed[labelLength..]);
            seed2.CopyTo(seed[(labelLength + seed1.Length)..]);
            Span<byte> a = stackalloc byte[64];
            Span<byte> block = stackalloc byte[64];
            Span<byte> next = stackalloc byte[64];
            a = a[..hashLength];
            block = block[..hashLength];
            next = next[..hashLength];
            // One keyed HMAC state for the whole derivation: each one-shot HMACSHA256.HashData re-fetches the
            // algorithm and re-keys in OpenSSL, which measured more than twice the cost of append + reset.
            using var hmac = IncrementalHash.CreateHMAC(hash, secret);
            Hmac(hmac, seed, a);                        // A(1)
            var written = 0;
            while (written < output.Length)
            {
                a.CopyTo(buffer);
                Hmac(hmac, buffer, block);              // HMAC(secret, A(i) + seed)
                var n = Math.Min(hashLength, output.Length - written);
                block[..n].CopyTo(output[written..]);
                written += n;
                if (written < output.Length)
                {
                    Hmac(hmac, a, next);                // A(i+1), only when another block is needed
                    next.CopyTo(a);
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented, clearArray: true);
        }
    }

    public static int HashLength(HashAlgorithmName hash) => hash == HashAlgorithmName.SHA384 ? 48 : 32;

    private static void Hmac(IncrementalHash hmac, ReadOnlySpan<byte> data, Span<byte> destination)
    {
        hmac.AppendData(data);
        hmac.GetHashAndReset(destination);
    }

    public static void Hash(HashAlgorithmName hash, ReadOnlySpan<byte> data, Span<byte> destination)
    {
        if (hash == HashAlgorithmName.SHA384) SHA384.HashData(data, destination);
        else SHA256.HashData(data, destination);
    }
}
