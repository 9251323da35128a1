using System.Security.Cryptography;

namespace Transport.Dtls.Crypto;

/// <summary>Parameters of a cipher suite that the key schedule needs (RFC 5246 section 6.3, RFC 5288, RFC 7905).</summary>
internal readonly record struct CipherSuiteInfo(DtlsCipherSuite Suite, HashAlgorithmName Hash, int KeyLength, int IvLength, bool UsesRsa)
{
    public static bool TryGet(DtlsCipherSuite suite, out CipherSuiteInfo info)
    {
        info = suite switch
        {
            DtlsCipherSuite.EcdheEcdsaWithAes128GcmSha256 => new(suite, HashAlgorithmName.SHA256, 16, 4, false),
            DtlsCipherSuite.EcdheEcdsaWithAes256GcmSha384 => new(suite, HashAlgorithmName.SHA384, 32, 4, false),
            DtlsCipherSuite.EcdheRsaWithAes128GcmSha256 => new(suite, HashAlgorithmName.SHA256, 16, 4, true),
            DtlsCipherSuite.EcdheEcdsaWithChaCha20Poly1305Sha256 => new(suite, HashAlgorithmName.SHA256, 32, 12, false),
            _ => default,
        };
        return info.KeyLength != 0 && (suite != DtlsCipherSuite.EcdheEcdsaWithChaCha20Poly1305Sha256 || ChaCha20Poly1305.IsSupported);
    }
}
