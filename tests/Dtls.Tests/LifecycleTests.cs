namespace Transport.Dtls.Tests;

public sealed class LifecycleTests
{
    [Fact]
    public void WrongServerFingerprintSendsBadCertificateAndFails()
    {
        var (client, server, driver) = Pairs.Create(Pairs.ClientOptions(o => o with { RemoteFingerprint = TestCertificates.Client.Sha256Fingerprint }));
        driver.RunUntil(() => client.Connection.State == DtlsState.Failed && server.Connection.State == DtlsState.Failed, TimeSpan.FromSeconds(5));
        var failed = client.Event<DtlsFailed>()!;
        Assert.Equal(DtlsStateReason.FingerprintMismatch, failed.Reason);
        Assert.Equal(DtlsAlertDescription.BadCertificate, failed.Alert);
        var peer = server.Event<DtlsFailed>()!;
        Assert.Equal(DtlsStateReason.PeerAlert, peer.Reason);
        Assert.Equal(DtlsAlertDescription.BadCertificate, peer.Alert);
        Assert.Null(client.Event<DtlsConnected>());
    }

    [Fact]
    public void WrongClientFingerprintIsRejectedByTheServer()
    {
        var (client, server, driver) = Pairs.Create(server: Pairs.ServerOptions(o => o with
        {
            RemoteFingerprint = DtlsFingerprint.Compute(TestCertificates.Server.Der.Span, DtlsFingerprint.Sha512),
            RemoteFingerprintAlgorithm = DtlsFingerprint.Sha512,
        }));
        driver.RunUntil(() => client.Connection.State == DtlsState.Failed && server.Connection.State == DtlsState.Failed, TimeSpan.FromSeconds(5));
        Assert.Equal(DtlsStateReason.FingerprintMismatch, server.Event<DtlsFailed>()!.Reason);
        Assert.Equal(DtlsAlertDescription.BadCertificate, client.Event<DtlsFailed>()!.Alert);
        Assert.Null(server.Event<DtlsConnected>());
    }

    [Fact]
    public void Sha1FingerprintOfTheRightCertificateIsAccepted()
    {
        var (client, server, driver) = Pairs.Create(Pairs.ClientOptions(o => o with
        {
            RemoteFingerprint = DtlsFingerprint.Compute(TestCertificates.Server.Der.Span, DtlsFingerprint.Sha1).ToLowerInvariant(),
            RemoteFingerprintAlgorithm = DtlsFingerprint.Sha1,
        }));
        Assert.True(driver.RunUntil(() => Pairs.BothConnected(client, server), TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public void CloseSendsCloseNotifyAndThePeerClosesAtOnce()
    {
        var (client, server, driver) = Pairs.Create();
        Assert.True(driver.RunUntil(() => Pairs.BothConnected(client, server), TimeSpan.FromSeconds(5)));
        client.Connection.Close(driver.Now);
        client.Drain();
        Assert.Equal(DtlsStateReason.LocalClose, client.Event<DtlsClosed>()!.Reason);
        var closedAt = driver.Now;
        driver.RunUntil(() => server.Connection.State == DtlsState.Closed, TimeSpan.FromSeconds(1));
        Assert.Equal(DtlsStateReason.PeerClosed, server.Event<DtlsClosed>()!.Reason);
        Assert.Equal(closedAt + TimeSpan.FromMilliseconds(10), driver.Now); // one link delay, no timeout involved
        var e = Assert.Throws<DtlsNotConnectedException>(() => server.Connection.Send([1]));
        Assert.Equal(DtlsState.Closed, e.State);
    }

    [Fact]
    public void SendBeforeConnectedThrowsTypedExceptionNamingTheState()
    {
        var client = DtlsConnection.CreateClient(Pairs.ClientOptions());
        Assert.Equal(DtlsState.New, Assert.Throws<DtlsNotConnectedException>(() => client.Send([1])).State);
        client.Start(TimeSpan.Zero);
        Assert.Equal(DtlsState.Handshaking, Assert.Throws<DtlsNotConnectedException>(() => client.Send([1])).State);
        Assert.Throws<DtlsNotConnectedException>(() => client.ExportKeyingMaterial("x", 10));
    }

    [Fact]
    public void SrtpProfileFollowsTheServersOrderAmongThoseOffered()
    {
        var (client, server, driver) = Pairs.Create(
            Pairs.ClientOptions(o => o with { SrtpProfiles = [SrtpProtectionProfile.Aes128CmHmacSha1_80, SrtpProtectionProfile.AeadAes256Gcm] }),
            Pairs.ServerOptions(o => o with { SrtpProfiles = [SrtpProtectionProfile.AeadAes256Gcm, SrtpProtectionProfile.Aes128CmHmacSha1_80] }));
        Assert.True(driver.RunUntil(() => Pairs.BothConnected(client, server), TimeSpan.FromSeconds(5)));
        Assert.Equal(SrtpProtectionProfile.AeadAes256Gcm, client.Connection.SrtpProfile);
        var keys = client.Connection.GetSrtpKeyingMaterial();
        Assert.Equal(32, keys.LocalKey.Length);
        Assert.Equal(12, keys.LocalSalt.Length);
    }

    [Fact]
    public void WithoutUseSrtpNoProfileIsNegotiated()
    {
        var (client, server, driver) = Pairs.Create(Pairs.ClientOptions(o => o with { SrtpProfiles = [] }));
        Assert.True(driver.RunUntil(() => Pairs.BothConnected(client, server), TimeSpan.FromSeconds(5)));
        Assert.Null(client.Connection.SrtpProfile);
        Assert.Null(server.Event<DtlsConnected>()!.SrtpProfile);
    }

    [Theory]
    [InlineData(DtlsFingerprint.Sha1, 20)]
    [InlineData(DtlsFingerprint.Sha256, 32)]
    [InlineData(DtlsFingerprint.Sha384, 48)]
    [InlineData(DtlsFingerprint.Sha512, 64)]
    public void FingerprintIsUpperCaseHexPairsSeparatedByColons(string algorithm, int bytes)
    {
        var fp = DtlsFingerprint.Compute(TestCertificates.Client.Der.Span, algorithm);
        Assert.Equal(bytes * 3 - 1, fp.Length);
        Assert.Matches("^([0-9A-F]{2}:)*[0-9A-F]{2}$", fp);
    }
}

public sealed class VersionTests
{
    [Fact]
    public void ServerRefusesAClientThatOffersOnlyDtls10WithProtocolVersion()
    {
        var client = DtlsConnection.CreateClient(Pairs.ClientOptions());
        client.Start(TimeSpan.Zero);
        var buffer = new byte[2048];
        Assert.True(client.TryPollTransmit(buffer, out var n));
        buffer[13 + 12] = 0xFE;
        buffer[13 + 12 + 1] = 0xFF;                      // client_version = DTLS 1.0
        var server = DtlsConnection.CreateServer(Pairs.ServerOptions());
        server.HandleDatagram(buffer.AsSpan(0, n), TimeSpan.Zero);
        Assert.Equal(DtlsState.Failed, server.State);
        Assert.True(server.TryPollEvent(out var e));
        Assert.Equal((DtlsState.New, DtlsStateReason.ClientHelloReceived), (Assert.IsType<DtlsHandshaking>(e).Previous, ((DtlsStateChanged)e).Reason));
        Assert.True(server.TryPollEvent(out e));
        Assert.Equal(DtlsAlertDescription.ProtocolVersion, Assert.IsType<DtlsFailed>(e).Alert);
        Assert.True(server.TryPollTransmit(buffer, out n));
        Assert.Equal([(byte)DtlsContentType.Alert], buffer[..1]);
        Assert.Equal([2, (byte)DtlsAlertDescription.ProtocolVersion], buffer[13..15]);
    }
}

public sealed class OptionalClientCertificateTests
{
    [Fact]
    public void ServerThatDoesNotRequireAClientCertificateConnectsWithoutOne()
    {
        var (client, server, driver) = Pairs.Create(server: Pairs.ServerOptions(o => o with { RequireClientCertificate = false, RemoteFingerprint = null }));
        Assert.True(driver.RunUntil(() => Pairs.BothConnected(client, server), TimeSpan.FromSeconds(5)));
        Assert.True(server.Connection.RemoteCertificateDer.IsEmpty);
        Assert.Equal("", server.Event<DtlsConnected>()!.RemoteFingerprint);
        Assert.Equal(client.Connection.ExportKeyingMaterial("EXTRACTOR-dtls_srtp", 60), server.Connection.ExportKeyingMaterial("EXTRACTOR-dtls_srtp", 60));
    }

    [Fact]
    public void RemoteCertificateIsLoadedOnDemandFromTheReceivedDer()
    {
        var (client, server, driver) = Pairs.Create();
        Assert.True(driver.RunUntil(() => Pairs.BothConnected(client, server), TimeSpan.FromSeconds(5)));
        Assert.Equal(TestCertificates.Server.Certificate.Thumbprint, client.Connection.RemoteCertificate!.Thumbprint);
        Assert.Equal(TestCertificates.Client.Der.ToArray(), server.Connection.RemoteCertificateDer.ToArray());
    }
}
