using System.Formats.Asn1;
using System.Security.Cryptography;

namespace Transport.Dtls.Crypto;

/// <summary>
/// The public key of the peer's certificate, read straight from the DER (RFC 5280 section 4.1: Certificate ->
/// tbsCertificate -> subjectPublicKeyInfo). Loading a whole X509Certificate2 costs several times an ECDSA
/// signature; a WebRTC handshake needs only the key, because the fingerprint is what authenticates.
/// </summary>
internal sealed class PeerPublicKey : IDisposable
{
    private const string EcPublicKeyOid = "1.2.840.10045.2.1";
    private const string RsaEncryptionOid = "1.2.840.113549.1.1.1";

    private PeerPublicKey(ECDsa? ecdsa, RSA? rsa)
    {
        Ecdsa = ecdsa;
        Rsa = rsa;
    }

    public ECDsa? Ecdsa { get; }
    public RSA? Rsa { get; }
    public bool IsRsa => Rsa is not null;

    /// <summary>Reads the key; null when the DER is not a certificate with an EC or RSA key.</summary>
    /// <param name="der">The certificate.</param>
    /// <param name="allowNative">False forces the .NET import of EC keys (tests cover both paths).</param>
    public static PeerPublicKey? TryRead(ReadOnlyMemory<byte> der, bool allowNative = true)
    {
        try
        {
            var certificate = new AsnReader(der, AsnEncodingRules.DER).ReadSequence();
            var tbs = certificate.ReadSequence();
            if (tbs.PeekTag().HasSameClassAndValue(new Asn1Tag(TagClass.ContextSpecific, 0, true))) tbs.ReadEncodedValue(); // version
            tbs.ReadEncodedValue(); // serialNumber
            tbs.ReadEncodedValue(); // signature
            tbs.ReadEncodedValue(); // issuer
            tbs.ReadEncodedValue(); // validity
            tbs.ReadEncodedValue(); // subject
            var spki = tbs.ReadEncodedValue();
            var spkiReader = new AsnReader(spki, AsnEncodingRules.DER).ReadSequence();
            var algorithmIdentifier = spkiReader.ReadSequence();
            switch (algorithmIdentifier.ReadObjectIdentifier())
            {
                case EcPublicKeyOid:
                {
                    // RFC 5480: parameters = namedCurve OID, subjectPublicKey = uncompressed point 04 || X || Y.
                    // Building the key from its parameters avoids generating a throwaway key first.
                    ECCurve curve;
                    int size;
                    var curveOid = algorithmIdentifier.ReadObjectIdentifier();
                    switch (curveOid)
                    {
                        case "1.2.840.10045.3.1.7": curve = ECCurve.NamedCurves.nistP256; size = 32; break;
                        case "1.3.132.0.34": curve = ECCurve.NamedCurves.nistP384; size = 48; break;
                        case "1.3.132.0.35": curve = ECCurve.NamedCurves.nistP521; size = 66; break;
                        default: return null;
                    }
                    var point = spkiReader.ReadBitString(out _);
                    if (point.Length != 1 + 2 * size || point[0] != 4) return null;
                    if (allowNative && OperatingSystem.IsLinux() && LibCryptoEcKey.IsAvailable)
                    {
                        // Same validation (point on the curve), a tenth of the cost: see LibCryptoEcKey.
                        var imported = LibCryptoEcKey.TryImport(curveOid, point);
                        return imported is null ? null : new PeerPublicKey(imported, null);
                    }
                    var ec = ECDsa.Create(new ECParameters
                    {
                        Curve = curve,
                        Q = new ECPoint { X = point.AsSpan(1, size).ToArray(), Y = point.AsSpan(1 + size, size).ToArray() },
                    });
                    return new PeerPublicKey(ec, null);
                }
                case RsaEncryptionOid:
                {
                    var rsa = RSA.Create();
                    rsa.ImportSubjectPublicKeyInfo(spki.Span, out _);
                    return new PeerPublicKey(null, rsa);
                }
                default:
                    return null;
            }
        }
        catch (Exception e) when (e is AsnContentException or CryptographicException)
        {
            return null;
        }
    }

    /// <summary>Verifies a TLS 1.2 digitally-signed value (RFC 5246 section 4.7); false on any mismatch.</summary>
    public bool Verify(DtlsSignatureScheme scheme, ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature)
    {
        try
        {
            switch (scheme)
            {
                case DtlsSignatureScheme.EcdsaSecp256r1Sha256 when Ecdsa is not null:
                    return Ecdsa.VerifyData(data, signature, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
                case DtlsSignatureScheme.EcdsaSecp384r1Sha384 when Ecdsa is not null:
                    return Ecdsa.VerifyData(data, signature, HashAlgorithmName.SHA384, DSASignatureFormat.Rfc3279DerSequence);
                case DtlsSignatureScheme.RsaPkcs1Sha256 when Rsa is not null:
                    return Rsa.VerifyData(data, signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
                case DtlsSignatureScheme.RsaPkcs1Sha384 when Rsa is not null:
                    return Rsa.VerifyData(data, signature, HashAlgorithmName.SHA384, RSASignaturePadding.Pkcs1);
                case DtlsSignatureScheme.RsaPssRsaeSha256 when Rsa is not null:
                    return Rsa.VerifyData(data, signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pss);
                default:
                    return false;
            }
        }
        catch (CryptographicException)
        {
            return false;
        }
    }

    public void Dispose()
    {
        Ecdsa?.Dispose();
        Rsa?.Dispose();
    }
}
