using Transport.Dtls.Crypto;

namespace Transport.Dtls.Tests;

/// <summary>
/// What the set-up path computes once instead of per connection, and what it must keep fresh per handshake (the
/// ephemeral key shares: forward secrecy, RFC 8446 section 4.2.8).
/// </summary>
public sealed class SetupCostTests
{
    [Fact]
    public void TheSha256FingerprintIsComputedOncePerCertificateAndIsItsDersFingerprint()
    {
        var first = TestCertificates.Server.Sha256Fingerprint;
        Assert.Same(first, TestCertificates.Server.Sha256Fingerprint);
        Assert.Equal(DtlsFingerprint.Compute(TestCertificates.Server.Der.Span, DtlsFingerprint.Sha256), first);
        // Another certificate is another object with its own fingerprint: nothing is shared between certificates.
        using var other = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UnixEpoch.AddYears(50), DateTimeOffset.UnixEpoch.AddYears(51));
        Assert.NotEqual(first, other.Sha256Fingerprint);
        Assert.Equal(DtlsFingerprint.Compute(other.Der.Span, DtlsFingerprint.Sha256), other.Sha256Fingerprint);
    }

    [Theory]
    [InlineData(DtlsFingerprint.Sha1)]
    [InlineData(DtlsFingerprint.Sha384)]
    [InlineData("SHA-256")]
    public void ConnectedReportsTheSha256FingerprintWhateverAlgorithmTheSdpNamed(string algorithm)
    {
        var expected = DtlsFingerprint.Compute(TestCertificates.Client.Der.Span, algorithm);
        var (client, server, driver) = Pairs13.Create(server: o =>
            Pairs13.V13(o) with { RemoteFingerprint = expected, RemoteFingerprintAlgorithm = algorithm });
        Assert.True(driver.RunUntil(() => Pairs.BothConnected(client, server), TimeSpan.FromSeconds(5)), Pairs13.Describe(client, server));
        Assert.Equal(TestCertificates.Client.Sha256Fingerprint, server.Event<DtlsConnected>()!.RemoteFingerprint);
        Assert.Equal(TestCertificates.Server.Sha256Fingerprint, client.Event<DtlsConnected>()!.RemoteFingerprint);
    }

    [Fact]
    public void AMismatchedFingerprintStillFailsAndNamesTheActualOne()
    {
        var (client, server, driver) = Pairs13.Create(server: o => Pairs13.V13(o) with { RemoteFingerprint = TestCertificates.Server.Sha256Fingerprint });
        driver.RunUntil(() => server.Connection.State == DtlsState.Failed, TimeSpan.FromSeconds(5));
        var failed = server.Event<DtlsFailed>();
        Assert.NotNull(failed);
        Assert.Equal(DtlsStateReason.FingerprintMismatch, failed.Reason);
        Assert.Contains(TestCertificates.Client.Sha256Fingerprint, failed.Message);
    }

    [Fact]
    public void HybridKeySharesAreFreshForEveryHandshakeWithTheSharedRandomSource()
    {
        using var a = KeyShare13.CreateClientShare(DtlsNamedGroup.X25519MLKEM768);
        using var b = KeyShare13.CreateClientShare(DtlsNamedGroup.X25519MLKEM768);
        Assert.NotEqual(a.PublicKey, b.PublicKey);
        var length = KeyShare13.MlKemEncapsulationKeyLength;
        Assert.NotEqual(a.PublicKey.AsSpan(0, length).ToArray(), b.PublicKey.AsSpan(0, length).ToArray());
        // Two server answers to one client share: each its own ML-KEM ciphertext and X25519 key, and secret.
        Assert.True(KeyShare13.TryRespond(DtlsNamedGroup.X25519MLKEM768, a.PublicKey, out var share1, out var secret1));
        Assert.True(KeyShare13.TryRespond(DtlsNamedGroup.X25519MLKEM768, a.PublicKey, out var share2, out var secret2));
        Assert.NotEqual(share1, share2);
        Assert.NotEqual(secret1, secret2);
        // And each still agrees with the client.
        Assert.Equal(secret1, a.DeriveSecret(share1));
        Assert.Equal(secret2, a.DeriveSecret(share2));
    }
}
