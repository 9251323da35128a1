using System.Buffers;
using System.Security.Cryptography;

namespace Transport.Crypto;

/// <summary>
/// Verifies and decrypts with the platform's <see cref="AesGcm"/> or <see cref="ChaCha20Poly1305"/> without an
/// exception for a forged input. Their <c>Decrypt</c> throws <see cref="AuthenticationTagMismatchException"/> on
/// a wrong tag, which costs tens of microseconds per forged packet: a flood of them would cost far more than the
/// packets themselves. Both AEADs are a stream cipher plus a MAC over the ciphertext, so the same check is made with
/// two encryptions: encrypting the ciphertext with the same nonce gives the plaintext (the keystream is the same),
/// and encrypting that plaintext gives back the ciphertext and the tag the sender must have sent, which is compared
/// in constant time. Nothing is sent under these nonces, so the repeated nonce reveals nothing. Used where our own
/// AES-NI/PCLMULQDQ GCM (<see cref="GcmCipher"/>, which checks the tag itself) is not available (ARM64, or a CPU
/// without those instructions) and for ChaCha20-Poly1305. Costs two passes instead of one.
/// </summary>
internal static class AeadOpen
{
    private const int StackLimit = 2048;

    /// <summary>
    /// Opens <paramref name="ciphertext"/> into <paramref name="plaintext"/> (the same memory or not overlapping;
    /// at least as long). False when the tag does not verify; then <paramref name="plaintext"/> is cleared.
    /// </summary>
    public static bool TryDecrypt(AesGcm aead, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext,
        ReadOnlySpan<byte> aad) =>
        TryDecrypt(new Gcm(aead), nonce, ciphertext, tag, plaintext, aad);

    /// <inheritdoc cref="TryDecrypt(AesGcm, ReadOnlySpan{byte}, ReadOnlySpan{byte}, ReadOnlySpan{byte}, Span{byte}, ReadOnlySpan{byte})"/>
    public static bool TryDecrypt(ChaCha20Poly1305 aead, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext,
        ReadOnlySpan<byte> aad) =>
        TryDecrypt(new ChaCha(aead), nonce, ciphertext, tag, plaintext, aad);

    // The two platform AEADs share no interface: a struct per cipher keeps the one body generic without a delegate.
    private interface IEncrypt
    {
        void Encrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> input, Span<byte> output, Span<byte> tag, ReadOnlySpan<byte> aad);
    }

    private readonly struct Gcm(AesGcm aead) : IEncrypt
    {
        public void Encrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> input, Span<byte> output, Span<byte> tag, ReadOnlySpan<byte> aad) =>
            aead.Encrypt(nonce, input, output, tag, aad);
    }

    private readonly struct ChaCha(ChaCha20Poly1305 aead) : IEncrypt
    {
        public void Encrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> input, Span<byte> output, Span<byte> tag, ReadOnlySpan<byte> aad) =>
            aead.Encrypt(nonce, input, output, tag, aad);
    }

    private static bool TryDecrypt<T>(T aead, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag,
        Span<byte> plaintext, ReadOnlySpan<byte> aad)
        where T : struct, IEncrypt
    {
        Span<byte> expected = stackalloc byte[16];
        expected = expected[..tag.Length];
        var n = ciphertext.Length;
        var output = plaintext[..n];
        aead.Encrypt(nonce, ciphertext, output, expected, aad);
        byte[]? rented = null;
        var scratch = n <= StackLimit ? stackalloc byte[n] : (rented = ArrayPool<byte>.Shared.Rent(n)).AsSpan(0, n);
        try
        {
            aead.Encrypt(nonce, output, scratch, expected, aad);
            return Verify(expected, tag, output);
        }
        finally
        {
            if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private static bool Verify(ReadOnlySpan<byte> expected, ReadOnlySpan<byte> tag, Span<byte> output)
    {
        if (CryptographicOperations.FixedTimeEquals(expected, tag)) return true;
        CryptographicOperations.ZeroMemory(output);
        return false;
    }
}
