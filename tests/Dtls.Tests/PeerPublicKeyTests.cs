using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Transport.Dtls.Crypto;

namespace Transport.Dtls.Tests;

/// <summary>
/// The peer certificate's EC key, imported through OpenSSL's EC_KEY API (the fast path on Linux) or through .NET
/// (the fallback): both must verify what the private key signed, reject anything else, and refuse a point that is
/// not on the curve.
/// </summary>
public sealed class PeerPublicKeyTests
{
    private static readonly DateTimeOffset NotBefore = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public static TheoryData<string, bool> Curves => new()
    {
        { "nistP256", true }, { "nistP256", false }, { "nistP384", true }, { "nistP384", false }, { "nistP521", true }, { "nistP521", false },
    };

    private static ECCurve Curve(string name) => name switch
    {
        "nistP256" => ECCurve.NamedCurves.nistP256,
        "nistP384" => ECCurve.NamedCurves.nistP384,
        _ => ECCurve.NamedCurves.nistP521,
    };

    private static byte[] Certificate(ECDsa key)
    {
        var request = new CertificateRequest("CN=test", key, HashAlgorithmName.SHA256);
        using var cert = request.CreateSelfSigned(NotBefore, NotBefore.AddYears(1));
        return cert.RawData;
    }

    private static byte[] UncompressedPoint(ECDsa key)
    {
        var q = key.ExportParameters(false).Q;
        return [4, .. q.X!, .. q.Y!];
    }

    [Fact]
    public void TheDirectImportIsAvailableOnThisLinuxMachine()
    {
        Assert.True(OperatingSystem.IsLinux());
        Assert.True(LibCryptoEcKey.IsAvailable, "libcrypto's EC_KEY import was not found or its version differs from .NET's");
    }

    [Theory]
    [MemberData(nameof(Curves))]
    public void TheImportedKeyVerifiesItsOwnSignaturesAndNothingElse(string curve, bool native)
    {
        using var key = ECDsa.Create(Curve(curve));
        var der = Certificate(key);
        using var peer = PeerPublicKey.TryRead(der, native);
        Assert.NotNull(peer);
        Assert.NotNull(peer!.Ecdsa);
        Assert.Equal(UncompressedPoint(key), UncompressedPoint(peer.Ecdsa!));

        var data = new byte[700];
        Random.Shared.NextBytes(data);
        var scheme = curve == "nistP384" ? DtlsSignatureScheme.EcdsaSecp384r1Sha384 : DtlsSignatureScheme.EcdsaSecp256r1Sha256;
        var hash = scheme == DtlsSignatureScheme.EcdsaSecp384r1Sha384 ? HashAlgorithmName.SHA384 : HashAlgorithmName.SHA256;
        var signature = key.SignData(data, hash, DSASignatureFormat.Rfc3279DerSequence);
        Assert.True(peer.Verify(scheme, data, signature));
        data[17] ^= 1;
        Assert.False(peer.Verify(scheme, data, signature));
        data[17] ^= 1;
        using var other = ECDsa.Create(Curve(curve));
        Assert.False(peer.Verify(scheme, data, other.SignData(data, hash, DSASignatureFormat.Rfc3279DerSequence)));
        Assert.False(peer.Verify(scheme, data, [0x30, 0x02, 0x01, 0x00])); // garbage signature: false, no exception
    }

    [Theory]
    [MemberData(nameof(Curves))]
    public void APointOffTheCurveIsRefused(string curve, bool native)
    {
        using var key = ECDsa.Create(Curve(curve));
        var der = Certificate(key);
        var point = UncompressedPoint(key);
        var at = der.AsSpan().IndexOf(point);
        Assert.True(at > 0);
        der[at + point.Length - 1] ^= 0x01; // change y: (x, y') is not on the curve
        Assert.Null(PeerPublicKey.TryRead(der, native));

        // After a refused import the next one still works (no OpenSSL error left queued for .NET).
        using var good = PeerPublicKey.TryRead(Certificate(key), native);
        Assert.NotNull(good);
        var data = new byte[] { 1, 2, 3 };
        var scheme = curve == "nistP384" ? DtlsSignatureScheme.EcdsaSecp384r1Sha384 : DtlsSignatureScheme.EcdsaSecp256r1Sha256;
        var hash = scheme == DtlsSignatureScheme.EcdsaSecp384r1Sha384 ? HashAlgorithmName.SHA384 : HashAlgorithmName.SHA256;
        Assert.True(good!.Verify(scheme, data, key.SignData(data, hash, DSASignatureFormat.Rfc3279DerSequence)));
    }

    [Fact]
    public void AnRsaCertificateIsReadAsBefore()
    {
        using var cert = DtlsCertificate.CreateSelfSignedRsa(NotBefore, NotBefore.AddYears(1));
        using var peer = PeerPublicKey.TryRead(cert.Der);
        Assert.NotNull(peer);
        Assert.True(peer!.IsRsa);
        var data = new byte[] { 9, 8, 7 };
        Assert.True(peer.Verify(DtlsSignatureScheme.RsaPkcs1Sha256, data, cert.Sign(DtlsSignatureScheme.RsaPkcs1Sha256, data)));
    }
}
