using Transport.TestKit;

namespace Transport.Dtls.Tests;

public sealed class HandshakeTests
{
    [Fact]
    public void ClientAndServerConnectOverCleanLinkWithSrtpAndEqualKeys()
    {
        var (client, server, driver) = Pairs.Create();
        Assert.True(driver.RunUntil(() => Pairs.BothConnected(client, server), TimeSpan.FromSeconds(5)),
            $"client {client.Connection.State} server {server.Connection.State}: " + string.Join(", ", client.Events.Concat(server.Events)));
        var c = client.Event<DtlsConnected>()!;
        var s = server.Event<DtlsConnected>()!;
        Assert.Equal(DtlsCipherSuite.EcdheEcdsaWithAes128GcmSha256, c.CipherSuite);
        Assert.Equal(SrtpProtectionProfile.AeadAes128Gcm, c.SrtpProfile);
        Assert.Equal(s.SrtpProfile, c.SrtpProfile);
        Assert.Equal(TestCertificates.Server.Sha256Fingerprint, c.RemoteFingerprint);
        Assert.Equal(TestCertificates.Client.Sha256Fingerprint, s.RemoteFingerprint);
        Assert.True(client.Connection.ExtendedMasterSecret);
        Assert.Equal(DtlsNamedGroup.X25519, client.Connection.Group);
        var ck = client.Connection.GetSrtpKeyingMaterial();
        var sk = server.Connection.GetSrtpKeyingMaterial();
        Assert.Equal(ck.LocalKey, sk.RemoteKey);
        Assert.Equal(ck.LocalSalt, sk.RemoteSalt);
        Assert.Equal(ck.RemoteKey, sk.LocalKey);
        Assert.NotEqual(ck.LocalKey, ck.RemoteKey);
        Assert.Equal(ck.LocalKey, c.SrtpKeys!.LocalKey);
        Assert.Equal(sk.RemoteSalt, s.SrtpKeys!.RemoteSalt);
        Assert.Equal(client.Connection.ExportKeyingMaterial("EXTRACTOR-dtls_srtp", 60), server.Connection.ExportKeyingMaterial("EXTRACTOR-dtls_srtp", 60));
        Assert.Equal(1, server.Connection.Counters.HelloVerifyRequestsSent);
    }

    [Fact]
    public void ApplicationDataFlowsBothWaysAfterHandshake()
    {
        var (client, server, driver) = Pairs.Create();
        Assert.True(driver.RunUntil(() => Pairs.BothConnected(client, server), TimeSpan.FromSeconds(5)));
        client.Connection.Send("hello server"u8);
        server.Connection.Send("hello client"u8);
        driver.RunUntil(() => client.Received.Count == 1 && server.Received.Count == 1, TimeSpan.FromSeconds(1));
        Assert.Equal("hello server"u8.ToArray(), server.Received.Single());
        Assert.Equal("hello client"u8.ToArray(), client.Received.Single());
    }

    [Theory]
    [InlineData(DtlsCipherSuite.EcdheEcdsaWithAes128GcmSha256, DtlsNamedGroup.Secp256r1)]
    [InlineData(DtlsCipherSuite.EcdheEcdsaWithAes256GcmSha384, DtlsNamedGroup.Secp384r1)]
    [InlineData(DtlsCipherSuite.EcdheEcdsaWithChaCha20Poly1305Sha256, DtlsNamedGroup.X25519)]
    public void EachSuiteAndGroupNegotiatesAndCarriesData(DtlsCipherSuite suite, DtlsNamedGroup group)
    {
        if (suite == DtlsCipherSuite.EcdheEcdsaWithChaCha20Poly1305Sha256)
            Assert.True(System.Security.Cryptography.ChaCha20Poly1305.IsSupported, "ChaCha20Poly1305 not supported on this machine");
        var (client, server, driver) = Pairs.Create(Pairs.ClientOptions(o => o with { CipherSuites = [suite], Groups = [group] }));
        Assert.True(driver.RunUntil(() => Pairs.BothConnected(client, server), TimeSpan.FromSeconds(5)),
            string.Join(", ", client.Events.Concat(server.Events)));
        Assert.Equal(suite, client.Connection.CipherSuite);
        Assert.Equal(group, server.Connection.Group);
        client.Connection.Send([1, 2, 3]);
        driver.RunUntil(() => server.Received.Count == 1, TimeSpan.FromSeconds(1));
        Assert.Equal([1, 2, 3], server.Received.Single());
    }

    [Fact]
    public void RsaServerCertificateNegotiatesEcdheRsa()
    {
        var (client, server, driver) = Pairs.Create(
            Pairs.ClientOptions(o => o with { RemoteFingerprint = TestCertificates.Rsa.Value.Sha256Fingerprint }),
            Pairs.ServerOptions(o => o with { Certificate = TestCertificates.Rsa.Value }));
        Assert.True(driver.RunUntil(() => Pairs.BothConnected(client, server), TimeSpan.FromSeconds(5)),
            string.Join(", ", client.Events.Concat(server.Events)));
        Assert.Equal(DtlsCipherSuite.EcdheRsaWithAes128GcmSha256, client.Connection.CipherSuite);
    }

    [Fact]
    public void P384CertificateSignsWithEcdsaSecp384r1Sha384()
    {
        var (client, server, driver) = Pairs.Create(
            Pairs.ClientOptions(o => o with { RemoteFingerprint = TestCertificates.P384.Value.Sha256Fingerprint }),
            Pairs.ServerOptions(o => o with { Certificate = TestCertificates.P384.Value }));
        Assert.True(driver.RunUntil(() => Pairs.BothConnected(client, server), TimeSpan.FromSeconds(5)),
            string.Join(", ", client.Events.Concat(server.Events)));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void HandshakeCompletesOverLinkWithLossDuplicationAndReordering(int seed)
    {
        var bad = new LinkConditions
        {
            Delay = TimeSpan.FromMilliseconds(20),
            Loss = 0.3,
            Duplicate = 0.3,
            Reorder = 0.3,
            Jitter = TimeSpan.FromMilliseconds(15)
        };
        var link = new VirtualLink(seed, bad, bad);
        // Small MTU: more fragments to lose, duplicate and reorder.
        var (client, server, driver) = Pairs.Create(Pairs.ClientOptions(o => o with { Mtu = 300, HandshakeTimeout = TimeSpan.FromMinutes(5) }),
            Pairs.ServerOptions(o => o with { Mtu = 300, HandshakeTimeout = TimeSpan.FromMinutes(5) }), link);
        Assert.True(driver.RunUntil(() => Pairs.BothConnected(client, server), TimeSpan.FromMinutes(5)),
            $"client {client.Connection.State} server {server.Connection.State} " + string.Join(", ", client.Events.Concat(server.Events)));
        Assert.True(link.Dropped > 0);
        Assert.Equal(client.Connection.ExportKeyingMaterial("EXTRACTOR-dtls_srtp", 60), server.Connection.ExportKeyingMaterial("EXTRACTOR-dtls_srtp", 60));
    }

    [Fact]
    public void HandshakeMessagesAreFragmentedToTheMtu()
    {
        var link = new VirtualLink();
        var sizes = new List<int>();
        link.AddFilter(null, d => { sizes.Add(d.Length); return false; }, _ => FilterAction.Pass);
        var (client, server, driver) = Pairs.Create(Pairs.ClientOptions(o => o with { Mtu = 256 }), Pairs.ServerOptions(o => o with { Mtu = 256 }), link);
        Assert.True(driver.RunUntil(() => Pairs.BothConnected(client, server), TimeSpan.FromSeconds(5)));
        Assert.All(sizes, s => Assert.True(s <= 256, $"datagram of {s} bytes"));
        Assert.True(sizes.Count > 8);
    }

    [Fact]
    public void ServerWithoutCookieExchangeAnswersTheFirstClientHelloDirectly()
    {
        // Like BoringSSL servers (Chrome as a=setup:passive): no HelloVerifyRequest, the first ClientHello is in the transcript.
        var client = new DtlsPeer(DtlsConnection.CreateClient(Pairs.ClientOptions()));
        var server = new DtlsPeer(DtlsConnection.CreateServer(Pairs.ServerOptions()));
        var driver = new TwoPeerDriver(client, server);
        client.Connection.Start(driver.Now);
        Assert.True(driver.RunUntil(() => Pairs.BothConnected(client, server), TimeSpan.FromSeconds(5)));
        Assert.Equal(0, server.Connection.Counters.HelloVerifyRequestsSent);
        Assert.Equal(client.Connection.ExportKeyingMaterial("EXTRACTOR-dtls_srtp", 60), server.Connection.ExportKeyingMaterial("EXTRACTOR-dtls_srtp", 60));
    }
}
