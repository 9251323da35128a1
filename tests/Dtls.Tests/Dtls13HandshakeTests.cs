using Transport.TestKit;

namespace Transport.Dtls.Tests;

internal static class Pairs13
{
    public static DtlsOptions V13(DtlsOptions o) => o with { MaxVersion = DtlsVersion.Dtls13 };

    public static (DtlsPeer Client, DtlsPeer Server, TwoPeerDriver Driver) Create(
        Func<DtlsOptions, DtlsOptions>? client = null, Func<DtlsOptions, DtlsOptions>? server = null, VirtualLink? link = null)
    {
        var c = new DtlsPeer(DtlsConnection.CreateClient((client ?? V13)(Pairs.ClientOptions())));
        var s = new DtlsPeer(DtlsConnection.CreateServer((server ?? V13)(Pairs.ServerOptions())));
        var driver = new TwoPeerDriver(c, s, link);
        c.Connection.Start(driver.Now);
        return (c, s, driver);
    }

    public static string Describe(DtlsPeer c, DtlsPeer s) =>
        $"client {c.Connection.State} server {s.Connection.State}: " + string.Join(", ", c.Events.Concat(s.Events));
}

/// <summary>DTLS 1.3 ours with ours on virtual time (RFC 9147).</summary>
public sealed class Dtls13HandshakeTests
{
    [Fact]
    public void HybridHandshakeConnectsWithSrtpKeysAndData()
    {
        var (client, server, driver) = Pairs13.Create();
        Assert.True(driver.RunUntil(() => Pairs.BothConnected(client, server), TimeSpan.FromSeconds(5)), Pairs13.Describe(client, server));
        foreach (var p in new[] { client, server })
        {
            Assert.Equal(DtlsVersion.Dtls13, p.Connection.Version);
            Assert.Equal(DtlsNamedGroup.X25519MLKEM768, p.Connection.Group);
            Assert.Equal(DtlsCipherSuite.TlsAes128GcmSha256, p.Connection.CipherSuite);
            Assert.Equal(SrtpProtectionProfile.AeadAes128Gcm, p.Connection.SrtpProfile);
        }
        var c = client.Event<DtlsConnected>()!;
        var s = server.Event<DtlsConnected>()!;
        Assert.Equal(TestCertificates.Server.Sha256Fingerprint, c.RemoteFingerprint);
        Assert.Equal(TestCertificates.Client.Sha256Fingerprint, s.RemoteFingerprint);
        Assert.Equal(c.SrtpKeys!.LocalKey, s.SrtpKeys!.RemoteKey);
        Assert.Equal(c.SrtpKeys.RemoteSalt, s.SrtpKeys.LocalSalt);
        Assert.NotEqual(c.SrtpKeys.LocalKey, c.SrtpKeys.RemoteKey);
        Assert.Equal(client.Connection.ExportKeyingMaterial("EXTRACTOR-dtls_srtp", 60), server.Connection.ExportKeyingMaterial("EXTRACTOR-dtls_srtp", 60));
        client.Connection.Send("hello server"u8);
        server.Connection.Send("hello client"u8);
        Assert.True(driver.RunUntil(() => client.Received.Count == 1 && server.Received.Count == 1, TimeSpan.FromSeconds(1)));
        Assert.Equal("hello server"u8.ToArray(), server.Received.Single());
        Assert.Equal("hello client"u8.ToArray(), client.Received.Single());
        // The server acknowledged the client's last flight: no timer left on either side.
        driver.RunUntil(() => false, TimeSpan.FromMilliseconds(100));
        Assert.False(client.Connection.AwaitingAck);
        Assert.Null(client.Connection.PollTimeout());
        Assert.Null(server.Connection.PollTimeout());
    }

    /// <summary>
    /// Once connected, a plaintext (epoch 0, unauthenticated) hello of any message sequence is dropped and counted: one
    /// with the next sequence used to reach the post-handshake handler and fail the connection (found by the
    /// dtls-connected fuzz target; its input is fuzz/crashes/dtls-connected).
    /// </summary>
    [Fact]
    public void APlaintextHelloAfterTheHandshakeIsDroppedNotFatal()
    {
        var (client, server, driver) = Pairs13.Create();
        Assert.True(driver.RunUntil(() => Pairs.BothConnected(client, server), TimeSpan.FromSeconds(5)), Pairs13.Describe(client, server));
        var dropped = server.Connection.Counters.DroppedFor(DtlsDropReason.UnexpectedInState)
            + client.Connection.Counters.DroppedFor(DtlsDropReason.UnexpectedInState);
        for (ushort sequence = 0; sequence < 8; sequence++)
        {
            foreach (var (peer, type) in new[] { (server, (byte)1), (client, (byte)2) })   // ClientHello to the server, ServerHello to the client
            {
                // Record header: handshake, DTLS 1.2 version, epoch 0, a fresh record sequence; then the handshake header.
                var body = new byte[40];
                var record = new byte[13 + 12 + body.Length];
                record[0] = 22;
                record[1] = 0xFE;
                record[2] = 0xFD;
                record[10] = (byte)(100 + sequence);
                record[11] = 0;
                record[12] = (byte)(12 + body.Length);
                record[13] = type;
                record[16] = (byte)body.Length;
                record[17] = (byte)(sequence >> 8);
                record[18] = (byte)sequence;
                record[24] = (byte)body.Length;
                peer.HandleDatagram(record, driver.Now);
            }
        }
        driver.RunUntil(() => false, TimeSpan.FromMilliseconds(200));
        Assert.Equal(DtlsState.Connected, client.Connection.State);
        Assert.Equal(DtlsState.Connected, server.Connection.State);
        Assert.DoesNotContain(client.Events.Concat(server.Events), e => e is DtlsFailed);
        Assert.Equal(dropped + 16,
            server.Connection.Counters.DroppedFor(DtlsDropReason.UnexpectedInState) + client.Connection.Counters.DroppedFor(DtlsDropReason.UnexpectedInState));
        client.Connection.Send("still here"u8);
        server.Connection.Send("so am I"u8);
        Assert.True(driver.RunUntil(() => client.Received.Count == 1 && server.Received.Count == 1, TimeSpan.FromSeconds(1)));
    }
}

/// <summary>Version ranges, groups, suites, HelloRetryRequest, fallback and downgrade (RFC 9147 5.3, RFC 8446 4.1).</summary>
public sealed class Dtls13NegotiationTests
{
    private static Func<DtlsOptions, DtlsOptions> Range(DtlsVersion min, DtlsVersion max, Func<DtlsOptions, DtlsOptions>? more = null) =>
        o => (more ?? (x => x))(o with { MinVersion = min, MaxVersion = max });

    [Theory]
    [InlineData(DtlsVersion.Dtls12, DtlsVersion.Dtls12, DtlsVersion.Dtls12, DtlsVersion.Dtls13, DtlsVersion.Dtls12)]
    [InlineData(DtlsVersion.Dtls12, DtlsVersion.Dtls13, DtlsVersion.Dtls12, DtlsVersion.Dtls12, DtlsVersion.Dtls12)]
    [InlineData(DtlsVersion.Dtls12, DtlsVersion.Dtls13, DtlsVersion.Dtls12, DtlsVersion.Dtls13, DtlsVersion.Dtls13)]
    [InlineData(DtlsVersion.Dtls13, DtlsVersion.Dtls13, DtlsVersion.Dtls12, DtlsVersion.Dtls13, DtlsVersion.Dtls13)]
    [InlineData(DtlsVersion.Dtls12, DtlsVersion.Dtls13, DtlsVersion.Dtls13, DtlsVersion.Dtls13, DtlsVersion.Dtls13)]
    [InlineData(DtlsVersion.Dtls13, DtlsVersion.Dtls13, DtlsVersion.Dtls13, DtlsVersion.Dtls13, DtlsVersion.Dtls13)]
    public void EveryVersionRangePairNegotiatesTheHighestCommonVersion(DtlsVersion cMin, DtlsVersion cMax, DtlsVersion sMin,
        DtlsVersion sMax, DtlsVersion expected)
    {
        var (client, server, driver) = Pairs13.Create(Range(cMin, cMax), Range(sMin, sMax));
        Assert.True(driver.RunUntil(() => Pairs.BothConnected(client, server), TimeSpan.FromSeconds(5)), Pairs13.Describe(client, server));
        Assert.Equal(expected, client.Connection.Version);
        Assert.Equal(expected, server.Connection.Version);
        Assert.Equal(client.Connection.GetSrtpKeyingMaterial().LocalKey, server.Connection.GetSrtpKeyingMaterial().RemoteKey);
        client.Connection.Send([7, 8, 9]);
        Assert.True(driver.RunUntil(() => server.Received.Count == 1, TimeSpan.FromSeconds(1)));
        if (expected == DtlsVersion.Dtls12) Assert.Equal(DtlsNamedGroup.X25519, client.Connection.Group);
    }

    [Theory]
    [InlineData(DtlsVersion.Dtls13, DtlsVersion.Dtls12)]
    [InlineData(DtlsVersion.Dtls12, DtlsVersion.Dtls13)]
    public void NoCommonVersionFailsWithProtocolVersion(DtlsVersion clientOnly, DtlsVersion serverOnly)
    {
        var (client, server, driver) = Pairs13.Create(Range(clientOnly, clientOnly), Range(serverOnly, serverOnly));
        driver.RunUntil(() => client.Connection.State == DtlsState.Failed && server.Connection.State == DtlsState.Failed, TimeSpan.FromSeconds(5));
        Assert.Equal(DtlsState.Failed, client.Connection.State);
        // Our 1.3 server answers a 1.2-only ClientHello with protocol_version; a 1.2 server knows nothing of
        // supported_versions and finds no common (1.2) suite in a 1.3-only ClientHello: handshake_failure.
        var expected = serverOnly == DtlsVersion.Dtls13 ? DtlsAlertDescription.ProtocolVersion : DtlsAlertDescription.HandshakeFailure;
        Assert.Contains(client.Events.Concat(server.Events).OfType<DtlsFailed>(), f => f.Alert == expected);
    }

    [Fact]
    public void OurOneThreeClientFallsBackToATwelveOnlyServerThroughHelloVerifyRequest()
    {
        // The stateless cookie responder reads a ClientHello in one record: offer x25519 first so it fits (a hybrid
        // share makes it span two datagrams, which the responder drops: DTLS 1.3 servers skip it).
        var c = new DtlsPeer(DtlsConnection.CreateClient(Pairs13.V13(Pairs.ClientOptions()) with
        {
            Groups = [DtlsNamedGroup.X25519, DtlsNamedGroup.Secp256r1]
        }));
        var s = new DtlsPeer(DtlsConnection.CreateServer(Pairs.ServerOptions(), new DtlsCookieResponder(), [127, 0, 0, 1]));
        var driver = new TwoPeerDriver(c, s);
        c.Connection.Start(driver.Now);
        Assert.True(driver.RunUntil(() => Pairs.BothConnected(c, s), TimeSpan.FromSeconds(5)), Pairs13.Describe(c, s)
            + $" hvr {s.Connection.Counters.HelloVerifyRequestsSent} drops s {s.Connection.Counters.Dropped} c {c.Connection.Counters.Dropped} "
            + $"{c.Connection.Counters.DroppedFor(DtlsDropReason.BadHandshake)} {c.Connection.Counters.DroppedFor(DtlsDropReason.Malformed)} "
            + $"{c.Connection.Counters.DroppedFor(DtlsDropReason.UnexpectedInState)}");
        Assert.Equal(DtlsVersion.Dtls12, c.Connection.Version);
        Assert.True(s.Connection.Counters.HelloVerifyRequestsSent >= 1);
    }

    [Theory]
    [InlineData(DtlsNamedGroup.X25519MLKEM768, DtlsCipherSuite.TlsAes128GcmSha256)]
    [InlineData(DtlsNamedGroup.X25519, DtlsCipherSuite.TlsAes128GcmSha256)]
    [InlineData(DtlsNamedGroup.Secp256r1, DtlsCipherSuite.TlsAes256GcmSha384)]
    [InlineData(DtlsNamedGroup.Secp384r1, DtlsCipherSuite.TlsAes256GcmSha384)]
    [InlineData(DtlsNamedGroup.X25519MLKEM768, DtlsCipherSuite.TlsAes256GcmSha384)]
    public void EachGroupAndSuiteNegotiates(DtlsNamedGroup group, DtlsCipherSuite suite)
    {
        var (client, server, driver) = Pairs13.Create(o => Pairs13.V13(o) with { Groups = [group], CipherSuites13 = [suite] });
        Assert.True(driver.RunUntil(() => Pairs.BothConnected(client, server), TimeSpan.FromSeconds(5)), Pairs13.Describe(client, server));
        Assert.Equal(group, server.Connection.Group);
        Assert.Equal(suite, client.Connection.CipherSuite);
        Assert.Equal(0, client.Connection.HelloRetryRequests);
        server.Connection.Send(new byte[1200]);
        Assert.True(driver.RunUntil(() => client.Received.Count == 1, TimeSpan.FromSeconds(1)));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ServerWithoutAFittingShareSendsHelloRetryRequestWithCookieOnlyWhenAsked(bool cookie)
    {
        // The client sends shares for X25519MLKEM768 and x25519; the server takes only secp256r1.
        var (client, server, driver) = Pairs13.Create(null, o => Pairs13.V13(o) with { Groups = [DtlsNamedGroup.Secp256r1], HelloRetryCookie = cookie });
        var hrrSize = 0;
        driver.Link.AddFilter(LinkEnd.B, d => { if (hrrSize == 0) hrrSize = d.Length; return false; }, _ => FilterAction.Pass);
        Assert.True(driver.RunUntil(() => Pairs.BothConnected(client, server), TimeSpan.FromSeconds(5)), Pairs13.Describe(client, server));
        Assert.Equal(1, server.Connection.HelloRetryRequests);
        Assert.Equal(1, client.Connection.HelloRetryRequests);
        Assert.Equal(DtlsNamedGroup.Secp256r1, client.Connection.Group);
        // HelloRetryRequest: 13 record + 12 handshake + 2+32+1+2+1+2 fixed + versions (6) + key_share (6) [+ cookie 4+2+32].
        Assert.Equal(cookie ? 13 + 12 + 40 + 12 + 38 : 13 + 12 + 40 + 12, hrrSize);
    }

    [Fact]
    public void NoCommonGroupFailsWithHandshakeFailure()
    {
        var (client, server, driver) = Pairs13.Create(o => Pairs13.V13(o) with { Groups = [DtlsNamedGroup.X25519] },
            o => Pairs13.V13(o) with { Groups = [DtlsNamedGroup.Secp256r1] });
        driver.RunUntil(() => server.Connection.State == DtlsState.Failed, TimeSpan.FromSeconds(5));
        Assert.Equal(DtlsStateReason.NoCommonParameters, server.Event<DtlsFailed>()!.Reason);
        Assert.Equal(DtlsAlertDescription.HandshakeFailure, server.Event<DtlsFailed>()!.Alert);
        driver.RunUntil(() => client.Connection.State == DtlsState.Failed, TimeSpan.FromSeconds(1));
        Assert.Equal(DtlsStateReason.PeerAlert, client.Event<DtlsFailed>()!.Reason);
    }

    [Fact]
    public void StrippingOneThreeFromTheClientHelloIsDetectedByTheDowngradeSentinel()
    {
        // An attacker rewrites DTLS 1.3 (FE FC) in supported_versions to 1.2 in the client's first datagram; the
        // 1.3-capable server answers 1.2 with DOWNGRD\x01 in its random; the client must refuse.
        var (client, server, driver) = Pairs13.Create();
        var tampered = false;
        // Rewrite in place through the filter hook: find the supported_versions extension (00 2B, len, list len, FE FC).
        driver.Link.AddFilter(LinkEnd.A, d =>
        {
            if (tampered) return false;
            var span = System.Runtime.InteropServices.MemoryMarshal.AsMemory(d).Span;
            var i = span.IndexOf((ReadOnlySpan<byte>)[0x00, 0x2B, 0x00, 0x05, 0x04, 0xFE, 0xFC]);
            if (i < 0) return false;
            span[i + 6] = 0xFD;
            tampered = true;
            return false;
        }, _ => FilterAction.Pass);
        driver.RunUntil(() => client.Connection.State == DtlsState.Failed, TimeSpan.FromSeconds(5));
        Assert.True(tampered);
        var failed = client.Event<DtlsFailed>();
        Assert.NotNull(failed);
        Assert.Equal(DtlsAlertDescription.IllegalParameter, failed.Alert);
        Assert.Contains("Downgrade", failed.Message);
        Assert.Equal(DtlsVersion.Dtls12, server.Connection.Version);
    }

    [Fact]
    public void HybridClientHelloSpansSeveralDatagramsAndIsReassembledAtMtu300()
    {
        var (client, server, driver) = Pairs13.Create(o => Pairs13.V13(o) with { Mtu = 300 }, o => Pairs13.V13(o) with { Mtu = 300 });
        var first = 0;
        driver.Link.AddFilter(LinkEnd.A, d => { if (driver.Now == TimeSpan.Zero) first++; return false; }, _ => FilterAction.Pass);
        Assert.True(driver.RunUntil(() => Pairs.BothConnected(client, server), TimeSpan.FromSeconds(5)), Pairs13.Describe(client, server));
        Assert.True(first >= 5, $"ClientHello went in {first} datagrams");
        Assert.Equal(DtlsNamedGroup.X25519MLKEM768, server.Connection.Group);
    }

    [Fact]
    public void RsaServerCertificateSignsWithRsaPss()
    {
        var (client, server, driver) = Pairs13.Create(
            o => Pairs13.V13(o) with { RemoteFingerprint = TestCertificates.Rsa.Value.Sha256Fingerprint },
            o => Pairs13.V13(o) with { Certificate = TestCertificates.Rsa.Value });
        Assert.True(driver.RunUntil(() => Pairs.BothConnected(client, server), TimeSpan.FromSeconds(5)), Pairs13.Describe(client, server));
        Assert.Equal(DtlsSignatureScheme.RsaPssRsaeSha256, client.Connection.PeerSignatureScheme);
        Assert.Equal(DtlsSignatureScheme.EcdsaSecp256r1Sha256, server.Connection.PeerSignatureScheme);
    }

    [Fact]
    public void WrongServerFingerprintFailsWithBadCertificate()
    {
        var (client, server, driver) = Pairs13.Create(o => Pairs13.V13(o) with { RemoteFingerprint = TestCertificates.Client.Sha256Fingerprint });
        driver.RunUntil(() => client.Connection.State == DtlsState.Failed && server.Connection.State == DtlsState.Failed, TimeSpan.FromSeconds(5));
        Assert.Equal(DtlsStateReason.FingerprintMismatch, client.Event<DtlsFailed>()!.Reason);
        Assert.Equal(DtlsAlertDescription.BadCertificate, server.Event<DtlsFailed>()!.Alert);
    }
}

public sealed class Dtls13DefaultsTests
{
    [Fact]
    public void DefaultsPreferDtls13WithTheHybridGroupFirstAndAcceptDtls12()
    {
        var o = new DtlsOptions { Certificate = TestCertificates.Client };
        Assert.Equal(DtlsVersion.Dtls13, o.MaxVersion);
        Assert.Equal(DtlsVersion.Dtls12, o.MinVersion);
        Assert.Equal(DtlsNamedGroup.X25519MLKEM768, o.Groups[0]);
        Assert.Equal(DtlsNamedGroup.X25519, o.Groups[1]);
        // Default client and server (no version set): 1.3 + hybrid; a default client with a 1.2-only server: 1.2.
        var (c, s, d) = Pairs13.Create(o => o with { MaxVersion = new DtlsOptions { Certificate = o.Certificate }.MaxVersion },
            o => o with { MaxVersion = new DtlsOptions { Certificate = o.Certificate }.MaxVersion });
        Assert.True(d.RunUntil(() => Pairs.BothConnected(c, s), TimeSpan.FromSeconds(5)));
        Assert.Equal(DtlsVersion.Dtls13, s.Connection.Version);
        Assert.Equal(DtlsNamedGroup.X25519MLKEM768, s.Connection.Group);
        var (c2, s2, d2) = Pairs13.Create(o => o with { MaxVersion = DtlsVersion.Dtls13 }, o => o);
        Assert.True(d2.RunUntil(() => Pairs.BothConnected(c2, s2), TimeSpan.FromSeconds(5)));
        Assert.Equal(DtlsVersion.Dtls12, c2.Connection.Version);
        Assert.Equal(DtlsNamedGroup.X25519, c2.Connection.Group);
    }
}
