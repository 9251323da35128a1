using Transport.Crypto;

namespace Transport.Rtp.Srtp;

/// <summary>
/// The SRTP key derivation function of RFC 3711 section 4.3 with key_derivation_rate 0 (the only rate DTLS-SRTP
/// uses, RFC 5764 section 4.1.2): session key material is the AES-CM keystream with the counter block
/// (master_salt XOR (label || 0^48)) * 2^16. RFC 7714 section 11 reuses it for GCM with the 96-bit master salt
/// left-aligned in the 112-bit field (zero padded), as libsrtp does.
/// </summary>
public static class SrtpKeyDerivation
{
    /// <summary>Labels of RFC 3711 section 4.3.1 and 4.3.2.</summary>
    public const byte LabelRtpEncryption = 0x00, LabelRtpAuthentication = 0x01, LabelRtpSalt = 0x02,
        LabelRtcpEncryption = 0x03, LabelRtcpAuthentication = 0x04, LabelRtcpSalt = 0x05;

    /// <summary>Fills <paramref name="destination"/> with the key material for <paramref name="label"/>.</summary>
    public static void Derive(ReadOnlySpan<byte> masterKey, ReadOnlySpan<byte> masterSalt, byte label, Span<byte> destination)
    {
        using var prf = new AesCounterMode(masterKey);
        Derive(prf, masterSalt, label, destination);
    }

    internal static void Derive(AesCounterMode prf, ReadOnlySpan<byte> masterSalt, byte label, Span<byte> destination)
    {
        if (masterSalt.Length > 14)
        {
            throw new ArgumentException("The master salt is at most 112 bits.", nameof(masterSalt));
        }

        Span<byte> iv = stackalloc byte[16];
        iv.Clear();
        masterSalt.CopyTo(iv);

        // key_id = label || r with r = 0 (48 bits): the label lands in octet 7 of the 14-octet salt.
        iv[7] ^= label;
        prf.Keystream(iv, destination);
    }
}
