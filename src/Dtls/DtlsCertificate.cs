using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Transport.Dtls;

/// <summary>
/// A certificate with its private key, as one endpoint presents it in the handshake. Create one per process
/// (or per peer identity) and reuse it across connections: generating a key is the slow part.
/// </summary>
public sealed class DtlsCertificate : IDisposable
{
    private readonly ECDsa? _ecdsa;
    private readonly RSA? _rsa;

    /// <summary>Wraps a certificate that has an ECDSA (P-256 or P-384) or RSA private key.</summary>
    public DtlsCertificate(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        Certificate = certificate;
        _ecdsa = certificate.GetECDsaPrivateKey();
        _rsa = _ecdsa is null ? certificate.GetRSAPrivateKey() : null;
        if (_ecdsa is null && _rsa is null)
            throw new ArgumentException("The certificate needs an ECDSA or RSA private key.", nameof(certificate));
        Der = certificate.RawData;
    }

    /// <summary>The certificate.</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>The DER encoding, as sent in the Certificate message.</summary>
    public ReadOnlyMemory<byte> Der { get; }

    /// <summary>True for an RSA key (TLS_ECDHE_RSA_* suites), false for ECDSA.</summary>
    public bool IsRsa => _rsa is not null;

    /// <summary>The SDP fingerprint (RFC 8122) with SHA-256: <c>AB:CD:...</c>.</summary>
    /// <remarks>
    /// Computed once: every offer and answer carries it (RFC 8842 section 5), and the certificate of this object never
    /// changes (a new certificate is a new <see cref="DtlsCertificate"/>).
    /// </remarks>
    public string Sha256Fingerprint => _sha256Fingerprint ??= DtlsFingerprint.Compute(Der.Span, DtlsFingerprint.Sha256);

    private string? _sha256Fingerprint;

    /// <summary>
    /// Generates a self-signed ECDSA P-256 certificate (WebRTC style). The validity is passed in because the core
    /// reads no clock.
    /// </summary>
    public static DtlsCertificate CreateSelfSigned(DateTimeOffset notBefore, DateTimeOffset notAfter, string subject = "CN=WebRTC")
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        return CreateSelfSigned(key, notBefore, notAfter, subject);
    }

    /// <summary>Generates a self-signed certificate for an existing ECDSA key (P-256 or P-384).</summary>
    public static DtlsCertificate CreateSelfSigned(ECDsa key, DateTimeOffset notBefore, DateTimeOffset notAfter, string subject = "CN=WebRTC")
    {
        ArgumentNullException.ThrowIfNull(key);
        var hash = key.KeySize > 256 ? HashAlgorithmName.SHA384 : HashAlgorithmName.SHA256;
        var request = new CertificateRequest(subject, key, hash);
        using var cert = request.CreateSelfSigned(notBefore, notAfter);
        // Re-import with an ephemeral key store so the private key works on every platform.
        return new DtlsCertificate(X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pkcs12), null,
            X509KeyStorageFlags.Exportable));
    }

    /// <summary>Generates a self-signed RSA certificate (for the TLS_ECDHE_RSA_* suites).</summary>
    public static DtlsCertificate CreateSelfSignedRsa(DateTimeOffset notBefore, DateTimeOffset notAfter, int keySize = 2048, string subject = "CN=WebRTC")
    {
        using var key = RSA.Create(keySize);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using var cert = request.CreateSelfSigned(notBefore, notAfter);
        return new DtlsCertificate(X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pkcs12), null,
            X509KeyStorageFlags.Exportable));
    }

    /// <summary>The signature schemes this key can produce, best first.</summary>
    internal DtlsSignatureScheme[] SignatureSchemes => _rsa is not null
        ? [DtlsSignatureScheme.RsaPkcs1Sha256, DtlsSignatureScheme.RsaPssRsaeSha256]
        : _ecdsa!.KeySize > 256
            ? [DtlsSignatureScheme.EcdsaSecp384r1Sha384, DtlsSignatureScheme.EcdsaSecp256r1Sha256]
            : [DtlsSignatureScheme.EcdsaSecp256r1Sha256, DtlsSignatureScheme.EcdsaSecp384r1Sha384];

    /// <summary>Picks the first of our schemes that the peer lists; null when none.</summary>
    internal DtlsSignatureScheme? ChooseScheme(IReadOnlyList<DtlsSignatureScheme> peerSchemes)
    {
        foreach (var s in SignatureSchemes)
            foreach (var p in peerSchemes)
                if (p == s) return s;
        return null;
    }

    internal byte[] Sign(DtlsSignatureScheme scheme, ReadOnlySpan<byte> data) => scheme switch
    {
        DtlsSignatureScheme.EcdsaSecp256r1Sha256 => _ecdsa!.SignData(data, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence),
        DtlsSignatureScheme.EcdsaSecp384r1Sha384 => _ecdsa!.SignData(data, HashAlgorithmName.SHA384, DSASignatureFormat.Rfc3279DerSequence),
        DtlsSignatureScheme.RsaPkcs1Sha256 => _rsa!.SignData(data.ToArray(), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1),
        DtlsSignatureScheme.RsaPkcs1Sha384 => _rsa!.SignData(data.ToArray(), HashAlgorithmName.SHA384, RSASignaturePadding.Pkcs1),
        DtlsSignatureScheme.RsaPssRsaeSha256 => _rsa!.SignData(data.ToArray(), HashAlgorithmName.SHA256, RSASignaturePadding.Pss),
        _ => throw new ArgumentOutOfRangeException(nameof(scheme)),
    };

    /// <inheritdoc />
    public void Dispose()
    {
        _ecdsa?.Dispose();
        _rsa?.Dispose();
        Certificate.Dispose();
    }
}

/// <summary>Certificate fingerprints as SDP carries them (RFC 8122 section 5: hash name and <c>AB:CD:...</c>).</summary>
public static class DtlsFingerprint
{
    /// <summary>Hash function names as in the SDP a=fingerprint attribute.</summary>
    public const string Sha1 = "sha-1", Sha256 = "sha-256", Sha384 = "sha-384", Sha512 = "sha-512";

    /// <summary>The fingerprint of a DER certificate in upper-case hex pairs separated by colons.</summary>
    public static string Compute(ReadOnlySpan<byte> der, string algorithm)
    {
        Span<byte> digest = stackalloc byte[64];
        var n = algorithm.ToLowerInvariant() switch
        {
            Sha1 => SHA1.HashData(der, digest),
            Sha256 => SHA256.HashData(der, digest),
            Sha384 => SHA384.HashData(der, digest),
            Sha512 => SHA512.HashData(der, digest),
            _ => throw new ArgumentException($"Unknown fingerprint hash '{algorithm}'.", nameof(algorithm)),
        };
        var sb = new StringBuilder(n * 3);
        for (var i = 0; i < n; i++)
        {
            if (i > 0) sb.Append(':');
            sb.Append(digest[i].ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }

    /// <summary>True when <paramref name="der"/> has the fingerprint <paramref name="expected"/> (case-insensitive hex).</summary>
    public static bool Matches(ReadOnlySpan<byte> der, string algorithm, string expected) => Matches(Compute(der, algorithm), expected);

    /// <summary>True when the computed fingerprint <paramref name="actual"/> is <paramref name="expected"/> (case-insensitive hex).</summary>
    public static bool Matches(string actual, string expected) => string.Equals(actual, expected.Trim(), StringComparison.OrdinalIgnoreCase);
}
